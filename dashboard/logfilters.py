"""Secrets out of every log line: display tokens and auth_token= values.

RedactTokens sits on the root handler (settings.LOGGING), so every logger's lines pass it:
uvicorn's access and websocket lines, Daphne's, Django's, Celery's. A TV link is a password
for its board: anyone who reads the log could otherwise open it."""

from __future__ import annotations

import logging
import re

# A display link's token in a URL path (/display/<token>/, /ws/display/<token>/...), and the value
# of any auth_token= query parameter (the upstream's key travels in its websocket URL so).
SECRETS = re.compile(r"(/display/)[^/?#\s\"']+|(auth_token=)[^&#\s\"']+")


def redact(text: str) -> str:
    return SECRETS.sub(lambda found: (found.group(1) or found.group(2)) + "***", text)


class RedactTokens(logging.Filter):
    """Rewrites a record whose message (arguments included) or traceback holds a secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record: the handler reports it as usual
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            text = logging.Formatter().formatException(record.exc_info)
            if redact(text) != text:
                record.exc_text = redact(text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def route_daphne_access_log() -> None:
    """Daphne's command writes its access log to stdout itself, past logging and so past
    RedactTokens (uvicorn's goes through logging): send its lines through the daphne.access
    logger instead. `daphne -v 0` still turns it off; `--access-log FILE` now logs here too."""
    try:
        from daphne.access import AccessLogGenerator
    except ImportError:  # pragma: no cover - Daphne is a dependency
        return
    access = logging.getLogger("daphne.access")

    def write_entry(self, host, date, request, status=None, length=None, ident=None, user=None):
        access.info('%s "%s" %s %s', host, request, status or "-", length or "-")

    AccessLogGenerator.write_entry = write_entry


class NoClientErrorTraceback(logging.Filter):
    """A refused or bad request (403 PermissionDenied, 400 BadRequest, a bad Host header) is the
    client's doing: Django logs it with the exception's traceback, which says nothing about our
    code and makes one refusal look like a crash. The line stays, without the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and status < 500:
            record.exc_info = None
            record.exc_text = None
        return True


class RoutineBeatLines(logging.Filter):
    """Leaves out beat's "Scheduler: Sending due task" (a line per task sent: every 5 s for the
    polls alone); its other lines (start-up, errors) stay. LOG_LEVEL=DEBUG keeps them all."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Scheduler: Sending due task")


class QuietHealthProbes(logging.Filter):
    """Leaves out django.request's line for a /health/ probe answered 503: a monitor asks every
    few seconds, and what broke is logged once, when it broke (metrics.ingest)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        return getattr(request, "path", "") != "/health/"
