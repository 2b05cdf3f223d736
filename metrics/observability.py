"""Prometheus metrics: every definition in one place, and the text the web's /metrics answers.

The site runs as several processes: the web (WEB_WORKERS uvicorn workers), the Celery worker
(and its pool processes), beat and the upstream subscriber. One scrape of the web's /metrics
covers them all:

- events (counters, histograms) and the sockets each web worker holds are kept with
  prometheus-client's multiprocess mode: every process writes its values to its own files in
  PROMETHEUS_MULTIPROC_DIR (one folder for every process of the site; scripts/run.sh wipes it
  at start, compose shares a volume) and /metrics merges the files;
- state (records by state, the subscriber's lease, the upstream's last answers, the Celery
  queue) is already in Redis and is read when scraped (dashboard/scrape.py): nothing to keep
  in step, and right even when the process that wrote it is gone.

Without PROMETHEUS_MULTIPROC_DIR every value stays in the process's own memory: a single
process (the tests' in-process checks) still has working metrics.

Free of Django: metrics/acr/ reports through this module too. The hot path (metrics.fanout)
adds to a counter per burst, not per socket or record.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    values,
)

MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def process_id() -> str:
    """Names this process's files: the host too, because compose's containers share the folder
    and each numbers its processes from 1. No '_' (prometheus-client splits file names on it)."""
    return f"{socket.gethostname().replace('_', '-')}-{os.getpid()}"


disable_created_metrics()  # *_created series: noise in every scrape, used by no query here
if MULTIPROC_DIR:
    os.makedirs(MULTIPROC_DIR, exist_ok=True)
    # Read at every fork too (Celery's pool): a forked process starts files of its own.
    values.ValueClass = values.MultiProcessValue(process_id)

# Fan-out delays are milliseconds when all is well; the alert looks at 0.5 s and up.
DELAY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# --- browsers (web processes) ----------------------------------------------------------------

SOCKET_KINDS = ("board", "display", "all", "alerts")
SOCKETS = Gauge(
    "acrdash_sockets",
    "Open browser websockets by kind (all: the All-metrics board and the team page)",
    ["kind"],
    multiprocess_mode="livesum",
)
FANOUT_DELAY = Histogram(
    "acrdash_fanout_delay_seconds",
    "From a change reaching the dashboard (the subscriber's frame or a poll's answer) to its "
    "write to the last socket of a web process",
    buckets=DELAY_BUCKETS,
)
FRAMES_SENT = Counter("acrdash_frames_sent", "Frames written to browser websockets", ["type"])
BYTES_SENT = Counter("acrdash_sent_bytes", "Bytes written to browser websockets", ["type"])
SNAPSHOTS = Counter(
    "acrdash_snapshots", "Snapshots sent (connect, asked: a browser saw a gap, resync)", ["reason"]
)

# --- the upstream (worker and subscriber) ----------------------------------------------------

UPSTREAM_REQUESTS = Counter(
    "acrdash_upstream_requests",
    "Upstream REST requests by endpoint and outcome (a status, 5xx, timeout or unreachable)",
    ["endpoint", "status"],
)
UPSTREAM_SECONDS = Histogram(
    "acrdash_upstream_request_seconds", "Upstream REST request latency", ["endpoint"]
)
UPSTREAM_WS_CONNECTS = Counter(
    "acrdash_upstream_ws_connects",
    "Upstream websocket handshakes (ok, refused with a status, or failed)",
    ["outcome"],
)
UPSTREAM_FRAMES = Counter("acrdash_upstream_frames", "Websocket frames received from the upstream")
UPSTREAM_UNREADABLE = Counter(
    "acrdash_upstream_unreadable_frames", "Upstream websocket frames that could not be read"
)
LEASE_CHANGES = Counter(
    "acrdash_subscriber_lease_changes", "The subscriber lease taken or lost", ["change"]
)

# --- Celery ----------------------------------------------------------------------------------

TASK_SECONDS = Histogram("acrdash_celery_task_seconds", "Celery task run time", ["task"])
TASK_FAILURES = Counter("acrdash_celery_task_failures", "Celery tasks that raised", ["task"])

# --- the public widget -----------------------------------------------------------------------

WIDGET_REQUESTS = Counter(
    "acrdash_widget_requests", "Widget JSON answers by HTTP status (429: rate limited)", ["status"]
)
WIDGET_PAYLOADS = Counter(
    "acrdash_widget_payloads",
    "Widget payloads served from the per-second cache (hit) or built (miss)",
    ["cache"],
)


def init_web_labels() -> None:
    """Creates the web's label values at 0, so that rates and the Grafana panels have a series
    before the first event (a labelled metric shows nothing until then)."""
    for kind in SOCKET_KINDS:
        SOCKETS.labels(kind)
    for status in ("200", "304", "404", "429"):
        WIDGET_REQUESTS.labels(status)
    for cache in ("hit", "miss"):
        WIDGET_PAYLOADS.labels(cache)
    for reason in ("connect", "asked", "resync"):
        SNAPSHOTS.labels(reason)
    FRAMES_SENT.labels("records")
    BYTES_SENT.labels("records")


# --- what the upstream answered, as a label --------------------------------------------------

EXACT_STATUSES = frozenset({200, 206, 400, 401, 403, 404})


def status_label(status: int) -> str:
    """The statuses the client treats apart keep their number, the rest their class (5xx)."""
    return str(status) if status in EXACT_STATUSES else f"{status // 100}xx"


def observe_upstream(endpoint: str, outcome: str, seconds: float) -> None:
    UPSTREAM_REQUESTS.labels(endpoint, outcome).inc()
    UPSTREAM_SECONDS.labels(endpoint).observe(seconds)


# --- the fan-out (called once per burst) -----------------------------------------------------


def observe_fanout(
    records: Iterable[dict[str, Any]], *, written_ms: int, frames: int, sent_bytes: int
) -> None:
    """One burst written out: its frames and bytes, and the delay of each arrival in it since it
    reached us. An arrival is the upstream frames that came together, or a poll's answer: its
    records share `received_ms` (our clock; the upstream's own is known only to about a second,
    too coarse for a delay of milliseconds). One observation per arrival, not per record: in
    multiprocess mode each costs about 4 us, and a whole board's tick is one arrival."""
    if not frames:
        return
    FRAMES_SENT.labels("records").inc(frames)
    BYTES_SENT.labels("records").inc(sent_bytes)
    for received_ms in {record["received_ms"] for record in records}:
        FANOUT_DELAY.observe(max(0, written_ms - received_ms) / 1000)


# --- Celery (connected once, by dashboard.celery) --------------------------------------------

_started: dict[str, float] = {}


def connect_celery_signals() -> None:
    """Task durations and failures, for every task, from Celery's signals."""
    from celery import signals

    @signals.task_prerun.connect(weak=False)
    def started(task_id: str = "", task: Any = None, **_: Any) -> None:
        _started[task_id] = time.monotonic()
        TASK_FAILURES.labels(task.name)  # at 0 from the first run on

    @signals.task_postrun.connect(weak=False)
    def finished(task_id: str = "", task: Any = None, **_: Any) -> None:
        began = _started.pop(task_id, None)
        if began is not None:
            TASK_SECONDS.labels(task.name).observe(time.monotonic() - began)

    @signals.task_failure.connect(weak=False)
    def failed(sender: Any = None, **_: Any) -> None:
        TASK_FAILURES.labels(getattr(sender, "name", "unknown")).inc()


# --- the exposition --------------------------------------------------------------------------


def exposition() -> bytes:
    """Every process's events and web sockets, in Prometheus's text format."""
    if MULTIPROC_DIR:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=MULTIPROC_DIR)
        return generate_latest(registry)
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY)


def forget_dead_web_workers() -> None:
    """At the web's start: the socket gauges of workers of an earlier run are dropped (a
    killed worker cannot say its sockets closed). Only web processes write live gauges."""
    if not MULTIPROC_DIR:
        return
    for name in os.listdir(MULTIPROC_DIR):
        if name.startswith("gauge_live"):
            os.remove(os.path.join(MULTIPROC_DIR, name))
