"""`manage.py healthcheck <web|worker|beat|subscriber>`: exit 0 when that service of this host
is alive, 1 with a one-line reason when not (docker-compose.yml's health checks run it).

web: GET /health/ on 127.0.0.1:WEB_PORT answers (200 or 503: whether the upstream answers is
/health/'s business, not the web container's). worker, beat, subscriber: this host's heartbeat
(metrics.heartbeat) is in Redis, written within its TTL.
"""

from __future__ import annotations

import http.client
import os
import sys

import redis
from django.conf import settings
from django.core.management.base import BaseCommand

from metrics import heartbeat
from metrics.acr.clock import now_ms

TIMEOUT_SECONDS = 3


def check_web(port: int) -> tuple[bool, str]:
    url = f"http://127.0.0.1:{port}/health/"
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_SECONDS)
        connection.request("GET", "/health/")
        status = connection.getresponse().status
    except OSError as exc:
        return False, f"web: nothing answers at {url}: {exc}"
    if status in (200, 503):
        return True, f"web alive ({url} answered {status})"
    return False, f"web: {url} answered {status}"


def check_heartbeat(service: str) -> tuple[bool, str]:
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=TIMEOUT_SECONDS, decode_responses=True
    )
    try:
        raw = client.get(heartbeat.key(service))
    except redis.RedisError as exc:
        return False, f"{service}: cannot read its heartbeat from Redis: {exc}"
    finally:
        client.close()
    return heartbeat.verdict(service, raw, now_ms())


class Command(BaseCommand):
    help = "Exits 0 when this host's service is alive, 1 with a one-line reason when not."

    def add_arguments(self, parser) -> None:
        parser.add_argument("service", choices=["web", *heartbeat.SERVICES])

    def handle(self, *args, service: str, **options) -> None:
        if service == "web":
            port = int(os.environ.get("WEB_PORT") or os.environ.get("PORT") or 8000)
            alive, reason = check_web(port)
        else:
            alive, reason = check_heartbeat(service)
        if not alive:
            sys.stderr.write(reason + "\n")
            sys.exit(1)
        self.stdout.write(reason)
