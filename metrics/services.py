"""The one place that writes: catalog sync, value polling and websocket ingestion.

Each function fetches, turns the payload into records (metrics.records), stores them in the live
state (metrics.live) and publishes what changed. Tasks and the subscriber command only call these.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from metrics import live, records
from metrics.acr import client
from metrics.acr.values import CatalogMetric, PayloadError, parse_frame
from metrics.models import Metric

log = logging.getLogger(__name__)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def upstream_client():
    return client.make_client(
        settings.ACR_BASE_URL,
        settings.ACR_API_PREFIX,
        settings.ACR_AUTH_KEY,
        settings.ACR_TIMEOUT_SECONDS,
    )


def save_metrics(catalog: list[CatalogMetric]) -> None:
    """Mirror the catalog into the database, so the admin and boards can refer to metrics."""
    seen = []
    for metric in catalog:
        Metric.objects.update_or_create(
            metric_id=metric.metric_id,
            defaults={
                "name": metric.name,
                "category_type": metric.category_type,
                "categories": list(metric.categories),
                "in_catalog": True,
            },
        )
        seen.append(metric.metric_id)
    Metric.objects.exclude(metric_id__in=seen).update(in_catalog=False)


async def _report(field: str, error: str = "") -> None:
    """Records the outcome of an upstream call in the status and tells the browsers."""
    fields: dict[str, str | int] = {f"{field}_error": error}
    if not error:
        fields[f"{field}_ok_ms"] = now_ms()
    status = await live.update_status(**fields)
    await live.publish({"type": "status.update", "status": status})


async def sync_catalog() -> list[dict[str, Any]]:
    """Fetches the catalog, stores it, and tells the browsers when it changed."""
    try:
        async with upstream_client() as http:
            catalog = await client.fetch_catalog(http)
    except client.UpstreamError as exc:
        log.error("catalog sync failed: %s", exc)
        await _report("poll", str(exc))
        raise
    await live.update_status(catalog_ok_ms=now_ms())
    if await live.store_catalog(catalog):
        log.info("catalog changed: %d metrics", len(catalog))
        await sync_to_async(save_metrics)(catalog)
        await live.publish({"type": "catalog.update"})
    return live.catalog_to_wire(catalog)


async def _catalog_by_id() -> dict[str, dict[str, Any]]:
    catalog = await live.read_catalog()
    if catalog is None:
        catalog = await sync_catalog()
    return {metric["metric_id"]: metric for metric in catalog}


async def store_and_publish(new_records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    accepted = await live.write_records(new_records)
    if accepted:
        await live.publish({"type": "tiles.update", "tiles": accepted})
    return accepted


async def poll_values(ids: list[str] | None = None) -> list[str]:
    """Polls the values of `ids` (default: every catalog metric).

    Returns the ids the upstream is still initializing, which the caller polls again soon.
    """
    catalog = await _catalog_by_id()
    wanted = [i for i in (ids or list(catalog)) if i in catalog]
    if not wanted:
        return []
    try:
        async with upstream_client() as http:
            batch = await client.fetch_values(http, wanted, set(catalog))
    except client.UpstreamError as exc:
        log.error("values poll failed: %s", exc)
        await _report("poll", str(exc))
        raise
    for error in batch.response.errors:
        log.warning("upstream sent an unreadable value: %s", error)
    at = now_ms()
    await store_and_publish(
        records.value_records(batch.response.results, catalog, source="poll", now_ms=at)
        + records.initializing_records(batch.response.initializing, catalog, now_ms=at)
        + records.rejected_records(batch.rejected, catalog, now_ms=at)
    )
    await _report("poll")
    return sorted({item.metric_id for item in batch.response.initializing})


async def ingest_frame(raw: str | bytes, catalog: dict[str, dict[str, Any]]) -> int:
    """Stores one websocket frame; returns how many records changed. Bad frames are logged and
    counted, never raised: one broken message must not end the subscription."""
    try:
        values = parse_frame(json.loads(raw))
    except (ValueError, PayloadError) as exc:
        await live.get_redis().incr(live.PREFIX + "bad_frames")
        log.warning("dropped an unreadable websocket frame: %s", str(exc)[:200])
        return 0
    new_records = records.value_records(values, catalog, source="websocket", now_ms=now_ms())
    return len(await store_and_publish(new_records))


async def report_subscription(connected: bool, error: str) -> None:
    await _report("ws", "" if connected else error)
