# The two commands: `make run` (the whole system with its demo upstream) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint format screenshots clean

run: $(VENV)/.installed-run
	bash scripts/run.sh

# The deployment's database: where a PostgreSQL answers here (CI has one), every test that can
# touch the database runs on it too. REQUIRE_POSTGRES=1 makes its absence a failure.
TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/dashboard

test: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest
	@if $(BIN)/python scripts/postgres_ready.py "$(TEST_POSTGRES_URL)"; then \
	  echo "--- the suite again on PostgreSQL ($(TEST_POSTGRES_URL)); tests/emulator has no database"; \
	  DATABASE_URL="$(TEST_POSTGRES_URL)" $(BIN)/pytest --ignore=tests/emulator; \
	elif [ "$(REQUIRE_POSTGRES)" = 1 ]; then exit 1; \
	else echo "--- no PostgreSQL at $(TEST_POSTGRES_URL): the suite ran on SQLite only"; fi

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .

format: $(VENV)/.installed-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Rewrites docs/screenshots/*.png: boards at 1080p and 4K (configured and the seeded demo), the
# widget on the demo site, the history chart, the board designer (a plain test run shoots them
# into a temporary folder).
screenshots: $(VENV)/.installed-test
	SCREENSHOTS=1 $(BIN)/pytest tests/test_boards.py tests/test_history_views.py \
	  tests/test_designer_browser.py -k test_screenshots

$(VENV)/bin/python:
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11 or newer is needed") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-run: pyproject.toml $(VENV)/bin/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/bin/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed-run

clean:
	rm -rf $(VENV) .run staticfiles
