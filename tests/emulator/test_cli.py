"""``python -m acr_emulator`` as a real process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def env(**extra: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k != "ACR_AUTH_KEY"}
    environment["PYTHONPATH"] = str(ROOT)
    environment.update(extra)
    return environment


def test_it_refuses_to_start_without_a_key():
    done = subprocess.run(
        [sys.executable, "-m", "acr_emulator", "--port", "1"],
        env=env(),
        capture_output=True,
        text=True,
        timeout=20,
        cwd=ROOT,
    )
    assert done.returncode == 2
    assert "ACR_AUTH_KEY" in done.stderr


def test_it_serves_then_stops_cleanly_on_sigterm():
    port = free_port()
    command = [sys.executable, "-m", "acr_emulator", "--port", str(port), "--seed", "9"]
    command += ["--init-seconds", "0", "--prefix", "/api/v1"]
    process = subprocess.Popen(
        command, env=env(ACR_AUTH_KEY="cli-key"), stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        line = process.stdout.readline().strip()
        assert line == (
            f"ACR emulator listening on http://127.0.0.1:{port}/api/v1 (scenario=demo, seed=9)"
        )
        response = httpx.get(
            f"http://127.0.0.1:{port}/rest/api/v1/realtime/metrics/values?id=CIQGRP01",
            headers={"Authorization": "Bearer cli-key"},
        )
        assert response.status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_strict_is_off_unless_asked_for():
    from acr_emulator.__main__ import build_parser, config_from_args

    def config(*flags: str):
        return config_from_args(build_parser().parse_args(["--auth-key", "k", *flags]))

    assert config().strict is False
    assert config("--strict").strict is True


def test_the_demo_is_busy_unless_asked_for_the_daily_rota():
    from acr_emulator.__main__ import build_parser, config_from_args

    def config(*flags: str):
        return config_from_args(build_parser().parse_args(["--auth-key", "k", *flags]))

    assert config().demo_busy is True
    assert config("--no-demo-busy").demo_busy is False


def test_refuse_websockets_is_a_fault_from_start_up():
    from acr_emulator.__main__ import build_parser, config_from_args

    def faults(*flags: str):
        return config_from_args(build_parser().parse_args(["--auth-key", "k", *flags])).faults

    assert faults().refuse_websockets is None
    assert faults("--refuse-websockets", "403").active() == {"refuse_websockets": 403}
    assert faults("--refuse-websockets", "502", "--latency-ms", "5").active() == {
        "latency_ms": 5,
        "refuse_websockets": 502,
    }


def test_a_refuse_websockets_status_outside_4xx_5xx_stops_it_at_start_up():
    done = subprocess.run(
        [sys.executable, "-m", "acr_emulator", "--port", "1", "--refuse-websockets", "200"],
        env=env(ACR_AUTH_KEY="cli-key"),
        capture_output=True,
        text=True,
        timeout=20,
        cwd=ROOT,
    )
    assert done.returncode == 2
    assert "refuse_websockets must be an integer from 400 to 599" in done.stderr
