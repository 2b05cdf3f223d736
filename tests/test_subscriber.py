"""The one upstream subscriber: a real websocket to the emulator, real Redis, the real record
fan-out. An update the emulator pushes reaches the browsers' group."""

import asyncio
import json
import logging

import httpx
import pytest

from metrics import fanout, live
from metrics.acr import stream
from metrics.management.commands import subscribe_upstream

pytestmark = pytest.mark.django_db(transaction=True)

GROUPS = ["Sales", "Support", "Billing"]


async def next_record(pubsub, metric_id, category, predicate, timeout=10.0):
    """The first record for (metric_id, category) in the group that satisfies predicate."""
    async with asyncio.timeout(timeout):
        async for message in pubsub.listen():
            if message["type"] != "message":
                continue
            for record in json.loads(message["data"]):
                if (record["metric_id"], record["category"]) == (metric_id, category) and predicate(
                    record
                ):
                    return record


async def test_a_websocket_update_reaches_the_record_group(upstream):
    pubsub = live.get_redis().pubsub()
    await pubsub.subscribe(fanout.topic(live.ALL_GROUP))
    subscriber = asyncio.create_task(subscribe_upstream.run())
    try:
        ready = await next_record(pubsub, "LWCGRP01", "Sales", lambda t: t["state"] == "live")
        assert ready["value"]["type"] == "DURATION"

        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"{upstream.url}/_emulator/values",
                json={
                    "metricId": "LWCGRP01",
                    "categoryValue": "Sales",
                    "value": {
                        "type": "DURATION",
                        "finishedDuration": 4242,
                        "numCountingUp": 1,
                        "numCountingDown": 0,
                    },
                },
            )
            response.raise_for_status()
            stats = (await http.get(f"{upstream.url}/_emulator/stats")).json()

        record = await next_record(
            pubsub, "LWCGRP01", "Sales", lambda t: t["value"]["finished_ms"] == 4242
        )
        assert record["source"] == "websocket"
        assert record["value"] == {
            "type": "DURATION",
            "finished_ms": 4242,
            "up": 1,
            "down": 0,
            "last_update_ms": record["upstream_ms"],
        }
        assert record["seq"] > ready["seq"]
        assert stats["ws_open"] == 1  # one upstream websocket for all metrics
    finally:
        subscriber.cancel()
        await asyncio.gather(subscriber, return_exceptions=True)


@pytest.fixture
async def upstream_in_this_loop(settings, redis_db):
    """The emulator served from the test's own event loop: the frames of a tick are all on the
    subscriber's socket before it reads (as they are when they arrive back to back), not
    depending on how the two processes happen to be scheduled."""
    from aiohttp import web

    from acr_emulator import EmulatorConfig, create_app

    runner = web.AppRunner(
        create_app(
            EmulatorConfig(auth_key="in-loop-key", scenario="static", init_seconds=0, strict=True)
        )
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    settings.ACR_BASE_URL, settings.ACR_AUTH_KEY = f"http://{host}:{port}", "in-loop-key"
    yield settings.ACR_BASE_URL
    await runner.cleanup()


async def test_values_pushed_in_one_tick_are_published_together(upstream_in_this_loop):
    """The upstream sends a frame per value; frames that arrived together are stored and
    published as one message, so a board shows the tick at once, not value by value."""
    pubsub = live.get_redis().pubsub()
    await pubsub.subscribe(fanout.topic(live.ALL_GROUP))
    subscriber = asyncio.create_task(subscribe_upstream.run())
    changed = [(m, c) for m in ("CIQGRP01", "AVLGRP01", "CABGRP01") for c in GROUPS]
    try:
        await next_record(pubsub, "CIQGRP01", "Sales", lambda t: t["source"] == "websocket")
        body = {
            "values": [
                {"metricId": m, "categoryValue": c, "value": {"type": "COUNT", "count": 500}}
                for m, c in changed
            ]
        }
        async with httpx.AsyncClient(base_url=upstream_in_this_loop) as http:
            (await http.post("/_emulator/values", json=body)).raise_for_status()
        async with asyncio.timeout(10):
            async for message in pubsub.listen():
                if message["type"] != "message":
                    continue
                records = json.loads(message["data"])
                if any(t["value"].get("count") == 500 for t in records):
                    break
        assert [(t["metric_id"], t["category"]) for t in records] == changed
        assert {t["source"] for t in records} == {"websocket"}
    finally:
        subscriber.cancel()
        await asyncio.gather(subscriber, return_exceptions=True)


async def test_a_broken_frame_is_counted_not_fatal(redis_db):
    from metrics import ingest

    assert await ingest.ingest_frames(["{not json"], {}) is None
    assert await ingest.ingest_frames([b"\xff\xfe"], {}) is None
    assert redis_db.get("acr:bad_frames") == "2"


async def test_after_a_dropped_websocket_it_reconnects_and_resyncs(upstream):
    pubsub = live.get_redis().pubsub()
    await pubsub.subscribe(fanout.topic(live.ALL_GROUP))
    subscriber = asyncio.create_task(subscribe_upstream.run())
    try:
        await next_record(pubsub, "CIQGRP01", "Billing", lambda t: t["state"] == "live")
        async with httpx.AsyncClient(base_url=upstream.url) as http:
            before = (await http.get("/_emulator/stats")).json()
            # Same key, but every open socket is closed: a dropped connection.
            await http.post(
                "/_emulator/auth-key", json={"key": upstream.auth_key, "disconnect": True}
            )
            await http.post(
                "/_emulator/values",
                json={
                    "metricId": "CIQGRP01",
                    "categoryValue": "Billing",
                    "value": {"type": "COUNT", "count": 17},
                },
            )
            record = await next_record(
                pubsub, "CIQGRP01", "Billing", lambda t: t["value"]["count"] == 17
            )
            # The resync over REST runs beside the new websocket, which may bring the value
            # first: wait for it.
            async with asyncio.timeout(10):
                while (after := (await http.get("/_emulator/stats")).json())["requests"][
                    "values"
                ] == before["requests"]["values"]:
                    await asyncio.sleep(0.1)
        assert after["ws_total"] == before["ws_total"] + 1  # reconnected
        assert after["ws_open"] == 1
        assert record["state"] == "live"
    finally:
        subscriber.cancel()
        await asyncio.gather(subscriber, return_exceptions=True)


async def test_it_resubscribes_when_the_catalog_changes(upstream, caplog):
    caplog.set_level(logging.INFO, logger="metrics")
    from metrics.acr.values import CatalogMetric

    subscriber = asyncio.create_task(subscribe_upstream.run())
    try:
        async with httpx.AsyncClient(base_url=upstream.url) as http:

            async def stats():
                return (await http.get("/_emulator/stats")).json()

            async with asyncio.timeout(10):
                while (await stats())["ws_open"] != 1:
                    await asyncio.sleep(0.2)
            # The catalog sync finds that one metric is gone.
            await live.store_catalog(
                [CatalogMetric("CIQGRP01", "Calls in Queue", "GROUP", ("Sales",))]
            )
            async with asyncio.timeout(10):
                while (await stats())["ws_total"] != 2:
                    await asyncio.sleep(0.2)
            assert (await stats())["ws_open"] == 1
        # Taken for a change (resubscribed at once), not for a lost connection (backoff, and
        # a websocket error on every screen).
        assert "metric ids changed: resubscribing" in caplog.text
        assert "upstream closed the websocket" not in caplog.text
    finally:
        subscriber.cancel()
        await asyncio.gather(subscriber, return_exceptions=True)


async def test_a_cancel_swallowed_while_storing_frames_still_ends_the_session(upstream, settings):
    """On Python 3.11, asyncio.wait_for (inside redis-py) can swallow a cancellation that lands
    as its work completes. The session must still end, not wait for a message that never
    comes."""
    storing = asyncio.Event()

    async def on_frames(raws):
        storing.set()
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            pass  # swallowed

    async def on_status(connected, error):
        pass

    url = stream.subscription_url(
        upstream.url, settings.ACR_API_PREFIX, ["CIQGRP01"], upstream.auth_key
    )
    session = asyncio.create_task(stream.hold_session(url, on_frames, on_status, lambda: False))
    async with asyncio.timeout(10):
        await storing.wait()  # the snapshot's frames, and nothing after them
    session.cancel()
    done, _ = await asyncio.wait([session], timeout=5)
    assert done, "the cancelled session is still waiting for a message"
    assert session.cancelled()
