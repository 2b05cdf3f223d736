"""The one upstream subscriber: a real websocket to the emulator, real Redis, the real tile
fan-out. An update the emulator pushes reaches the browsers' group."""

import asyncio
import json

import httpx
import pytest

from metrics import fanout, live
from metrics.management.commands import subscribe_upstream

pytestmark = pytest.mark.django_db(transaction=True)


async def next_tile(pubsub, metric_id, category, predicate, timeout=10.0):
    """The first tile record for (metric_id, category) in the group that satisfies predicate."""
    async with asyncio.timeout(timeout):
        async for message in pubsub.listen():
            if message["type"] != "message":
                continue
            for tile in json.loads(message["data"]):
                if (tile["metric_id"], tile["category"]) == (metric_id, category) and predicate(
                    tile
                ):
                    return tile


async def test_a_websocket_update_reaches_the_tile_group(upstream):
    pubsub = live.get_redis().pubsub()
    await pubsub.subscribe(fanout.topic(live.ALL_GROUP))
    subscriber = asyncio.create_task(subscribe_upstream.run())
    try:
        ready = await next_tile(pubsub, "LWCGRP01", "Sales", lambda t: t["state"] == "live")
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

        tile = await next_tile(
            pubsub, "LWCGRP01", "Sales", lambda t: t["value"]["finished_ms"] == 4242
        )
        assert tile["source"] == "websocket"
        assert tile["value"] == {
            "type": "DURATION",
            "finished_ms": 4242,
            "up": 1,
            "down": 0,
            "last_update_ms": tile["upstream_ms"],
        }
        assert tile["seq"] > ready["seq"]
        assert stats["ws_open"] == 1  # one upstream websocket for all metrics
    finally:
        subscriber.cancel()
        await asyncio.gather(subscriber, return_exceptions=True)


async def test_a_broken_frame_is_counted_not_fatal(redis_db):
    from metrics import services

    assert await services.ingest_frame("{not json", {}) is None
    assert await services.ingest_frame(b"\xff\xfe", {}) is None
    assert redis_db.get("acr:bad_frames") == "2"


async def test_after_a_dropped_websocket_it_reconnects_and_resyncs(upstream):
    pubsub = live.get_redis().pubsub()
    await pubsub.subscribe(fanout.topic(live.ALL_GROUP))
    subscriber = asyncio.create_task(subscribe_upstream.run())
    try:
        await next_tile(pubsub, "CIQGRP01", "Billing", lambda t: t["state"] == "live")
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
            tile = await next_tile(
                pubsub, "CIQGRP01", "Billing", lambda t: t["value"]["count"] == 17
            )
            after = (await http.get("/_emulator/stats")).json()
        assert after["ws_total"] == before["ws_total"] + 1  # reconnected
        assert after["ws_open"] == 1
        assert after["requests"]["values"] > before["requests"]["values"]  # resynced over REST
        assert tile["state"] == "live"
    finally:
        subscriber.cancel()
        await asyncio.gather(subscriber, return_exceptions=True)


async def test_it_resubscribes_when_the_catalog_changes(upstream):
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
    finally:
        subscriber.cancel()
        await asyncio.gather(subscriber, return_exceptions=True)
