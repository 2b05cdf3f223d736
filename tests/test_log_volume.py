"""The whole system, started as `make run` starts it, with a board open, writes fewer than 50 log
lines a minute: bench/log_volume.py (5 minutes, bench/RESULTS.md) in short, so CI guards it."""

import tempfile
from pathlib import Path

import pytest

from bench.log_volume import TARGET_PER_MINUTE, measure, report, system_env
from tests.conftest import free_port

SECONDS = 75


@pytest.mark.timeout(420)
def test_make_run_with_a_board_open_writes_fewer_than_50_lines_a_minute(redis_db, settings):
    with tempfile.TemporaryDirectory() as folder:
        env = system_env(free_port(), free_port(), settings.REDIS_URL, Path(folder) / "db.sqlite3")
        counts, run, frames = measure(SECONDS, env)
    print(report(counts, frames, f"{SECONDS} s (tests/test_log_volume.py)"))
    processes = {line.process for line in run.lines}
    assert {"web", "worker", "beat", "subscriber", "emulator"} <= processes, run.tail()
    assert frames > 0  # the board was live and updating: the system was doing its work
    assert counts.rate < TARGET_PER_MINUTE, report(counts, frames, "this test")
