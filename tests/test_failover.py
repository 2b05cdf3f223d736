"""Exactly one active upstream subscriber per site: a standby takes over within 20 s when the
active one is killed or hangs, and a hung one that wakes up cannot write."""

import json
import signal
import sys
import time

import pytest

from metrics import live
from tests.conftest import LOGS, count_record, system_env, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

ACTIVE = "this subscriber is active"


def start_subscribers(processes, emulator, redis_url, count=2):
    """Starts `count` subscribers: the first takes the lease (waited for), the others stand by."""
    env = system_env(emulator, redis_url)

    def start(name: str):
        return processes.start(name, [sys.executable, "manage.py", "subscribe_upstream"], env)

    subscribers = {"subscriber-0": start("subscriber-0")}
    wait_until(
        lambda: ACTIVE in log_of("subscriber-0"), timeout=20, what="subscriber-0 to be active"
    )
    for n in range(1, count):
        subscribers[f"subscriber-{n}"] = start(f"subscriber-{n}")
    return subscribers


def log_of(name: str) -> str:
    return (LOGS / f"{name}.log").read_text()


def active_subscriber(subscribers) -> str:
    return wait_until(
        lambda: next((n for n in subscribers if log_of(n).count(ACTIVE) == 1), None),
        timeout=20,
        what="one subscriber to be active",
    )


def set_wait(emulator, redis_db, finished_ms: int) -> None:
    """Sets a value upstream and waits for it to arrive in the live state by websocket."""
    emulator.control(
        "values",
        {
            "metricId": "LWCGRP01",
            "categoryValue": "Support",
            "value": {
                "type": "DURATION",
                "finishedDuration": finished_ms,
                "numCountingUp": 0,
                "numCountingDown": 0,
            },
        },
    )

    def arrived():
        raw = redis_db.hget("acr:live:record", "LWCGRP01\x1fSupport")
        record = json.loads(raw) if raw else None
        return record and (record["value"] or {}).get("finished_ms") == finished_ms

    wait_until(arrived, timeout=10, what=f"LWCGRP01/Support = {finished_ms} ms in the live state")


@pytest.mark.parametrize("failure", ["killed", "hung"])
def test_a_standby_takes_over_within_20_seconds(processes, emulator, redis_db, settings, failure):
    subscribers = start_subscribers(processes, emulator, settings.REDIS_URL)
    first = active_subscriber(subscribers)
    wait_until(
        lambda: emulator.stats()["ws_open"] == 1, timeout=15, what="one upstream websocket open"
    )
    set_wait(emulator, redis_db, 1111)
    assert emulator.stats()["ws_total"] == 1  # the standby holds no upstream socket

    started = time.monotonic()
    subscribers[first].send_signal(signal.SIGKILL if failure == "killed" else signal.SIGSTOP)
    second = wait_until(
        lambda: next((n for n in subscribers if n != first and ACTIVE in log_of(n)), None),
        timeout=20,
        what=f"a standby to take over from {first}",
    )
    set_wait(emulator, redis_db, 2222)
    took = time.monotonic() - started
    print(f"standby took over after the active one was {failure}: {took:.1f} s")
    assert took <= 20

    if failure == "hung":
        subscribers[first].send_signal(signal.SIGCONT)
        wait_until(
            lambda: "lost the subscriber lease" in log_of(first) or "fenced off" in log_of(first),
            timeout=10,
            what=f"{first}, woken up, to lose its lease",
        )
        set_wait(emulator, redis_db, 3333)
        wait_until(
            lambda: emulator.stats()["ws_open"] == 1, timeout=10, what="one upstream websocket open"
        )
        log = log_of(first)
        woke = max(log.rfind("lost the subscriber lease"), log.rfind("fenced off"))
        assert ACTIVE not in log[woke:]  # it went back to standby, not active again
    assert second != first


async def test_a_write_without_the_lease_is_fenced_off(redis_db):
    record = {
        "metric_id": "A",
        "category": "",
        "state": "live",
        "error": "",
        "value": {"type": "COUNT", "count": 1, "last_update_ms": 5},
        "upstream_ms": 5,
        "source": "websocket",
        "received_ms": 5,
    }
    mine, theirs = live.subscriber_lease(10_000), live.subscriber_lease(10_000)
    assert await mine.acquire(token="mine")
    assert len(await live.write_records([record], fence="mine")) == 1
    with pytest.raises(live.LeaseLost):
        await live.write_records([{**record, "upstream_ms": 6}], fence="someone-else")
    assert json.loads(redis_db.hget("acr:live:record", "A\x1f"))["upstream_ms"] == 5
    assert not await theirs.acquire(token="theirs")
    await mine.release()
    assert await theirs.acquire(token="theirs")
    assert len(await live.write_records([{**record, "upstream_ms": 7}], fence="theirs")) == 1


async def test_writes_go_on_after_redis_forgot_the_write_script(redis_db):
    """Redis keeps no scripts across a restart (SCRIPT FLUSH does the same): the next write
    loads it again instead of failing."""
    record = count_record("CIQGRP01", "Sales", 3, 1000)
    assert len(await live.write_records([record])) == 1
    redis_db.script_flush()
    accepted = await live.write_records([count_record("CIQGRP01", "Sales", 4, 2000)])
    assert [r["value"]["count"] for r in accepted] == [4]
