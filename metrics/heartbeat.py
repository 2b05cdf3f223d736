"""Heartbeats of the long-lived processes, for `manage.py healthcheck <service>`.

The Celery worker (from its consumer's event loop), beat (from its scheduler's tick) and the
upstream subscriber (from its event loop) each write a Redis key every BEAT_SECONDS that expires
after TTL_SECONDS: a process that died, or whose loop hangs, lets it expire. The key names the
host (a container's hostname is its own), so the healthcheck run inside a container asks after
that container's process, not a sibling's.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from typing import Any

import redis
import redis.asyncio as aioredis

from metrics.live import PREFIX

log = logging.getLogger(__name__)

SERVICES = ("worker", "beat", "subscriber")
BEAT_SECONDS = 5.0
# Three beats missed: long enough for a busy moment (a slow Redis write, a GC pause), short
# enough for a container orchestrator to notice within its next check or two.
TTL_SECONDS = 15


def key(service: str, host: str | None = None) -> str:
    return f"{PREFIX}alive:{service}:{host or socket.gethostname()}"


def payload(at_ms: int, **state: Any) -> str:
    return json.dumps({"pid": os.getpid(), "at_ms": at_ms, **state})


def verdict(service: str, raw: str | None, now_ms: int) -> tuple[bool, str]:
    """(alive, a one-line reason) from this host's heartbeat of `service` (None: none)."""
    if raw is None:
        return False, (
            f"{service}: no heartbeat from {socket.gethostname()} for {TTL_SECONDS} s "
            "(not running, hung, or cannot reach Redis)"
        )
    beat = json.loads(raw)
    state = "".join(f", {k} {v}" for k, v in beat.items() if k not in ("pid", "at_ms"))
    age = max(0, now_ms - int(beat["at_ms"])) / 1000
    return True, f"{service} alive (pid {beat['pid']}{state}, last heartbeat {age:.1f} s ago)"


class Heartbeat:
    """Writes one service's heartbeat; a failure to write is said once, and its end too (not
    at every beat while Redis is away)."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.failing = False

    def beat(self, client: redis.Redis, at_ms: int, **state: Any) -> None:
        try:
            client.set(key(self.service), payload(at_ms, **state), ex=TTL_SECONDS)
        except redis.RedisError as exc:
            self._failed(exc)
        else:
            self._written()

    async def abeat(self, client: aioredis.Redis, at_ms: int, **state: Any) -> None:
        try:
            await client.set(key(self.service), payload(at_ms, **state), ex=TTL_SECONDS)
        except redis.RedisError as exc:
            self._failed(exc)
        else:
            self._written()

    def _failed(self, exc: Exception) -> None:
        if not self.failing:
            log.warning("%s heartbeat not written (healthcheck will fail): %s", self.service, exc)
        self.failing = True

    def _written(self) -> None:
        if self.failing:
            log.info("%s heartbeat written again", self.service)
        self.failing = False
