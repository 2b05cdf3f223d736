"""`manage.py healthcheck <service>` against real processes: healthy while the worker, beat, the
subscriber and the web server run; unhealthy, with a one-line reason, once one is gone (for the
heartbeats, within their TTL)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from metrics import heartbeat
from tests.conftest import (
    LOGS,
    ROOT,
    WEB_ENV,
    database_url,
    free_port,
    start_emulator,
    system_env,
    wait_for_port,
    wait_until,
    web_command,
)


def healthcheck(service: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`manage.py healthcheck service`, as a container's health check runs it."""
    return subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "healthcheck", service],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "dashboard.test_settings", **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def celery(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "dashboard", *args]


@pytest.mark.timeout(180)
@pytest.mark.django_db(transaction=True)
def test_worker_beat_and_subscriber_are_healthy_while_they_run_and_not_once_killed(
    processes, redis_db, settings, tmp_path
):
    emulator = start_emulator(processes, "--scenario", "static", "--init-seconds", "1")
    env = system_env(emulator, settings.REDIS_URL)
    started = {
        "worker": processes.start(
            "worker", celery("worker", "--pool=solo", "--without-gossip", "--without-mingle"), env
        ),
        "beat": processes.start(
            "beat", celery("beat", "--schedule", str(tmp_path / "beat-schedule")), env
        ),
        "subscriber": processes.start(
            "subscriber", [sys.executable, "manage.py", "subscribe_upstream"], env
        ),
    }
    for service in started:
        checked = wait_until(
            lambda service=service: (r := healthcheck(service, env)).returncode == 0 and r,
            timeout=60,
            step=0.5,
            what=f"{service} healthy",
        )
        assert checked.stdout.startswith(f"{service} alive (pid {started[service].pid}")
    beat = json.loads(redis_db.get(heartbeat.key("beat")))
    assert beat["lease"] == "held"

    killed = time.monotonic()
    for process in started.values():
        process.send_signal(signal.SIGKILL)  # no clean shutdown: the heartbeat just stops
        process.wait()
    for service in started:
        checked = wait_until(
            lambda service=service: (r := healthcheck(service, env)).returncode == 1 and r,
            timeout=heartbeat.TTL_SECONDS + 10,
            step=0.5,
            what=f"{service} unhealthy",
        )
        assert checked.stderr.strip().splitlines() == [
            f"{service}: no heartbeat from {heartbeat.socket.gethostname()} for "
            f"{heartbeat.TTL_SECONDS} s (not running, hung, or cannot reach Redis)"
        ]
    # Not before the heartbeat's TTL was over: a missed beat or two is no death.
    assert time.monotonic() - killed >= heartbeat.TTL_SECONDS - heartbeat.BEAT_SECONDS


@pytest.mark.django_db(transaction=True)
def test_the_web_server_is_healthy_while_it_answers(processes, redis_db, settings):
    port = free_port()
    env = {"WEB_PORT": str(port), "REDIS_URL": settings.REDIS_URL}
    web_env = {"DJANGO_SETTINGS_MODULE": "dashboard.test_settings", "DATABASE_URL": database_url()}
    web = processes.start("web", web_command(), {**web_env, **WEB_ENV, **env})
    wait_for_port(port, web, "web")
    alive = healthcheck("web", env)
    assert alive.returncode == 0, alive.stderr
    # No upstream has answered yet: /health/ says 503, and the web process is still alive.
    assert alive.stdout.strip() == f"web alive (http://127.0.0.1:{port}/health/ answered 503)"

    web.terminate()
    web.wait(timeout=10)
    # A monitor's probe answered 503 is no log line: the failure is logged once, by the worker.
    assert "Service Unavailable" not in (LOGS / "web.log").read_text()
    dead = healthcheck("web", env)
    assert dead.returncode == 1
    assert dead.stderr.startswith(f"web: nothing answers at http://127.0.0.1:{port}/health/")
    assert len(dead.stderr.strip().splitlines()) == 1


def test_a_service_with_no_heartbeat_is_unhealthy_and_an_unknown_one_refused(redis_db, settings):
    env = {"REDIS_URL": settings.REDIS_URL}
    silent = healthcheck("subscriber", env)
    assert silent.returncode == 1 and "subscriber: no heartbeat" in silent.stderr
    unknown = healthcheck("scheduler", env)
    assert unknown.returncode != 0 and "invalid choice: 'scheduler'" in unknown.stderr
