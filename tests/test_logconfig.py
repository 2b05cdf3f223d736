"""How every process logs (dashboard/logconfig.py): one line per state change, a refusal without a
traceback, LOG_FORMAT=json with structured fields, and no token in any line, in either format."""

import io
import json
import logging
import os
import sys

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from websockets.sync.client import connect

from dashboard import boards
from dashboard.logconfig import JsonFormatter, logging_config
from dashboard.logfilters import NoClientErrorTraceback, RedactTokens
from metrics.ingest import poll_change
from metrics.models import Board, Metric, Tile
from tests.conftest import (
    LOGS,
    PASSWORD,
    WEB_ENV,
    free_port,
    stack_env,
    start_emulator,
    wait_for_port,
    wait_until,
    web_command,
)

TOKEN = "Zm9vYmFyLWEtZGlzcGxheS10b2tlbi1mb3ItdGVzdHM1"


@pytest.mark.parametrize(("level", "fmt"), [("LOUD", "plain"), ("INFO", "xml"), ("", "json")])
def test_a_bad_log_level_or_format_is_refused_at_start_up(level, fmt):
    with pytest.raises(ImproperlyConfigured, match="LOG_LEVEL|LOG_FORMAT"):
        logging_config(level, fmt, access_log=False)


def formatted(record: logging.LogRecord, formatter: logging.Formatter) -> str:
    """The line the console handler writes for `record` (its filters, then its formatter)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(RedactTokens())
    handler.addFilter(NoClientErrorTraceback())
    handler.handle(record)
    return stream.getvalue()


def a_record(msg, args=(), exc=False, **extra) -> logging.LogRecord:
    record = logging.LogRecord("dashboard.x", logging.WARNING, __file__, 1, msg, args, None)
    if exc:
        try:
            raise ValueError(f"no such link: /display/{TOKEN}/")
        except ValueError:
            record.exc_info = sys.exc_info()
    record.__dict__.update(extra)
    return record


def test_a_json_line_has_the_structured_fields_and_the_extras():
    line = formatted(a_record("board %s opened", ("floor",), screens=3), JsonFormatter())
    assert line.endswith("\n") and line.count("\n") == 1
    fields = json.loads(line)
    assert fields["message"] == "board floor opened"
    assert fields["level"] == "WARNING" and fields["logger"] == "dashboard.x"
    assert fields["process"] == "MainProcess" and fields["pid"] == os.getpid()
    assert fields["time"].endswith("+00:00") and "T" in fields["time"]
    assert fields["screens"] == 3


def test_no_token_reaches_a_json_line_by_its_message_args_extras_or_traceback():
    record = a_record(
        "opened %s", (f"/display/{TOKEN}/",), exc=True, url=f"wss://acr/s?auth_token={TOKEN}"
    )
    line = formatted(record, JsonFormatter())
    assert TOKEN not in line
    fields = json.loads(line)
    assert fields["message"] == "opened /display/***/"
    assert fields["url"] == "wss://acr/s?auth_token=***"
    assert "/display/***/" in fields["exc_info"]


@pytest.mark.parametrize("formatter", [logging.Formatter(), JsonFormatter()])
def test_a_refused_request_is_logged_without_a_traceback_a_server_error_with_one(formatter):
    refused = formatted(a_record("Forbidden: /status/", exc=True, status_code=403), formatter)
    assert "Forbidden: /status/" in refused and "Traceback" not in refused
    failed = formatted(a_record("Internal Server Error: /", exc=True, status_code=500), formatter)
    assert "Traceback" in failed


@pytest.mark.parametrize(
    ("was", "now", "last_ok_ms", "expected"),
    [
        ("", "", 1_000, None),  # good after good: nothing to say
        ("upstream error 503", "upstream error 503", 1_000, None),  # still the same failure
        ("", "upstream error 503", 1_000, (logging.WARNING, "upstream broke: upstream error 503")),
        (
            "upstream error 503",
            "upstream timed out on /realtime/metrics/values",
            1_000,
            (
                logging.WARNING,
                "upstream still failing, now: upstream timed out on /realtime/metrics/values",
            ),
        ),
        (
            "upstream error 503",
            "",
            1_000,
            (
                logging.INFO,
                "upstream recovered: REST answers again (41 s after the last good answer)",
            ),
        ),
        ("upstream error 503", "", 0, (logging.INFO, "upstream recovered: REST answers again")),
    ],
)
def test_only_a_change_of_the_upstreams_state_makes_a_line(was, now, last_ok_ms, expected):
    assert poll_change(was, now, last_ok_ms, at_ms=42_000) == expected


# --- every process of the system with LOG_FORMAT=json ------------------------------------------


@pytest.fixture
def tv_link(db):
    queue, _ = Metric.objects.update_or_create(
        metric_id="CIQGRP01",
        defaults={"name": "Calls in Queue", "category_type": "GROUP", "categories": ["Sales"]},
    )
    board = Board.objects.create(name="Floor", slug="floor")
    Tile.objects.create(board=board, order=1, metric=queue, category="Sales")
    _, token = boards.create_display_link("TV by the door", board=board)
    return token


def start_json_system(processes, settings, tmp_path) -> tuple[str, object, list[str]]:
    """Emulator, web, worker, beat and subscriber, all with LOG_FORMAT=json (Celery --quiet,
    as docker-compose.yml runs it: its banner is printed, not logged)."""
    emulator = start_emulator(processes, "--scenario", "static", "--init-seconds", "1")
    env = {**stack_env(emulator, settings.REDIS_URL), "LOG_FORMAT": "json", "WEB_ACCESS_LOG": "1"}
    celery = [sys.executable, "-m", "celery", "-A", "dashboard", "--quiet"]
    port = free_port()
    web = processes.start("web", web_command(), {**env, **WEB_ENV, "WEB_PORT": str(port)})
    processes.start("worker", [*celery, "worker", "--pool=solo", "--without-mingle"], env)
    processes.start("beat", [*celery, "beat", "--schedule", str(tmp_path / "schedule")], env)
    processes.start("subscriber", [sys.executable, "manage.py", "subscribe_upstream"], env)
    wait_for_port(port, web, "web")
    return f"http://127.0.0.1:{port}", emulator, ["web", "worker", "beat", "subscriber"]


def log_lines(name: str) -> list[str]:
    return (LOGS / f"{name}.log").read_text(errors="replace").splitlines()


def logged(names: list[str], text: str) -> list[dict]:
    return [json.loads(line) for name in names for line in log_lines(name) if text in line]


def log_in(base_url: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=10)
    page = client.get("/accounts/login/")
    client.post(
        "/accounts/login/",
        data={
            "username": username,
            "password": PASSWORD,
            "csrfmiddlewaretoken": page.cookies["csrftoken"],
        },
    )
    return client


@pytest.mark.timeout(180)
@pytest.mark.django_db(transaction=True)
def test_every_process_logs_json_lines_and_each_upstream_change_once(
    processes, redis_db, settings, tmp_path, tv_link
):
    get_user_model().objects.create_user("viewer", password=PASSWORD)
    base_url, emulator, names = start_json_system(processes, settings, tmp_path)
    worker_side = ["worker", "subscriber"]  # where polls run
    wait_until(lambda: logged(["subscriber"], "subscribed to"), timeout=30, what="subscribed")

    # A TV connects; a refused page (403) and a bad Host (400): one line each, no traceback.
    ws_url = base_url.replace("http://", "ws://") + f"/ws/display/{tv_link}/"
    with connect(ws_url, origin=base_url) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "snapshot"
    viewer = log_in(base_url, "viewer")
    assert viewer.get("/status/").status_code == 403
    viewer.close()
    assert httpx.get(f"{base_url}/health/", headers={"Host": "evil.example"}).status_code == 400

    # The upstream fails for a few polls (one a second), then answers again.
    emulator.control("faults", {"http_status": 503})
    wait_until(lambda: logged(worker_side, "upstream broke"), timeout=20, what="broke")
    asked = emulator.stats()["requests"]["values"]
    wait_until(
        lambda: emulator.stats()["requests"]["values"] >= asked + 3,
        timeout=20,
        what="three more failing polls",
    )
    emulator.control("faults", {"clear": True})
    wait_until(lambda: logged(worker_side, "upstream recovered"), timeout=20, what="recovered")

    lines = {name: log_lines(name) for name in names}
    processes.stop_all()
    for name, text in lines.items():
        assert text, f"{name} wrote nothing"
        for line in text:
            fields = json.loads(line)  # every line one JSON object
            assert {"time", "level", "logger", "message", "process", "pid"} <= set(fields), line
            assert tv_link not in line and emulator.auth_key not in line, line
    broke = logged(worker_side, "upstream broke")
    assert [(b["level"], b["message"]) for b in broke] == [
        ("WARNING", "upstream broke: upstream error 503")
    ]
    recovered = logged(worker_side, "upstream recovered")
    assert len(recovered) == 1 and recovered[0]["level"] == "INFO"
    web = [json.loads(line) for line in lines["web"]]
    assert not [w for w in web if "Traceback" in w.get("exc_info", "")]
    forbidden = [w for w in web if w["message"].startswith("Forbidden")]
    assert forbidden and forbidden[0]["status_code"] == 403
    assert any("/ws/display/***/" in w["message"] for w in web)
    assert [w for w in web if "Invalid HTTP_HOST header" in w["message"]]
    # Nothing per poll: no task, beat send or upstream request line at INFO.
    routine = ("succeeded in", "] received", "Sending due task", "HTTP Request:")
    assert not [line for line in lines["worker"] + lines["beat"] if any(r in line for r in routine)]
