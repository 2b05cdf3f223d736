"""Freshness: when the live state stops being trusted (the one staleness rule), and the site's
and each metric's health for /health/ and the status page."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from django.conf import settings
from redis.exceptions import RedisError

from metrics import live
from metrics.acr import clock

log = logging.getLogger(__name__)


def stale_after_ms() -> int:
    """ACR_STALE_SECONDS in ms: browsers are told it with every snapshot."""
    return int(settings.ACR_STALE_SECONDS * 1000)


def last_heard_ms(status: live.Status) -> int:
    """When the upstream last answered, by either path (our clock)."""
    return max(status["poll_ok_ms"], status["ws_ok_ms"])


def is_stale(status: live.Status, *, now_ms: int, stale_ms: int | None = None) -> bool:
    """True when nothing has come from the upstream for longer than ACR_STALE_SECONDS (or
    `stale_ms`): no number is then shown, sampled, alerted on or given to the widget as
    current, and /health/ says "down"."""
    limit = stale_after_ms() if stale_ms is None else stale_ms
    return now_ms - last_heard_ms(status) > limit


def _age_s(now_ms: int, then_ms: int) -> float | None:
    return round((now_ms - then_ms) / 1000, 1) if then_ms else None


def site_health(
    snapshot: dict[str, Any], *, now_ms: int, stale_ms: int, subscriber_active: bool
) -> dict[str, Any]:
    """ "ok" when polls and the websocket are both fresh and every record is live; "degraded"
    when one path or some records are not; "down" when the live state is stale."""
    status = snapshot["status"]
    poll_fresh = now_ms - status["poll_ok_ms"] <= stale_ms and not status["poll_error"]
    ws_fresh = now_ms - status["ws_ok_ms"] <= stale_ms and not status["ws_error"]
    per_metric: dict[str, Counter] = {m["metric_id"]: Counter() for m in snapshot["metrics"]}
    last_update: dict[str, int] = {}
    for record in snapshot["records"]:
        if record["metric_id"] in per_metric:
            per_metric[record["metric_id"]][record["state"]] += 1
            last_update[record["metric_id"]] = max(
                last_update.get(record["metric_id"], 0), record["received_ms"]
            )
    metrics = [
        {
            "metric_id": metric["metric_id"],
            "name": metric["name"],
            "live": per_metric[metric["metric_id"]]["live"],
            "initializing": per_metric[metric["metric_id"]]["initializing"],
            "error": per_metric[metric["metric_id"]]["error"],
            "last_update_age_s": _age_s(now_ms, last_update.get(metric["metric_id"], 0)),
        }
        for metric in snapshot["metrics"]
    ]
    all_live = all(m["initializing"] == 0 and m["error"] == 0 for m in metrics)
    if is_stale(status, now_ms=now_ms, stale_ms=stale_ms):
        overall = "down"
    elif poll_fresh and ws_fresh and subscriber_active and all_live:
        overall = "ok"
    else:
        overall = "degraded"
    return {
        "status": overall,
        "upstream": {
            "poll_ok_age_s": _age_s(now_ms, status["poll_ok_ms"]),
            "poll_error": status["poll_error"],
            "websocket_ok_age_s": _age_s(now_ms, status["ws_ok_ms"]),
            "websocket_error": status["ws_error"],
            "websocket_blocked": status["ws_blocked"],
            "subscriber_active": subscriber_active,
            "clock_offset_ms": status["upstream_offset_ms"],
        },
        "metrics": metrics,
    }


# What anonymous viewers (monitoring, TVs) are told instead of an error's own words, which name
# our settings, the upstream's paths and what it answered: that something fails, not what.
GENERIC_ERRORS = {
    "poll_error": "the upstream server cannot be read",
    "ws_error": "the live connection to the upstream server is interrupted",
}


def without_detail(status: live.Status) -> live.Status:
    """The upstream status for an anonymous viewer: the errors in generic words."""
    return {**status, **{k: v for k, v in GENERIC_ERRORS.items() if status[k]}}


def report_without_detail(report: dict[str, Any]) -> dict[str, Any]:
    """The site's health for an anonymous viewer: no metrics, the errors in generic words."""
    upstream = dict(report["upstream"])
    for key, status_key in (("poll_error", "poll_error"), ("websocket_error", "ws_error")):
        if upstream[key]:
            upstream[key] = GENERIC_ERRORS[status_key]
    return {"status": report["status"], "upstream": upstream}


async def read_health() -> dict[str, Any]:
    """The site's health; "down" (not an error page) while the live store cannot be read."""
    try:
        snapshot = await live.read_snapshot()
        subscriber_active = await live.lease_held()
    except RedisError as exc:
        log.error("health: the live store is unavailable: %s", exc)
        snapshot = {"metrics": [], "records": [], "status": live.status_to_wire({})}
        snapshot["status"]["poll_error"] = "the live store (Redis) is unavailable"
        subscriber_active = False
    return site_health(
        snapshot,
        now_ms=clock.now_ms(),
        stale_ms=stale_after_ms(),
        subscriber_active=subscriber_active,
    )
