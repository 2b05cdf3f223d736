"""The metrics' rules: how an upstream answer is labelled, who may scrape /metrics, records by
state, what one fan-out burst counts, Celery's task signals, and bad settings refused."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from prometheus_client import REGISTRY

from dashboard.celery import app
from dashboard.scrape import may_scrape, records_by_state, state_families
from metrics import observability
from tests.conftest import ROOT


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize(
    "status, label",
    [(200, "200"), (206, "206"), (400, "400"), (401, "401"), (403, "403"), (404, "404")]
    + [(500, "5xx"), (503, "5xx"), (429, "4xx"), (302, "3xx")],
)
def test_the_statuses_the_client_treats_apart_keep_their_number(status, label):
    assert observability.status_label(status) == label


ALLOWED = ["127.0.0.1", "::1", "10.0.0.0/8"]


@pytest.mark.parametrize(
    "client, authorization, token, allowed",
    [
        ("127.0.0.1", "", "", True),
        ("::1", "", "", True),
        ("10.20.30.40", "", "", True),
        ("192.0.2.7", "", "", False),
        ("192.0.2.7", "Bearer s3cret-token", "s3cret-token", True),
        ("192.0.2.7", "bearer s3cret-token", "s3cret-token", True),
        ("192.0.2.7", "Bearer wrong", "s3cret-token", False),
        ("192.0.2.7", "Bearer s3cret-token-and-more", "s3cret-token", False),
        ("192.0.2.7", "Basic s3cret-token", "s3cret-token", False),
        ("192.0.2.7", "s3cret-token", "s3cret-token", False),
        # No token set: no Authorization header opens it, even an empty bearer.
        ("192.0.2.7", "Bearer ", "", False),
        ("not-an-address", "", "", False),
    ],
)
def test_only_allowed_addresses_or_the_token_may_scrape(client, authorization, token, allowed):
    assert may_scrape(client, authorization, allowed=ALLOWED, token=token) is allowed


def report(status: str, *counts: tuple[int, int, int]) -> dict:
    return {
        "status": status,
        "metrics": [{"live": a, "initializing": b, "error": c} for a, b, c in counts],
        "upstream": {
            "subscriber_active": True,
            "poll_ok_age_s": 1.5,
            "websocket_ok_age_s": None,
        },
    }


def test_records_count_by_state_and_the_live_ones_turn_stale_with_the_upstream():
    assert records_by_state(report("ok", (3, 1, 0), (2, 0, 1))) == {
        "live": 5,
        "initializing": 1,
        "stale": 0,
        "error": 1,
    }
    assert records_by_state(report("down", (3, 1, 0), (2, 0, 1))) == {
        "live": 0,
        "initializing": 1,
        "stale": 5,
        "error": 1,
    }


def test_a_path_never_heard_from_reads_as_infinitely_old():
    families = {f.name: f for f in state_families(report("degraded", (1, 0, 0)), queue=4)}
    ages = {
        s.labels["path"]: s.value
        for s in families["acrdash_upstream_last_success_age_seconds"].samples
    }
    assert ages == {"poll": 1.5, "websocket": float("inf")}
    assert families["acrdash_upstream_up"].samples[0].value == 1
    assert families["acrdash_celery_queue_length"].samples[0].value == 4
    assert "acrdash_celery_queue_length" not in {
        f.name for f in state_families(report("ok"), queue=None)
    }


def test_a_burst_counts_its_frames_and_bytes_once_and_each_arrival_once():
    frames, sent = (
        sample("acrdash_frames_sent_total", type="records"),
        sample("acrdash_sent_bytes_total", type="records"),
    )
    delays = sample("acrdash_fanout_delay_seconds_count")
    slow = sample("acrdash_fanout_delay_seconds_bucket", le="0.1")
    # Two records that arrived together (one of them in its metric's group and the All group),
    # and one that came later: two arrivals.
    records = [
        {"seq": 7, "received_ms": 10_000},
        {"seq": 7, "received_ms": 10_000},
        {"seq": 8, "received_ms": 10_000},
        {"seq": 9, "received_ms": 10_950},
    ]
    observability.observe_fanout(records, written_ms=11_000, frames=3, sent_bytes=420)
    assert sample("acrdash_frames_sent_total", type="records") - frames == 3
    assert sample("acrdash_sent_bytes_total", type="records") - sent == 420
    assert sample("acrdash_fanout_delay_seconds_count") - delays == 2
    # 1 s and 50 ms: one of them within 100 ms.
    assert sample("acrdash_fanout_delay_seconds_bucket", le="0.1") - slow == 1

    # Nobody was written to: nothing counted.
    observability.observe_fanout(records, written_ms=11_000, frames=0, sent_bytes=0)
    assert sample("acrdash_fanout_delay_seconds_count") - delays == 2


@app.task(name="tests.test_observability.explode")
def explode() -> None:
    raise RuntimeError("a task that fails")


def test_celery_tasks_are_timed_and_their_failures_counted():
    name = "tests.test_observability.explode"
    runs = sample("acrdash_celery_task_seconds_count", task=name)
    failures = sample("acrdash_celery_task_failures_total", task=name)
    explode.apply()  # runs it here, through Celery's tracer and its signals
    explode.apply()
    assert sample("acrdash_celery_task_seconds_count", task=name) - runs == 2
    assert sample("acrdash_celery_task_failures_total", task=name) - failures == 2


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("METRICS_ALLOWED_IPS", "10.0.0.0/8,intranet", "METRICS_ALLOWED_IPS: not an address"),
        ("METRICS_TOKEN_FILE", "/nonexistent/token", "METRICS_TOKEN_FILE='/nonexistent/token'"),
    ],
)
def test_a_bad_metrics_setting_stops_the_start(name, value, message):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "dashboard.settings", name: value}
    env.setdefault("DJANGO_SECRET_KEY", "x" * 50)
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert message in done.stderr


def run_python(code: str, folder) -> str:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_counts_of_other_processes_are_merged_and_a_new_web_forgets_old_sockets(tmp_path):
    folder = tmp_path / "prom"
    count = "from metrics import observability as o; o.SOCKETS.labels('board').inc(3); "
    run_python(count + "o.UPSTREAM_FRAMES.inc(2)", folder)
    run_python(count + "o.UPSTREAM_FRAMES.inc(5)", folder)
    merged = run_python(
        "from metrics import observability as o; print(o.exposition().decode())", folder
    )
    assert "acrdash_upstream_frames_total 7.0" in merged
    assert 'acrdash_sockets{kind="board"} 6.0' in merged
    # The web starts again: the sockets of its earlier workers are gone, the counts stay.
    restarted = run_python(
        "from metrics import observability as o; o.forget_dead_web_workers(); "
        "print(o.exposition().decode())",
        folder,
    )
    assert "acrdash_upstream_frames_total 7.0" in restarted
    assert "acrdash_sockets{" not in restarted
