"""The web process: pages, websockets and the public widget, served by uvicorn (or Daphne).

    python -m dashboard.web     (WEB_HOST, WEB_PORT or PORT, WEB_WORKERS, WEB_SERVER; the
                                 Procfile, the compose file, the tests)

uvicorn (httptools, uvloop, the `websockets` library) rather than Daphne, by measurement on
this 2-core machine (bench/RESULTS.md, 2026-11-28): the widget JSON at a paced 2,000 req/s had
p99 1 ms against Daphne's 37-78 ms, and fan-out to 500 board clients p99 85 ms against 379 ms.
WEB_SERVER=daphne serves the same app under Daphne (one process), for a site that must run
Django's reference server; tests/test_daphne.py keeps it working.
"""

from __future__ import annotations

import logging
import os

import uvicorn

from dashboard import logconfig
from metrics import observability


class QuietHits(logging.Filter):
    """Leaves the public widget's JSON and static files out of the access log: at thousands of
    hits per second they would drown every other line (and cost a write each)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        path = str(args[2]) if len(args) > 2 else ""
        return not path.startswith(("/widget/", "/static/"))


# What a browser may send in one websocket message: room for consumers.MAX_INCOMING_BYTES
# characters of any UTF-8.
WS_MAX_BYTES = 4 * 1024


def workers() -> int:
    """WEB_WORKERS, by default one process per core (at most 4): each holds its own share of
    the sockets and fans each update out to them in parallel with the others (2 on this 2-core
    machine: fan-out p99 at 1,000 screens 74 -> 63 ms, at 2,000 210 -> 192 ms)."""
    return int(os.environ.get("WEB_WORKERS") or min(4, os.cpu_count() or 1))


SERVERS = ("uvicorn", "daphne")
APPLICATION = "dashboard.asgi:application"


def web_server(environ: dict[str, str]) -> str:
    """WEB_SERVER: uvicorn (the default) or daphne."""
    name = environ.get("WEB_SERVER", "").strip().lower() or "uvicorn"
    if name not in SERVERS:
        raise SystemExit(f"WEB_SERVER must be uvicorn or daphne, got {name!r}")
    return name


def main() -> None:
    observability.forget_dead_web_workers()
    server = web_server(dict(os.environ))
    host = os.environ.get("WEB_HOST", "127.0.0.1")
    port = int(os.environ.get("WEB_PORT") or os.environ.get("PORT") or 8000)
    # This (parent) process logs as the app does: its start-up lines and a worker's death.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
    from django.conf import settings

    logconfig.apply(settings.LOGGING)
    if server == "daphne":
        run_daphne(host, port)
    else:
        run_uvicorn(host, port)


def daphne_args(host: str, port: int) -> list[str]:
    """Daphne's command line for the same app, as close to uvicorn's settings as it goes: one
    process (WEB_WORKERS does not apply), the direct peer as the client (no --proxy-headers:
    see run_uvicorn), no Server header. Its message size limit stays its default (1 MiB):
    autobahn applies it to what the server sends as well, and a snapshot is bigger than
    WS_MAX_BYTES. Its access lines go through logging (dashboard.logfilters), so
    WEB_ACCESS_LOG and the token filter apply as under uvicorn."""
    return ["-b", host, "-p", str(port), "--no-server-name", APPLICATION]


def run_daphne(host: str, port: int) -> None:
    from daphne.cli import CommandLineInterface

    CommandLineInterface().run(daphne_args(host, port))


def run_uvicorn(host: str, port: int) -> None:
    uvicorn.run(
        APPLICATION,
        host=host,
        port=port,
        http="httptools",
        loop="uvloop",
        # Sans-I/O websockets: a send writes to the socket's buffer and never waits, so one slow
        # screen cannot hold up the fan-out to the others (a dead one fails its keepalive
        # ping and is closed).
        ws="websockets-sansio",
        # Board frames are small JSON: compressing each one for each screen costs more CPU
        # than it saves bytes on a LAN (Daphne never negotiated it either).
        ws_per_message_deflate=False,
        # A browser only ever sends a snapshot request (dashboard.consumers takes 1 KiB at most):
        # a bigger message is refused (1009) as it arrives, not read whole first (the default
        # takes 16 MiB). Daphne, for runserver only, stops at 1 MiB.
        ws_max_size=WS_MAX_BYTES,
        lifespan="off",  # the Django/Channels app has no start-up or shutdown hooks
        # The peer address is the direct client (as with Daphne's default): dashboard/proxies.py
        # reads X-Forwarded-For itself, from TRUSTED_PROXIES only, and the SSO header's check
        # needs the proxy's own address.
        proxy_headers=False,
        server_header=False,
        log_config=None,  # Django's LOGGING (dashboard/settings.py) formats every line
        access_log=logconfig.access_log_on(os.environ),
        timeout_graceful_shutdown=5,
        workers=workers(),
    )


if __name__ == "__main__":
    main()
