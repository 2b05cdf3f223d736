"""The public wait-time widget: its payload, computed from the live state only.

The payload holds the wording, the rounded numbers and the widget's look (colours and sizes)
and nothing else: no metric ids, no raw values, no timestamps, no upstream detail. A number is
shown only when it can be trusted: not when the data is stale, the queue is closed, or an
average rests on too few calls.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from typing import Any

from metrics.models import (
    CALLERS_PLACEHOLDERS,
    HEX_COLOR,
    WIDGET_PLACEHOLDERS,
    Widget,
    widget_text_error,
)
from metrics.records import record_value

log = logging.getLogger(__name__)

# Configs read from the database, and slugs found to be no widget, for a few seconds each; at
# most CONFIG_CACHE_SIZE of them (anyone can ask for any slug), the oldest read dropped first.
CONFIG_TTL_SECONDS = 5.0
CONFIG_CACHE_SIZE = 1000
_configs: dict[str, tuple[float, dict[str, Any] | None]] = {}


def _text(widget: Widget, field: str, placeholders: tuple[str, ...] = WIDGET_PLACEHOLDERS) -> str:
    """A text as saved, or its default when it is no valid template (saved before texts were
    checked): a bad one would fail or blow up every request."""
    text = getattr(widget, field)
    if widget_text_error(text, placeholders) is None:
        return text
    log.warning("widget %s: %s is not a valid text, its default is shown", widget.slug, field)
    return Widget._meta.get_field(field).default


def widget_config(widget: Widget) -> dict[str, Any]:
    metrics = [widget.wait_metric, widget.queue_metric, widget.agents_metric]

    def source(metric, category):
        return None if metric is None else {"metric_id": metric.metric_id, "category": category}

    return {
        "slug": widget.slug,
        "wait": source(widget.wait_metric, widget.wait_category),
        "queue": source(widget.queue_metric, widget.queue_category),
        "agents": source(widget.agents_metric, widget.agents_category),
        "high_demand_seconds": widget.high_demand_seconds,
        "min_calls": widget.min_calls,
        "round_to_minutes": widget.round_to_minutes,
        "lang": widget.lang,
        "texts": {
            "open": _text(widget, "text_open"),
            "high_demand": _text(widget, "text_high_demand"),
            "closed": widget.text_closed,
            "unknown": widget.text_unknown,
            "under_a_minute": widget.text_under_a_minute,
            "minutes": _text(widget, "text_minutes"),
            "one_caller": _text(widget, "text_one_caller", CALLERS_PLACEHOLDERS),
            "callers": _text(widget, "text_callers", CALLERS_PLACEHOLDERS),
        },
        "style": widget_style(widget),
        # A metric un-marked public after the widget was saved: nothing of it is shown.
        "all_public": all(m.public for m in metrics if m is not None),
        "origins": widget.origins(),
        "public": widget.public,
        "max_age": widget.max_age_seconds,
    }


def widget_style(widget: Widget) -> dict[str, Any]:
    """The widget's look as the browser applies it; a value that is not what the model allows
    (saved around its validators) falls back to the default rather than reach a page's CSS."""
    style = {}
    for field in Widget.STYLE_FIELDS:
        value, default = getattr(widget, field), Widget._meta.get_field(field).default
        if field.startswith("color_"):
            ok = isinstance(value, str) and HEX_COLOR.fullmatch(value)
        else:
            ok = isinstance(value, int) and 0 <= value <= 48
        style[field.removeprefix("color_")] = value if ok else default
    return style


def cached_config(slug: str) -> dict[str, Any] | None:
    """The widget's configuration, read from the database at most every few seconds: the
    endpoint takes anonymous traffic at any rate."""
    fresh, config = recent_config(slug)
    if fresh:
        return config
    widget = (
        Widget.objects.select_related("wait_metric", "queue_metric", "agents_metric")
        .filter(slug=slug)
        .first()
    )
    config = None if widget is None else widget_config(widget)
    _configs.pop(slug, None)
    if len(_configs) >= CONFIG_CACHE_SIZE:
        del _configs[next(iter(_configs))]  # entries are kept in the order they were read
    _configs[slug] = (time.monotonic() + CONFIG_TTL_SECONDS, config)
    return config


def forget_config(slug: str) -> None:
    """Drops this process's cached config of a widget just saved or deleted (other processes
    see the change within CONFIG_TTL_SECONDS)."""
    _configs.pop(slug, None)


def recent_config(slug: str) -> tuple[bool, dict[str, Any] | None]:
    """(True, config) when a config read in the last few seconds is at hand (None: no such
    widget), else (False, None): the caller must read it (cached_config)."""
    hit = _configs.get(slug)
    if hit is not None and hit[0] > time.monotonic():
        return True, hit[1]
    return False, None


def wait_text(wait_ms: float, config: dict[str, Any]) -> tuple[int, str]:
    """(minutes, words): under a minute, or minutes rounded up to the configured step."""
    if wait_ms < 60_000:
        return 0, config["texts"]["under_a_minute"]
    step = config["round_to_minutes"]
    minutes = math.ceil(wait_ms / 60_000 / step) * step
    words = config["texts"]["minutes"].format(minutes=minutes, wait="", ahead="", callers="")
    return minutes, words


def callers_text(ahead: int | None, config: dict[str, Any]) -> str:
    """{callers}: "1 caller" or "5 callers" in the widget's own words ("" without a count)."""
    if ahead is None:
        return ""
    texts = config["texts"]
    return texts["one_caller"] if ahead == 1 else texts["callers"].format(ahead=ahead)


def build_payload(
    config: dict[str, Any],
    records: dict[str, dict[str, Any] | None],
    *,
    upstream_now_ms: int,
    stale: bool,
) -> dict[str, Any]:
    """What the widget shows. `records` maps "wait", "queue" and "agents" to live records."""
    texts = config["texts"]
    unknown = {
        "state": "unknown",
        "text": texts["unknown"],
        "wait_minutes": None,
        "wait_text": None,
        "callers_ahead": None,
        "lang": config["lang"],
        "style": config["style"],
    }
    if stale or not config["all_public"]:
        return unknown
    if config["agents"] is not None:
        agents = record_value(records.get("agents"), at_ms=upstream_now_ms)
        if agents is None:
            return unknown
        if agents < 1:
            return {**unknown, "state": "closed", "text": texts["closed"]}
    wait_record = records.get("wait")
    wait_ms = record_value(wait_record, at_ms=upstream_now_ms)
    wait_value = (wait_record or {}).get("value") or {}
    too_few = (
        wait_value.get("type") == "AVERAGE_DURATION" and wait_value["count"] < config["min_calls"]
    )
    ahead = None
    if config["queue"] is not None:
        ahead = record_value(records.get("queue"), at_ms=upstream_now_ms)
        if ahead is None:
            return unknown
        ahead = int(ahead)
    if wait_ms is None or too_few:
        return unknown
    minutes, words = wait_text(wait_ms, config)
    state = "high_demand" if wait_ms >= config["high_demand_seconds"] * 1000 else "open"
    text = texts[state].format(
        wait=words,
        ahead="" if ahead is None else ahead,
        callers=callers_text(ahead, config),
        minutes=minutes,
    )
    return {
        "state": state,
        "text": text,
        "wait_minutes": minutes,
        "wait_text": words,
        "callers_ahead": ahead,
        "lang": config["lang"],
        "style": config["style"],
    }


def encode(data: dict[str, Any]) -> tuple[bytes, str]:
    """The response body and its ETag."""
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
    return body, '"' + hashlib.sha256(body).hexdigest()[:20] + '"'


def cors_headers(config: dict[str, Any], origin: str | None) -> dict[str, str]:
    """A CORS grant only for an allowed origin (or * when public, never with credentials)."""
    if config["public"]:
        return {"Access-Control-Allow-Origin": "*"}
    if origin and origin.rstrip("/") in config["origins"]:
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return {"Vary": "Origin"}


def frame_ancestors(config: dict[str, Any]) -> str:
    if config["public"]:
        return "frame-ancestors *"
    return "frame-ancestors " + " ".join(["'self'", *config["origins"]])
