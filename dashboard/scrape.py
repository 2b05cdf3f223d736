"""GET /metrics for Prometheus: who may scrape it, and the answer.

The answer is every process's events (metrics.observability merges them) and the site's state,
read from Redis at scrape time: records by state, the subscriber's lease, how long since the
upstream last answered, the Celery queue. Allowed to METRICS_ALLOWED_IPS (the client's address
as dashboard/proxies.py reads it) or with `Authorization: Bearer METRICS_TOKEN`; anyone else
gets a 403 and nothing else.
"""

from __future__ import annotations

import hmac
import math
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from redis.exceptions import RedisError

from dashboard import proxies
from metrics import health, live, observability

RECORD_STATES = ("live", "initializing", "stale", "error")


def may_scrape(client: str, authorization: str, *, allowed: list[str], token: str) -> bool:
    """An allowed address, or the token (compared in constant time; no token set: none works)."""
    if proxies.in_networks(client, allowed):
        return True
    scheme, _, given = authorization.partition(" ")
    if not token or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def records_by_state(report: dict[str, Any]) -> dict[str, int]:
    """Records per state from the site's health: while the live state is stale ("down"), the
    records that were live are shown stale (metrics.health.is_stale, the one rule)."""
    counts = dict.fromkeys(RECORD_STATES, 0)
    for metric in report.get("metrics", []):
        for state in ("live", "initializing", "error"):
            counts[state] += metric[state]
    if report["status"] == "down":
        counts["stale"], counts["live"] = counts["live"], 0
    return counts


def state_families(report: dict[str, Any], queue: int | None) -> list[GaugeMetricFamily]:
    """The site's state as gauges (pure: `report` is metrics.health.site_health's)."""
    records = GaugeMetricFamily("acrdash_records", "Live records by state", labels=["state"])
    for state, count in records_by_state(report).items():
        records.add_metric([state], count)
    upstream = report["upstream"]
    lease = GaugeMetricFamily(
        "acrdash_subscriber_lease_held", "1 while a subscriber holds the lease (one is active)"
    )
    lease.add_metric([], 1 if upstream["subscriber_active"] else 0)
    up = GaugeMetricFamily(
        "acrdash_upstream_up", "1 while the live state is fresh (/health/ is not down)"
    )
    up.add_metric([], 0 if report["status"] == "down" else 1)
    age = GaugeMetricFamily(
        "acrdash_upstream_last_success_age_seconds",
        "Seconds since the upstream last answered, by path (+Inf: never)",
        labels=["path"],
    )
    for path, key in (("poll", "poll_ok_age_s"), ("websocket", "websocket_ok_age_s")):
        seconds = upstream[key]
        age.add_metric([path], math.inf if seconds is None else seconds)
    families = [records, lease, up, age]
    if queue is not None:
        waiting = GaugeMetricFamily("acrdash_celery_queue_length", "Tasks waiting in the queue")
        waiting.add_metric([], queue)
        families.append(waiting)
    return families


class _Families:
    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self.families = families

    def collect(self) -> list[GaugeMetricFamily]:
        return self.families


async def _queue_length() -> int | None:
    """Tasks waiting in Celery's default queue, when the broker is the live store's Redis."""
    if settings.CELERY_BROKER_URL != settings.REDIS_URL:
        return None
    try:
        return await live.get_redis().llen("celery")
    except RedisError:
        return None


async def metrics(request: HttpRequest) -> HttpResponse:
    allowed = may_scrape(
        proxies.request_client(request),
        request.headers.get("Authorization", ""),
        allowed=settings.METRICS_ALLOWED_IPS,
        token=settings.METRICS_TOKEN,
    )
    if not allowed:
        return HttpResponse("forbidden\n", status=403, content_type="text/plain")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(state_families(await health.read_health(), await _queue_length())))
    body = observability.exposition() + generate_latest(registry)
    # The classic text format, which every Prometheus version reads (2.x and 3.x).
    return HttpResponse(body, content_type=CONTENT_TYPE_PLAIN_0_0_4)
