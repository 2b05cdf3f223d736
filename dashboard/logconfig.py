"""How every process logs: one LOGGING for Django, the Celery worker and beat (dashboard/celery.py
applies it to them), the subscriber command, uvicorn (dashboard/web.py) and Daphne.

One line per state change, not per success: a dashboard runs for weeks, and a real problem must
not be one line among 17,000 a day of "poll sent", "task received", "task succeeded", "HTTP
Request: GET". Those routine lines come back with LOG_LEVEL=DEBUG. LOG_FORMAT=json writes one
JSON object per line. Every line, in either format, passes dashboard.logfilters.RedactTokens.
"""

from __future__ import annotations

import datetime
import json
import logging
import logging.config
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from dashboard.logfilters import redact

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS = ("plain", "json")

# Loggers that speak once per routine success: at WARNING unless LOG_LEVEL=DEBUG (their
# failures are WARNING or ERROR, so they still show).
ROUTINE_LOGGERS = (
    "httpx",  # "HTTP Request: GET .../values?id=... 200 OK", every poll
    "httpcore",
    "celery.worker.strategy",  # "Task ... received"
    "celery.app.trace",  # "Task ... succeeded in 0.01s" (a failure is an ERROR)
)


def access_log_on(environ: Mapping[str, str]) -> bool:
    """WEB_ACCESS_LOG=1: a line per HTTP request (uvicorn's or Daphne's). Off by default: the
    widget and static files alone can make thousands a minute; websocket connects and closes
    are logged either way."""
    return environ.get("WEB_ACCESS_LOG", "0").strip().lower() in ("1", "true", "yes", "on")


def apply(config: dict[str, Any]) -> None:
    """settings.LOGGING_CONFIG: the dict, and Python's warnings (a library's DeprecationWarning,
    Celery's running-as-root warning) as log lines too, so LOG_FORMAT=json holds for them."""
    logging.config.dictConfig(config)
    logging.captureWarnings(True)


def logging_config(level: str, fmt: str, access_log: bool) -> dict[str, Any]:
    """The LOGGING dict for LOG_LEVEL `level`, LOG_FORMAT `fmt`."""
    level = level.strip().upper()
    if level not in LEVELS:
        raise ImproperlyConfigured(f"LOG_LEVEL must be one of {', '.join(LEVELS)}, got {level!r}")
    if fmt not in FORMATS:
        raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, got {fmt!r}")
    quiet = level != "DEBUG"
    loggers: dict[str, dict[str, Any]] = {
        "uvicorn.access": {"filters": ["quiet_hits"]},
        "django.request": {"filters": ["quiet_health_probes"]},
        # Daphne's access lines (routed through logging by dashboard.logfilters).
        "daphne.access": {"level": "INFO" if access_log else "WARNING"},
    }
    if quiet:
        loggers |= {name: {"level": "WARNING"} for name in ROUTINE_LOGGERS}
        # celery.beat also says "beat: Starting...": only the per-send line goes.
        loggers["celery.beat"] = {"filters": ["routine_beat"]}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
            "json": {"()": "dashboard.logconfig.JsonFormatter"},
        },
        # Every line passes RedactTokens: no display token or auth_token= value in any log.
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": fmt,
                "filters": ["redact_tokens", "no_client_error_traceback"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "filters": {
            "quiet_hits": {"()": "dashboard.web.QuietHits"},
            "redact_tokens": {"()": "dashboard.logfilters.RedactTokens"},
            "no_client_error_traceback": {"()": "dashboard.logfilters.NoClientErrorTraceback"},
            "routine_beat": {"()": "dashboard.logfilters.RoutineBeatLines"},
            "quiet_health_probes": {"()": "dashboard.logfilters.QuietHealthProbes"},
        },
        "loggers": loggers,
    }


# What every LogRecord carries; anything else on a record is an extra (extra={...}).
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
# Extras left out: uvicorn's ANSI-coloured copy of the message, Django's request object (the
# message already names the path).
_SKIPPED = {"color_message", "request"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601, UTC), level, logger, message, process name and
    pid, the traceback if any, and the record's extras. The whole line is redacted once more:
    extras never passed RedactTokens."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.processName,
            "pid": record.process,
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc_info"] = record.exc_text
        if record.stack_info:
            line["stack_info"] = record.stack_info
        for name, value in record.__dict__.items():
            if name not in _STANDARD and name not in _SKIPPED and name not in line:
                line[name] = value
        return redact(json.dumps(line, default=str, ensure_ascii=False))
