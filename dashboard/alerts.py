"""Alert rules: pure evaluation, and the checking task's work (state in Redis, notifications)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, time, tzinfo

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.core.mail import send_mail
from django.utils import timezone

from dashboard import access, webhooks
from metrics import health, live, records
from metrics.models import AlertEvent, AlertRule

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RuleState:
    breaching_since_ms: int | None
    last_fired_ms: int | None


def in_quiet_hours(start: time | None, end: time | None, now: datetime, zone: tzinfo) -> bool:
    """Whether `now` falls between the rule's wall-clock times in the site's zone (`zone`): the
    same local hours all year round, whatever the zone's offset from UTC that day."""
    if start is None or end is None:
        return False
    clock = now.astimezone(zone).time()
    return start <= clock < end if start <= end else clock >= start or clock < end


def evaluate(
    rule: dict, value: float | None, state: RuleState, now_ms: int, quiet: bool
) -> tuple[RuleState, bool]:
    """The rule's next state and whether it fires now. A missing value (stale, initializing)
    breaks a breach: an alert is only raised on numbers that are really there."""
    display = None if value is None else (value / 1000 if rule["duration"] else value)
    breaching = display is not None and (
        display > rule["threshold"] if rule["direction"] == "above" else display < rule["threshold"]
    )
    if not breaching:
        return RuleState(None, state.last_fired_ms), False
    since = state.breaching_since_ms if state.breaching_since_ms is not None else now_ms
    held = now_ms - since >= rule["for_seconds"] * 1000
    cooled = (
        state.last_fired_ms is None
        or now_ms - state.last_fired_ms >= rule["cooldown_minutes"] * 60_000
    )
    fire = held and cooled and not quiet
    return RuleState(since, now_ms if fire else state.last_fired_ms), fire


def _rules() -> list[dict]:
    """The active rules whose owners may still see their queue or agent: one who left the team,
    or whose account is off, is told nothing more about it (checked on every round, before any
    notification)."""
    scopes: dict[int, access.Scope | None] = {}
    rules = []
    for rule in AlertRule.objects.filter(active=True).select_related("metric", "owner"):
        if rule.owner_id not in scopes:
            scopes[rule.owner_id] = access.live_scope(rule.owner)
        scope = scopes[rule.owner_id]
        if scope is not None and scope.allows(rule.category):
            rules.append(_rule(rule))
    return rules


def _rule(rule: AlertRule) -> dict:
    return {
        "id": rule.pk,
        "owner_id": rule.owner_id,
        "owner_email": rule.owner.email,
        "name": rule.name,
        "metric_id": rule.metric.metric_id,
        "metric_name": rule.metric.name,
        "category": rule.category,
        "direction": rule.direction,
        "threshold": rule.threshold,
        "for_seconds": rule.for_seconds,
        "cooldown_minutes": rule.cooldown_minutes,
        "quiet": (rule.quiet_start, rule.quiet_end),
        "email": rule.email,
        "webhook_url": rule.webhook_url,
        "duration": None,
    }


def _record_event(rule: dict, value: float | None, message: str) -> None:
    AlertEvent.objects.create(rule_id=rule["id"], value=value, message=message)
    if rule["email"] and rule["owner_email"]:
        send_mail(
            f"Alert: {rule['name']}", message, None, [rule["owner_email"]], fail_silently=True
        )


async def check_all(now_ms: int) -> int:
    """Checks every active rule once; returns how many fired."""
    rules = await sync_to_async(_rules)()
    if not rules:
        return 0
    snapshot = await live.read_snapshot()
    status = snapshot["status"]
    stale = health.is_stale(status, now_ms=now_ms)
    by_key = {(r["metric_id"], r["category"]): r for r in snapshot["records"]}
    redis = live.get_redis()
    fired, hooks = 0, []
    for rule in rules:
        record = None if stale else by_key.get((rule["metric_id"], rule["category"]))
        rule["duration"] = records.is_duration(record)
        value = records.record_value(record, at_ms=now_ms + status["upstream_offset_ms"])
        key = f"{live.PREFIX}alert:{rule['id']}"
        raw = await redis.hgetall(key)
        state = RuleState(
            int(raw["since"]) if raw.get("since") else None,
            int(raw["fired"]) if raw.get("fired") else None,
        )
        at = datetime.fromtimestamp(now_ms / 1000, UTC)
        quiet = in_quiet_hours(*rule["quiet"], at, timezone.get_default_timezone())
        state, fire = evaluate(rule, value, state, now_ms, quiet)
        await redis.hset(
            key,
            mapping={"since": state.breaching_since_ms or "", "fired": state.last_fired_ms or ""},
        )
        if fire:
            fired += 1
            message = await _notify(rule, value)
            if rule["webhook_url"] and await webhooks.claim(rule["id"]):
                body = {"rule": rule["name"], "text": message}
                hooks.append({"rule": rule["id"], "url": rule["webhook_url"], "body": body})
    if hooks:  # sent by their own task: a slow receiver never holds up a check
        await sync_to_async(webhooks.enqueue)(hooks)
    return fired


async def _notify(rule: dict, value: float | None) -> str:
    """Records the alert, e-mails it if asked, tells the owner's open pages; returns its text."""
    shown = f"{value / 1000:.0f} s" if rule["duration"] else f"{value:g}"
    where = f" ({rule['category']})" if rule["category"] else ""
    message = (
        f"{rule['name']}: {rule['metric_name']}{where} is {shown}, "
        f"{rule['direction']} {rule['threshold']:g} for {rule['for_seconds']} s"
    )
    await sync_to_async(_record_event)(rule, value, message)
    await get_channel_layer().group_send(
        f"user.{rule['owner_id']}", {"type": "alert.fired", "message": message}
    )
    log.info("alert fired: %s", json.dumps(message))
    return message
