"""Alert rules: above/below for N seconds, cooldown, quiet hours, and who is told how."""

import json
import threading
from datetime import UTC, datetime, time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from dashboard import alerts
from dashboard.alerts import RuleState, evaluate, in_quiet_hours
from dashboard.asgi import application
from metrics import ingest, live
from metrics.acr import clock
from metrics.models import AlertEvent, AlertRule, Metric, Team
from tests.conftest import free_port

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
    assert in_quiet_hours(time(22, 0), time(6, 0), at)
    assert not in_quiet_hours(time(22, 0), time(6, 0), at.replace(hour=12))
    assert not in_quiet_hours(None, None, at)


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
    redis_db, webhook, mailoutbox
):
    url, received = webhook

    def setup():
        user = get_user_model().objects.create_user(
            "sally", password="pw-long-sales-1", email="sally@example.com"
        )
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
        "metric": Metric.objects.get().pk,
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
