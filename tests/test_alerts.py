"""Alert rules: above/below for N seconds, cooldown, quiet hours, and who is told how."""

import json
import threading
from datetime import UTC, datetime, time
from http.server import BaseHTTPRequestHandler, HTTPServer
from zoneinfo import ZoneInfo

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client
from playwright.sync_api import expect

from dashboard import alerts, webhooks
from dashboard.alerts import RuleState, evaluate, in_quiet_hours
from dashboard.asgi import application
from metrics import ingest, live
from metrics.acr import clock
from metrics.models import AlertEvent, AlertRule, Metric, Team
from tests.conftest import (
    PASSWORD,
    count_record,
    free_port,
    log_in,
    queued_webhooks,
    stack_env,
    start_web,
    wait_for_port,
)

RULE = {
    "direction": "above",
    "threshold": 120,
    "for_seconds": 30,
    "cooldown_minutes": 15,
    "duration": True,
}
T = 1_000_000_000


@pytest.mark.parametrize(
    ("value_ms", "state", "now", "expected", "fires"),
    [
        (100_000, RuleState(None, None), T, RuleState(None, None), False),
        (130_000, RuleState(None, None), T, RuleState(T, None), False),
        (130_000, RuleState(T, None), T + 29_000, RuleState(T, None), False),
        (130_000, RuleState(T, None), T + 30_000, RuleState(T, T + 30_000), True),
        (130_000, RuleState(T, T + 30_000), T + 60_000, RuleState(T, T + 30_000), False),
        (130_000, RuleState(T, T), T + 15 * 60_000, RuleState(T, T + 15 * 60_000), True),
        (None, RuleState(T, None), T + 60_000, RuleState(None, None), False),
    ],
)
def test_a_rule_fires_once_it_held_and_then_cools_down(value_ms, state, now, expected, fires):
    assert evaluate(RULE, value_ms, state, now, quiet=False) == (expected, fires)


def test_quiet_hours_hold_alerts_back_even_across_midnight():
    assert evaluate(RULE, 130_000, RuleState(T, None), T + 60_000, quiet=True)[1] is False
    at = datetime(2026, 1, 1, 23, 30, tzinfo=UTC)
    assert in_quiet_hours(time(22, 0), time(6, 0), at, UTC)
    assert not in_quiet_hours(time(22, 0), time(6, 0), at.replace(hour=12), UTC)
    assert not in_quiet_hours(None, None, at, UTC)


CHICAGO = ZoneInfo("America/Chicago")  # daylight saving from 2026-03-08 02:00 to 2026-11-01 02:00


@pytest.mark.parametrize(
    ("utc", "quiet"),
    [
        # 22:30 local: CST (UTC-6) the evening before the change, CDT (UTC-5) the evening after
        (datetime(2026, 3, 8, 4, 30, tzinfo=UTC), True),
        (datetime(2026, 3, 9, 3, 30, tzinfo=UTC), True),
        # 21:30 local, on both sides: not yet quiet
        (datetime(2026, 3, 8, 3, 30, tzinfo=UTC), False),
        (datetime(2026, 3, 9, 2, 30, tzinfo=UTC), False),
        # 23:45 local, on both sides of the autumn change: quiet is over
        (datetime(2026, 10, 31, 4, 45, tzinfo=UTC), False),
        (datetime(2026, 11, 2, 5, 45, tzinfo=UTC), False),
        # 23:00 local in summer and in winter: quiet
        (datetime(2026, 7, 1, 4, 0, tzinfo=UTC), True),
        (datetime(2026, 1, 15, 5, 0, tzinfo=UTC), True),
    ],
)
def test_quiet_hours_keep_the_sites_wall_clock_across_daylight_saving(utc, quiet):
    assert in_quiet_hours(time(22, 0), time(23, 30), utc, CHICAGO) is quiet


@pytest.fixture
def webhook():
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


@pytest.mark.django_db(transaction=True)
async def test_a_breach_tells_the_owner_in_the_console_by_mail_and_webhook(
    redis_db, webhook, mailoutbox, settings
):
    url, received = webhook
    settings.WEBHOOK_ALLOW_PRIVATE = True  # the receiver here is on 127.0.0.1

    def setup():
        user = get_user_model().objects.create_user(
            "sally", password="pw-long-sales-1", email="sally@example.com"
        )
        Team.objects.create(name="Sales", queues=["Sales"]).supervisors.add(user)
        metric = Metric.objects.create(
            metric_id="LWC", name="Longest Wait", category_type="GROUP", categories=["Sales"]
        )
        AlertRule.objects.create(
            owner=user,
            name="Sales wait",
            metric=metric,
            category="Sales",
            threshold=120,
            for_seconds=0,
            email=True,
            webhook_url=url,
        )
        client = Client()
        client.force_login(user)
        return f"sessionid={client.cookies['sessionid'].value}".encode()

    cookie = await sync_to_async(setup)()
    console = WebsocketCommunicator(
        application, "/ws/alerts/", headers=[(b"origin", b"http://127.0.0.1"), (b"cookie", cookie)]
    )
    assert (await console.connect())[0]
    now = clock.now_ms()
    await ingest.store_and_publish(
        [
            {
                "metric_id": "LWC",
                "category": "Sales",
                "state": "live",
                "error": "",
                "value": {
                    "type": "DURATION",
                    "finished_ms": 125_000,
                    "up": 1,
                    "down": 0,
                    "last_update_ms": now,
                },
                "upstream_ms": now,
                "source": "poll",
                "received_ms": now,
            }
        ]
    )
    await live.update_status(poll_ok_ms=now, ws_ok_ms=now)

    assert await alerts.check_all(now) == 1
    assert await alerts.check_all(now + 5000) == 0  # cooling down

    message = await console.receive_json_from(timeout=5)
    assert message["type"] == "alert"
    assert message["message"].startswith("Sales wait: Longest Wait (Sales) is 125 s")
    assert await AlertEvent.objects.acount() == 1
    assert [m.to for m in mailoutbox] == [["sally@example.com"]]
    # The webhook is left to its own task (tests/test_webhooks.py): run it here.
    [jobs] = queued_webhooks(redis_db)
    await webhooks.send_all(jobs)
    assert received and received[0]["rule"] == "Sales wait"
    await console.disconnect()


@pytest.mark.django_db
def test_a_supervisor_cannot_watch_another_teams_queue(client):
    user = get_user_model().objects.create_user("sally", password="pw-long-sales-1")
    team = Team.objects.create(name="Sales", queues=["Sales"])
    team.supervisors.add(user)
    Metric.objects.create(
        metric_id="LWC", name="Longest Wait", category_type="GROUP", categories=["Sales", "Support"]
    )
    client.force_login(user)
    form = {
        "name": "x",
        "metric": "LWC",
        "direction": "above",
        "threshold": 1,
        "for_seconds": 0,
        "cooldown_minutes": 1,
    }
    refused = client.post("/alerts/", {**form, "category": "Support"})
    assert refused.status_code == 400
    assert "not in your team" in refused.content.decode()
    assert client.post("/alerts/", {**form, "category": "Sales"}).status_code == 302
    assert AlertRule.objects.get().category == "Sales"


@pytest.fixture
def sales_queue_alert(staff_user):
    """staff_user's rule on the Sales queue, which the static scenario keeps above it: with no
    cooldown it fires on every check (every 5 s)."""
    queue, _ = Metric.objects.update_or_create(
        metric_id="CIQGRP01",
        defaults={"name": "Calls in Queue", "category_type": "GROUP", "categories": ["Sales"]},
    )
    return AlertRule.objects.create(
        owner=staff_user,
        name="Sales queue",
        metric=queue,
        category="Sales",
        threshold=1,
        for_seconds=0,
        cooldown_minutes=0,
    )


@pytest.mark.django_db(transaction=True)
def test_alerts_reach_the_page_again_within_8_seconds_of_a_web_server_restart(
    sales_queue_alert, stack, processes, settings, page
):
    """The alerts socket reconnects as the boards do (live.js: backoff capped at 8 s), not with
    a backoff of its own that grows to a minute while the server is down."""
    base_url, emulator = stack
    port = int(base_url.rsplit(":", 1)[1])
    sockets = []  # every alerts socket the page opened
    page.on("websocket", lambda ws: ws.url.endswith("/ws/alerts/") and sockets.append(ws))
    # The jitter at its top: every wait is the longest the backoff allows.
    page.add_init_script("Math.random = () => 1;")
    log_in(page, base_url)
    toasts = page.locator(".alert-toast")
    expect(toasts.first).to_contain_text("Sales queue:", timeout=20_000)

    web = processes.named("web")
    web.kill()
    web.wait()
    for toast in toasts.all():
        toast.get_by_role("button", name="Dismiss").click()
    expect(toasts).to_have_count(0)
    # Five retries, after 0.5, 1, 2, 4 and 8 s: the next wait is the cap, 8 s, not 16. (A backoff
    # capped at 60 s waits 2, 4, 8, 16 and 32 s, and then a minute.)
    page.wait_for_event("websocket", lambda ws: len(sockets) >= 6, timeout=25_000)

    wait_for_port(port, start_web(processes, stack_env(emulator, settings.REDIS_URL), port), "web")
    # Back within the cap (8 s), and a check (every 5 s) fires the rule again: a toast.
    expect(toasts.first).to_contain_text("Sales queue:", timeout=20_000)


def remove_from_the_team(user):
    Team.objects.get(name="Sales").supervisors.remove(user)


def deactivate(user):
    user.is_active = False
    user.save()


@pytest.mark.parametrize("lose_access", [remove_from_the_team, deactivate])
@pytest.mark.django_db(transaction=True)
async def test_an_alert_rule_of_a_supervisor_who_lost_access_sends_nothing(
    redis_db, webhook, mailoutbox, lose_access
):
    """Sally made the rule while she supervised Sales; once she no longer does (or her account
    is off), Sales' numbers reach her by no path: no console, e-mail, webhook or event."""
    url, received = webhook

    def sales_supervisor_with_a_rule():
        user = get_user_model().objects.create_user(
            "sally", password="pw-long-sales-1", email="sally@example.com"
        )
        team = Team.objects.create(name="Sales", queues=["Sales"])
        team.supervisors.add(user)
        metric = Metric.objects.create(
            metric_id="CIQ", name="Calls in Queue", category_type="GROUP", categories=["Sales"]
        )
        AlertRule.objects.create(
            owner=user,
            name="Sales queue",
            metric=metric,
            category="Sales",
            threshold=1,
            for_seconds=0,
            email=True,
            webhook_url=url,
        )
        return user

    user = await sync_to_async(sales_supervisor_with_a_rule)()
    now = clock.now_ms()
    await ingest.store_and_publish([count_record("CIQ", "Sales", 5, now)])
    await live.update_status(poll_ok_ms=now, ws_ok_ms=now)

    await sync_to_async(lose_access)(user)
    assert await alerts.check_all(now) == 0
    assert await AlertEvent.objects.acount() == 0
    assert mailoutbox == [] and received == []


@pytest.mark.django_db
def test_the_rule_form_names_the_sites_zone_for_quiet_hours(client, settings):
    settings.TIME_ZONE = "America/Chicago"
    sally = get_user_model().objects.create_user("sally", password="pw-long-sales-1")
    Team.objects.create(name="Sales", queues=["Sales"]).supervisors.add(sally)
    client.force_login(sally)
    page = client.get("/alerts/").content.decode()
    assert "No alerts from (America/Chicago)" in page
    assert "(UTC)" not in page


@pytest.fixture
def sales_supervisor_and_viewer():
    """sally supervises Sales; vic only views its boards (made before Playwright starts)."""
    users = get_user_model().objects
    sally = users.create_user("sally", password=PASSWORD)
    vic = users.create_user("vic", password=PASSWORD)
    team = Team.objects.create(name="Sales", queues=["Sales"])
    team.supervisors.add(sally)
    team.viewers.add(vic)


@pytest.mark.django_db(transaction=True)
def test_a_supervisor_picks_the_rules_metric_and_queue_from_the_catalog(
    stack, sales_supervisor_and_viewer, page
):
    base_url, _ = stack
    log_in(page, base_url, "sally", "/alerts/")
    metric, category = page.locator("#id_metric"), page.locator("#id_category")
    expect(metric.locator("option[value=CIQGRP01]")).to_have_count(1, timeout=20_000)
    metric.select_option("CIQGRP01")
    # Only the queues of sally's team are offered: no free text, no other team's queue.
    assert category.locator("option").all_text_contents() == ["Choose a category…", "Sales"]
    category.select_option("Sales")
    page.fill("#id_name", "Sales queue long")
    page.fill("#id_threshold", "5")
    page.get_by_role("button", name="Add rule").click()
    expect(page.locator(".alert-rules")).to_contain_text("Sales queue long")
    expect(page.locator(".alert-rules")).to_contain_text("(Sales)")

    # A viewer has no queue to watch: told so, and given no form.
    viewer = page.context.browser.new_page()
    log_in(viewer, base_url, "vic", "/alerts/")
    expect(viewer.locator("body")).to_contain_text("Alerts watch the queues and agents")
    expect(viewer.locator("#alert-form")).to_have_count(0)
