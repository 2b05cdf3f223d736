"""The poll task against the emulator over real HTTP, with a real Redis."""

import base64
import json
import logging

import httpx
import pytest

from metrics import tasks
from metrics.models import Metric
from tests.conftest import Emulator, start_emulator, wait_until

pytestmark = pytest.mark.django_db


def tiles(redis_db) -> dict[tuple[str, str], dict]:
    records = (json.loads(raw) for raw in redis_db.hgetall("acr:live:record").values())
    return {(r["metric_id"], r["category"]): r for r in records}


def queued_polls(redis_db) -> list[dict]:
    """The poll tasks waiting in the Celery queue (the broker is the same Redis)."""
    messages = [json.loads(raw) for raw in redis_db.lrange("celery", 0, -1)]
    return [m for m in messages if m["headers"]["task"] == "metrics.tasks.poll_values"]


def wait_until_ready(emulator: Emulator, ids: list[str], key: str | None = None) -> None:
    """Waits until the upstream has finished initializing `ids` (asked directly, not through the
    code under test, so that its next poll is the first one after the upstream is ready)."""

    def ready() -> bool:
        if not ids:
            return True
        response = httpx.get(
            f"{emulator.url}/rest/api/v1/realtime/metrics/values",
            params={"id": ",".join(ids)},
            headers={"Authorization": f"Bearer {key or emulator.auth_key}"},
            timeout=5,
        )
        return response.status_code == 200 and not response.json()["initializing"]

    wait_until(ready, timeout=10, what=f"the upstream to have {', '.join(ids)} ready")


def test_it_shows_initializing_then_the_values_once_ready(upstream, redis_db):
    initializing = tasks.poll_values()

    assert "CIQGRP01" in initializing
    first = tiles(redis_db)
    assert first[("CIQGRP01", "Sales")]["state"] == "initializing"
    assert first[("CIQGRP01", "Sales")]["value"] is None  # never shown as 0
    assert first[("CANTOD01", "")]["state"] == "initializing"
    assert Metric.objects.filter(metric_id="CIQGRP01", in_catalog=True).exists()
    [retry] = queued_polls(redis_db)
    assert (
        sorted(json.loads(base64.b64decode(retry["body"]))[1]["ids"]) == initializing
    )  # polled again soon

    wait_until_ready(upstream, initializing)
    assert tasks.poll_values(initializing) == []

    ready = tiles(redis_db)
    assert ready[("CIQGRP01", "Sales")]["state"] == "live"
    assert ready[("CIQGRP01", "Sales")]["value"]["type"] == "COUNT"
    assert ready[("LWCGRP01", "Sales")]["value"]["type"] == "DURATION"
    assert ready[("AWTGRP01", "Sales")]["value"]["type"] == "AVERAGE_DURATION"
    assert ready[("CANTOD01", "")]["state"] == "live"


def test_a_restarted_upstream_initializing_again_is_not_shown_with_old_live_numbers(
    upstream, redis_db
):
    """After an upstream restart every metric is initializing: a value from before it must not
    go on looking live, and the values come back once the upstream has them again."""
    initializing = tasks.poll_values()
    wait_until_ready(upstream, initializing)
    assert tasks.poll_values() == []
    before = tiles(redis_db)[("CIQGRP01", "Sales")]
    assert before["state"] == "live"

    upstream.control("cold", {})  # what a restart does to every metric
    initializing = tasks.poll_values()
    assert "CIQGRP01" in initializing
    cold = tiles(redis_db)[("CIQGRP01", "Sales")]
    assert (cold["state"], cold["value"]) == ("initializing", None)
    assert tasks.poll_values() != []  # still initializing: nothing new stored or sent
    assert tiles(redis_db)[("CIQGRP01", "Sales")]["received_ms"] == cold["received_ms"]

    wait_until_ready(upstream, initializing)
    assert tasks.poll_values() == []
    after = tiles(redis_db)[("CIQGRP01", "Sales")]
    assert after["state"] == "live" and after["value"]["type"] == "COUNT"


@pytest.mark.parametrize("form", ["id", "combo", "object"])
def test_the_older_400_answer_and_every_initializing_form_work(settings, processes, redis_db, form):
    emulator = start_emulator(
        processes,
        "--scenario",
        "static",
        "--init-seconds",
        "1",
        "--not-ready-status",
        "400",
        "--initializing-form",
        form,
    )
    settings.ACR_BASE_URL, settings.ACR_AUTH_KEY = emulator.url, emulator.auth_key

    initializing = tasks.poll_values()

    assert "ATTAGT01" in initializing
    assert {r["state"] for r in tiles(redis_db).values()} == {"initializing"}
    wait_until_ready(emulator, initializing)
    tasks.poll_values()
    assert {r["state"] for r in tiles(redis_db).values()} == {"live"}


def test_a_bad_key_is_reported_in_words_without_the_key(upstream, settings, redis_db):
    settings.ACR_AUTH_KEY = "wrong-" + upstream.auth_key

    assert tasks.poll_values() == []

    status = redis_db.hgetall("acr:status")
    assert "401" in status["poll_error"]
    assert upstream.auth_key not in json.dumps(status)
    assert settings.ACR_AUTH_KEY not in json.dumps(status)


def test_an_unreachable_upstream_is_reported(settings, redis_db):
    from tests.conftest import free_port

    settings.ACR_BASE_URL = f"http://127.0.0.1:{free_port()}"
    assert tasks.poll_values() == []
    assert "unreachable" in redis_db.hgetall("acr:status")["poll_error"]


def test_a_rotated_key_stops_polling_loudly_and_resumes_with_the_new_key(
    upstream, settings, redis_db, tmp_path
):
    key_file = tmp_path / "acr_key"
    key_file.write_text(upstream.auth_key)
    settings.ACR_AUTH_KEY_FILE = str(key_file)
    initializing = tasks.poll_values()
    new_key = "rotated-" + upstream.auth_key
    upstream.control("auth-key", {"key": new_key})

    assert tasks.poll_values() == []
    assert "401" in redis_db.hget("acr:status", "poll_error")
    asked = upstream.stats()["requests"]["values"]
    tasks.poll_values()
    tasks.poll_values()
    assert upstream.stats()["requests"]["values"] == asked  # the refused key is not retried

    key_file.write_text(new_key + "\n")
    wait_until_ready(upstream, initializing, key=new_key)
    asked = upstream.stats()["requests"]["values"]  # counted again: the wait asked it too
    tasks.poll_values()
    assert upstream.stats()["requests"]["values"] == asked + 1
    assert redis_db.hget("acr:status", "poll_error") == ""
    assert {r["state"] for r in tiles(redis_db).values()} == {"live"}


def test_the_upstream_initializing_is_logged_when_it_starts_and_ends_not_per_poll(
    upstream, redis_db, caplog
):
    caplog.set_level(logging.INFO, logger="metrics.ingest")
    initializing = tasks.poll_values()
    tasks.poll_values(initializing)  # still initializing: nothing new to say
    started = [r for r in caplog.records if "is initializing" in r.getMessage()]
    assert len(started) == 1
    assert started[0].getMessage().startswith(f"upstream is initializing {len(initializing)}")

    wait_until_ready(upstream, initializing)
    tasks.poll_values(initializing)
    tasks.poll_values()  # ready and answering: nothing new to say
    ended = [r for r in caplog.records if "finished initializing" in r.getMessage()]
    assert [r.getMessage() for r in ended] == [
        f"upstream finished initializing {len(initializing)} metrics: {', '.join(initializing)}"
    ]
