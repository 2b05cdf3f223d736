"""Alert webhooks: only to addresses the worker may reach (checked when a rule is saved and again
when it is sent, to the address checked), sent by a task of their own, within 5 seconds."""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model

from dashboard import alerts, tasks, webhooks
from metrics import ingest, live
from metrics.acr import clock
from metrics.models import AlertRule, Metric
from tests.conftest import PASSWORD, count_record, queued_webhooks

REFUSED, ALLOWED = True, False


@pytest.mark.parametrize(
    ("address", "refused", "refused_even_when_private_allowed"),
    [
        ("127.0.0.1", REFUSED, False),
        ("127.8.9.10", REFUSED, False),
        ("::1", REFUSED, False),
        ("10.0.0.5", REFUSED, False),
        ("172.16.3.4", REFUSED, False),
        ("192.168.1.20", REFUSED, False),
        ("100.64.0.1", REFUSED, False),  # carrier-grade NAT: not the internet either
        ("fd12:3456::1", REFUSED, False),
        ("::ffff:127.0.0.1", REFUSED, False),  # IPv4-mapped
        ("2002:7f00:1::", REFUSED, False),  # 6to4 of 127.0.0.1
        ("169.254.169.254", REFUSED, True),  # the cloud metadata service
        ("::ffff:169.254.169.254", REFUSED, True),
        ("fe80::1", REFUSED, True),
        ("fe80::1%eth0", REFUSED, True),
        ("0.0.0.0", REFUSED, True),
        ("::", REFUSED, True),
        ("224.0.0.1", REFUSED, True),
        ("ff02::1", REFUSED, True),
        ("240.0.0.1", REFUSED, True),
        ("255.255.255.255", REFUSED, True),
        ("93.184.215.14", ALLOWED, False),
        ("2606:4700:4700::1111", ALLOWED, False),
        ("::ffff:93.184.215.14", ALLOWED, False),
    ],
)
def test_which_addresses_a_webhook_may_reach(address, refused, refused_even_when_private_allowed):
    assert bool(webhooks.refusal(address, allow_private=False)) is refused
    assert bool(webhooks.refusal(address, allow_private=True)) is refused_even_when_private_allowed


# --- the rule form --------------------------------------------------------------------------------


@pytest.fixture
def supervisor(client, db):
    """An admin at the alert form (admins may watch any queue)."""
    user = get_user_model().objects.create_user("sally", password=PASSWORD, is_staff=True)
    client.force_login(user)
    return client


def rule_form(webhook_url: str) -> dict:
    metric, _ = Metric.objects.get_or_create(
        metric_id="LWC", defaults={"name": "Longest Wait", "category_type": "NONE"}
    )
    return {
        "name": "wait",
        "metric": metric.metric_id,
        "category": "",
        "direction": "above",
        "threshold": 1,
        "for_seconds": 0,
        "cooldown_minutes": 1,
        "webhook_url": webhook_url,
    }


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://127.0.0.1:8081/_emulator/reset", "loopback or private"),
        ("http://localhost:8081/hook", "loopback or private"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback or private"),
        ("http://10.1.2.3/hook", "WEBHOOK_ALLOW_PRIVATE=1"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("ftp://93.184.215.14/hook", "http:// or https://"),
        ("http://no-such-host.invalid/hook", "cannot be resolved"),
    ],
)
def test_the_form_refuses_a_webhook_the_worker_may_not_reach(supervisor, url, says):
    response = supervisor.post("/alerts/", rule_form(url))
    assert response.status_code == 400
    assert says in response.content.decode()
    assert not AlertRule.objects.exists()


def test_an_internal_receiver_is_taken_only_when_the_site_allows_it(supervisor, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    assert supervisor.post("/alerts/", rule_form("http://10.1.2.3/hook")).status_code == 302
    refused = supervisor.post("/alerts/", rule_form("http://169.254.169.254/latest/"))
    assert refused.status_code == 400 and "link-local" in refused.content.decode()


def test_a_public_receiver_is_taken(supervisor):
    assert supervisor.post("/alerts/", rule_form("https://93.184.215.14/hook")).status_code == 302
    assert AlertRule.objects.get().webhook_url == "https://93.184.215.14/hook"


# --- the sending task -----------------------------------------------------------------------------


@pytest.fixture
def receiver():
    """A webhook receiver on 127.0.0.1: the bodies and Host headers it got."""
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append((self.headers["Host"], body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_port, received
    server.shutdown()


def job(url: str, rule: int = 1) -> dict:
    return {"rule": rule, "url": url, "body": {"rule": "wait", "text": "wait: 130 s"}}


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_the_task_never_sends_to_a_refused_address(receiver, redis_db, caplog, host):
    """A URL saved while allowed, or whose name resolves elsewhere since, is checked again."""
    port, received = receiver
    tasks.send_webhooks([job(f"http://{host}:{port}/hook")])
    assert received == []
    assert "alert webhook for rule 1 refused" in caplog.text


def test_the_task_connects_to_the_address_it_checked(receiver, redis_db, settings, monkeypatch):
    """The name is resolved once and the request goes to that address: a second answer (DNS
    rebinding to the metadata service) is never asked for."""
    settings.WEBHOOK_ALLOW_PRIVATE = True
    port, received = receiver
    real = socket.getaddrinfo
    answers = iter(["127.0.0.1", "169.254.169.254"])

    def getaddrinfo(host, *args, **kwargs):
        if host != "hooks.example":
            return real(host, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    tasks.send_webhooks([job(f"http://hooks.example:{port}/hook")])
    assert received == [(f"hooks.example:{port}", {"rule": "wait", "text": "wait: 130 s"})]


@pytest.fixture
def black_hole():
    """A receiver that takes connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/hook"


@pytest.mark.django_db(transaction=True)
async def test_a_black_hole_receiver_delays_no_check(redis_db, settings, black_hole, caplog):
    """Ten rules aimed at a receiver that never answers: the check returns at once, one task
    sends all ten within its 5 s, and no rule queues another send while its last is pending."""
    settings.WEBHOOK_ALLOW_PRIVATE = True

    def setup():
        owner = get_user_model().objects.create_user("sally", password=PASSWORD, is_staff=True)
        queue = Metric.objects.create(metric_id="CIQ", name="Calls in Queue", category_type="NONE")
        for n in range(10):
            AlertRule.objects.create(
                owner=owner,
                name=f"rule {n}",
                metric=queue,
                threshold=1,
                for_seconds=0,
                cooldown_minutes=0,
                webhook_url=black_hole,
            )

    await sync_to_async(setup)()
    now = clock.now_ms()
    await ingest.store_and_publish([count_record("CIQ", "", 5, now)])
    await live.update_status(poll_ok_ms=now, ws_ok_ms=now)

    started = time.monotonic()
    assert await alerts.check_all(now) == 10
    assert time.monotonic() - started < 2  # inline, ten sends took 10 x 5 s
    [jobs] = queued_webhooks(redis_db)
    assert len(jobs) == 10

    assert await alerts.check_all(now + 5000) == 10  # fires again (no cooldown)...
    assert len(queued_webhooks(redis_db)) == 1  # ...but each rule's send is still pending

    started = time.monotonic()
    await webhooks.send_all(jobs)
    assert time.monotonic() - started < webhooks.TOTAL_SECONDS + 2  # all at once
    assert caplog.text.count("failed:") == 10

    assert await alerts.check_all(now + 10_000) == 10  # sent (or given up): may queue again
    assert len(queued_webhooks(redis_db)) == 2
