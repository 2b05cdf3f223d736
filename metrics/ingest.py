"""The only writer of live state: catalog sync, value polling and websocket frames in, records
out.

Each function fetches, turns the payload into records (metrics.records), stores them in the live
state (metrics.live) and publishes what changed. Tasks and the subscriber command only call these;
nothing else writes the live records, the catalog or the upstream status.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from asgiref.sync import sync_to_async
from django.conf import settings

from metrics import live, observability, records
from metrics.acr import client
from metrics.acr.clock import Bounds, estimate_offset, now_ms, value_bounds
from metrics.acr.values import CatalogMetric, Initializing, PayloadError, parse_frame
from metrics.models import Metric

log = logging.getLogger(__name__)

# Clock observations older than this are forgotten (clocks drift and get corrected).
CLOCK_WINDOW_MS = 10 * 60 * 1000
# The offset browsers use changes only by at least this much, so tiles do not jitter.
CLOCK_STEP_MS = 50


def auth_key() -> str:
    """The upstream key, re-read from ACR_AUTH_KEY_FILE when set (so it can be rotated live)."""
    if settings.ACR_AUTH_KEY_FILE:
        try:
            return Path(settings.ACR_AUTH_KEY_FILE).read_text(encoding="utf-8").strip()
        except OSError as exc:
            log.error("cannot read ACR_AUTH_KEY_FILE: %s", exc.strerror)
    return settings.ACR_AUTH_KEY


def key_fingerprint(key: str) -> str:
    """Identifies a key in the status without revealing it."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


@asynccontextmanager
async def upstream_client() -> AsyncIterator[httpx.AsyncClient]:
    """An upstream HTTP client; what its responses tell of the upstream's clock is kept."""
    bounds: list[Bounds] = []
    async with client.make_client(
        settings.ACR_BASE_URL,
        settings.ACR_API_PREFIX,
        auth_key(),
        settings.ACR_TIMEOUT_SECONDS,
        clock_bounds=bounds,
    ) as http:
        try:
            yield http
        finally:
            await observe_clock(bounds)


async def observe_clock(bounds: list[Bounds]) -> None:
    """Updates the upstream clock offset estimate; browsers are told when it moves."""
    if not bounds:
        return
    at = now_ms()
    kept = await live.add_clock_bounds([(b.low, b.high, at) for b in bounds])
    recent = [Bounds(low, high) for low, high, seen in kept if at - seen < CLOCK_WINDOW_MS]
    offset = estimate_offset(recent) or 0
    status = await live.read_status()
    if abs(offset - status["upstream_offset_ms"]) >= CLOCK_STEP_MS:
        log.info("upstream clock offset is now %+d ms", offset)
        status = await live.update_status(upstream_offset_ms=offset)
        await live.publish({"type": "status.update", "status": status})


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


async def _report(field: str, error: str = "", **extra: str | int) -> None:
    """Records the outcome of an upstream call in the status and tells the browsers."""
    fields: dict[str, str | int] = {f"{field}_error": error, **extra}
    if not error:
        fields[f"{field}_ok_ms"] = now_ms()
    before = await live.read_status() if field == "poll" else None
    status = await live.update_status(**fields)
    if before is not None:
        log_poll_change(before["poll_error"], error, before["poll_ok_ms"], now_ms())
    await live.publish({"type": "status.update", "status": status})


def poll_change(was: str, now: str, last_ok_ms: int, at_ms: int) -> tuple[int, str] | None:
    """The log line (level, text) when the upstream's REST answers change state: it broke, it
    fails differently, it recovered (and after how long). None while nothing changed: a poll
    that fails or succeeds as the one before says nothing (the status page shows each)."""
    if now == was:
        return None
    if not now:
        text = "upstream recovered: REST answers again"
        if last_ok_ms:
            text += f" ({(at_ms - last_ok_ms) / 1000:.0f} s after the last good answer)"
        return logging.INFO, text
    if not was:
        return logging.WARNING, f"upstream broke: {now}"
    return logging.WARNING, f"upstream still failing, now: {now}"


def log_poll_change(was: str, now: str, last_ok_ms: int, at_ms: int) -> None:
    change = poll_change(was, now, last_ok_ms, at_ms)
    if change is not None:
        log.log(*change)


async def sync_catalog() -> list[dict[str, Any]]:
    """Fetches the catalog, stores it, and tells the browsers when it changed."""
    try:
        async with upstream_client() as http:
            catalog = await client.fetch_catalog(http)
            try:
                await live.store_agents(await client.fetch_agent_mapping(http))
            except client.UpstreamError as exc:
                # Optional (categories carry the names): a failing mapping call (refused,
                # unreadable, 5xx, a timeout) keeps the names known before and never stops
                # the catalog refresh.
                _say_once(logging.INFO, f"agent names not refreshed: {exc}")
    except client.UpstreamError as exc:
        log.debug("catalog sync failed: %s", exc)  # a change of state is logged by _report
        await _report_failure(exc)
        raise
    await live.update_status(catalog_ok_ms=now_ms())
    if await live.store_catalog(catalog):
        log.info("catalog changed: %d metrics", len(catalog))
        await sync_to_async(save_metrics)(catalog)
        await live.publish({"type": "catalog.update"})
    return live.catalog_to_wire(catalog)


async def catalog_by_id() -> dict[str, dict[str, Any]]:
    """The stored catalog by metric id; fetched from the upstream first when none is stored yet
    (a fresh Redis)."""
    catalog = await live.read_catalog()
    if catalog is None:
        catalog = await sync_catalog()
    return {metric["metric_id"]: metric for metric in catalog}


async def _report_failure(exc: client.UpstreamError) -> None:
    """A 401 also remembers which key failed, so it is not tried again for a while."""
    if isinstance(exc, client.BadResponse):
        await live.get_redis().incr(live.PREFIX + "bad_responses")
    failed_key = key_fingerprint(auth_key()) if isinstance(exc, client.UpstreamAuthError) else ""
    await _report("poll", str(exc), failed_key=failed_key, failed_ms=now_ms())


async def auth_paused() -> bool:
    """True while the current key is the one the upstream refused, and not long ago: polling
    stops (the status says why) and resumes when the key changes or the pause is over."""
    status = await live.read_status()
    if status["failed_key"] != key_fingerprint(auth_key()):
        return False
    return now_ms() - status["failed_ms"] < settings.ACR_AUTH_RETRY_SECONDS * 1000


_undocumented_seen: set[tuple[str, str]] = set()
_warned: set[str] = set()


def _say_once(level: int, text: str) -> None:
    """A line this process has not written yet: the same unreadable value at every poll, or the
    same refused agent mapping at every catalog refresh, is one line, not one a minute."""
    if text in _warned:
        return
    if len(_warned) > 1000:  # many distinct ones: start over rather than grow for ever
        _warned.clear()
    _warned.add(text)
    log.log(level, "%s", text)


def _log_undocumented(new_records: list[records.Record]) -> None:
    """Tells of each value type no document names once per metric, not on every poll: with the
    raw value when it carries no number we can read (so someone can add it), else what it was
    read as."""
    for record in new_records:
        value = record.get("value") or {}
        seen = (record["metric_id"], value.get("upstream_type"))
        if seen[1] is None or seen in _undocumented_seen:
            continue
        _undocumented_seen.add(seen)
        if value["type"] == "UNSUPPORTED":
            log.warning(
                "metric %s sends value type %s, which no document describes and which carries "
                "no number we can read: shown as unsupported. The value: %s",
                *seen,
                value.get("raw", ""),
            )
        else:
            log.info(
                "metric %s sends value type %s, which no document describes: read as %s by the "
                "fields it carries",
                *seen,
                value["type"],
            )


async def store_and_publish(
    new_records: list[records.Record], fence: str = "", asked_us: int | None = None
) -> list[records.Record]:
    _log_undocumented(new_records)
    return await live.write_records(new_records, fence, asked_us, publish=True)


async def poll_values(ids: list[str] | None = None, fence: str = "") -> list[str]:
    """Polls the values of `ids` (default: every catalog metric the upstream does not refuse;
    those are tried again at each catalog refresh, see refresh_catalog).

    Returns the ids the upstream is still initializing, which the caller polls again soon.
    """
    if await auth_paused():
        # Said once, when the 401 came ("upstream broke: ... (401)"), not at every skipped poll.
        log.debug("not polling: the upstream refused this auth key; fix ACR_AUTH_KEY")
        return []
    catalog = await catalog_by_id()
    if ids is None:
        refused = await live.read_refused()
        ids = [i for i in catalog if i not in refused]
    wanted = [i for i in ids if i in catalog]
    if not wanted:
        return []
    asked_us = await live.redis_time_us()
    try:
        async with upstream_client() as http:
            batch = await client.fetch_values(http, wanted, set(catalog))
    except client.UpstreamError as exc:
        log.debug("values poll failed: %s", exc)  # a change of state is logged by _report
        await _report_failure(exc)
        raise
    for error in batch.response.errors:
        _say_once(logging.WARNING, f"upstream sent an unreadable value: {error}")
    answered = [i for i in wanted if i not in batch.rejected]
    await live.update_refused(batch.rejected, answered)
    await _log_initializing(batch.response.initializing, answered)
    at = now_ms()
    await store_and_publish(
        records.value_records(batch.response.results, catalog, source="poll", now_ms=at)
        + records.initializing_records(batch.response.initializing, catalog, now_ms=at)
        + records.rejected_records(batch.rejected, catalog, now_ms=at),
        fence,
        asked_us,
    )
    await _report("poll", failed_key="")
    return sorted({item.metric_id for item in batch.response.initializing})


async def _log_initializing(items: list[Initializing], answered: list[str]) -> None:
    """One line when the upstream starts initializing metrics (its 206), one when it is done
    with them; not one per poll while it is."""
    initializing = sorted({item.metric_id for item in items})
    done = [i for i in answered if i not in initializing]
    started, ended = await live.update_initializing(initializing, done)
    if started:
        log.info("upstream is initializing %d metrics (206): %s", len(started), ", ".join(started))
    if ended:
        log.info("upstream finished initializing %d metrics: %s", len(ended), ", ".join(ended))


async def refresh_catalog() -> None:
    """Re-reads the catalog, then asks again for the metrics the upstream refused (assigned to
    this service user since, or not), so a refusal is never for good."""
    await sync_catalog()
    refused = await live.read_refused()
    if refused:
        await poll_values(sorted(refused))


async def ingest_frames(
    raws: list[str | bytes], catalog: dict[str, dict[str, Any]], fence: str = ""
) -> Bounds | None:
    """Stores websocket frames that arrived together in one write and one publish (a tick that
    changes many metrics sends a frame per value: a board then gets them in one update);
    returns what their timestamps tell of the upstream clock.

    Bad frames are logged and counted, never raised: one broken message must not end the
    subscription, nor lose the good frames beside it."""
    values = []
    for raw in raws:
        try:
            values += parse_frame(json.loads(raw))
        except (ValueError, PayloadError) as exc:
            observability.UPSTREAM_UNREADABLE.inc()
            await live.get_redis().incr(live.PREFIX + "bad_frames")
            log.warning("dropped an unreadable websocket frame: %s", str(exc)[:200])
    if not values:
        return None
    at = now_ms()
    await store_and_publish(
        records.value_records(values, catalog, source="websocket", now_ms=at), fence
    )
    stamps = [v.value.last_update_ms for v in values if v.value.last_update_ms is not None]
    return value_bounds(max(stamps), at) if stamps else None


async def report_subscription(connected: bool, error: str) -> None:
    if connected:
        await _report("ws", ws_blocked=0)
    else:
        await _report("ws", error)


async def report_push_blocked(status: int) -> None:
    """The websocket handshake is refused (HTTP `status`) while REST answers for the same
    metrics: something on the way blocks websockets (a proxy), the upstream is not down."""
    await _report(
        "ws",
        f"websockets are refused on the way ({status}) while REST answers: "
        f"polling every {settings.ACR_POLL_SECONDS:g} s carries every tile",
        ws_blocked=status,
    )


async def report_auth_refused(error: str) -> None:
    """The websocket's 401: the key is paused as after a REST 401 (see auth_paused)."""
    await _report_failure(client.UpstreamAuthError(error))
