"""Pure: the site's and each metric's freshness, from the live status and records."""

from __future__ import annotations

from collections import Counter
from typing import Any


def _age_s(now_ms: int, then_ms: int) -> float | None:
    return round((now_ms - then_ms) / 1000, 1) if then_ms else None


def site_health(
    snapshot: dict[str, Any], *, now_ms: int, stale_ms: int, subscriber_active: bool
) -> dict[str, Any]:
    """ "ok" when polls and the websocket are both fresh and every tile is live; "degraded" when
    one path or some tiles are not; "down" when nothing fresh has come from the upstream."""
    status = snapshot["status"]
    poll_fresh = now_ms - status["poll_ok_ms"] <= stale_ms and not status["poll_error"]
    ws_fresh = now_ms - status["ws_ok_ms"] <= stale_ms and not status["ws_error"]
    per_metric: dict[str, Counter] = {m["metric_id"]: Counter() for m in snapshot["metrics"]}
    last_update: dict[str, int] = {}
    for tile in snapshot["tiles"]:
        if tile["metric_id"] in per_metric:
            per_metric[tile["metric_id"]][tile["state"]] += 1
            last_update[tile["metric_id"]] = max(
                last_update.get(tile["metric_id"], 0), tile["received_ms"]
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
    if not (poll_fresh or ws_fresh):
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
            "subscriber_active": subscriber_active,
            "clock_offset_ms": status["upstream_offset_ms"],
        },
        "metrics": metrics,
    }
