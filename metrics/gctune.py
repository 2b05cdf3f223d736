"""Garbage-collector settings for the long-lived processes on the live path (the web server,
the upstream subscriber).

Everything loaded at start-up (Django, the app, their modules) lives as long as the process:
frozen, it is left out of the collector's full scans, which otherwise walk it all and pause
the event loop for tens of milliseconds (the subscriber's, measured: 35-90 ms, about once a
minute; every update waits behind it). Fewer, larger young-generation collections: with
thousands of open sockets, the default (one every 700 allocations) pauses the fan-out often
(bench/fanout.py's floor server does the same).
"""

from __future__ import annotations

import gc


def freeze_start_up_objects() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 50)
