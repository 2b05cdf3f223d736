"""The public wait-time widget: honest payload, only public fields, CORS, framing, caching,
rate limiting, and no upstream traffic."""

import threading
from functools import partial
from http.server import HTTPServer, SimpleHTTPRequestHandler

import httpx
import pytest
from asgiref.sync import async_to_sync
from playwright.sync_api import expect

from dashboard.widget import payload
from metrics import live
from metrics.acr import clock
from metrics.models import Metric, Widget
from tests.conftest import free_port

CONFIG = {
    "slug": "sales",
    "wait": {"metric_id": "AWT", "category": "Sales"},
    "queue": {"metric_id": "CIQ", "category": "Sales"},
    "agents": {"metric_id": "AVL", "category": "Sales"},
    "high_demand_seconds": 600,
    "min_calls": 3,
    "round_to_minutes": 1,
    "lang": "en",
    "texts": {
        "open": "Current wait: {wait} · {ahead} callers ahead",
        "high_demand": "High demand: {wait}",
        "closed": "We are closed right now.",
        "unknown": "Wait time is not available right now.",
        "under_a_minute": "under 1 min",
        "minutes": "about {minutes} min",
    },
    "origins": ["https://www.example.com"],
    "public": False,
    "max_age": 5,
}
NOW = 1_000_000_000


def count(n, state="live"):
    return {"state": state, "value": {"type": "COUNT", "count": n, "last_update_ms": NOW}}


def average(total_ms, calls, waiting=0):
    return {
        "state": "live",
        "value": {
            "type": "AVERAGE_DURATION",
            "count": calls,
            "finished_ms": total_ms,
            "up": waiting,
            "down": 0,
            "last_update_ms": NOW,
        },
    }


@pytest.mark.parametrize(
    ("records", "stale", "state", "text"),
    [
        (
            {"wait": average(30_000 * 10, 10), "queue": count(2), "agents": count(3)},
            False,
            "open",
            "Current wait: under 1 min · 2 callers ahead",
        ),
        (
            {"wait": average(130_000 * 10, 10), "queue": count(5), "agents": count(3)},
            False,
            "open",
            "Current wait: about 3 min · 5 callers ahead",
        ),
        (
            {"wait": average(700_000 * 4, 4), "queue": count(9), "agents": count(1)},
            False,
            "high_demand",
            "High demand: about 12 min",
        ),
        (
            {
                # More counting down than up: computed below zero, read as 0 (values.py).
                "wait": {
                    "state": "live",
                    "value": {**average(1_000, 10)["value"], "down": 2, "last_update_ms": 0},
                },
                "queue": count(0),
                "agents": count(1),
            },
            False,
            "open",
            "Current wait: under 1 min · 0 callers ahead",
        ),
        (
            {"wait": average(30_000, 10), "queue": count(0), "agents": count(0)},
            False,
            "closed",
            "We are closed right now.",
        ),
        (
            {"wait": average(30_000, 10), "queue": count(2), "agents": count(3)},
            True,
            "unknown",
            "Wait time is not available right now.",
        ),
        (
            {"wait": average(30_000, 2), "queue": count(2), "agents": count(3)},
            False,
            "unknown",
            "Wait time is not available right now.",
        ),  # too few calls to be honest
        (
            {"wait": average(0, 0), "queue": count(2), "agents": count(3)},
            False,
            "unknown",
            "Wait time is not available right now.",
        ),
        (
            {
                "wait": {"state": "initializing", "value": None},
                "queue": count(2),
                "agents": count(3),
            },
            False,
            "unknown",
            "Wait time is not available right now.",
        ),
        (
            {"wait": None, "queue": count(2), "agents": count(3)},
            False,
            "unknown",
            "Wait time is not available right now.",
        ),
        (
            {
                "wait": average(30_000 * 10, 10),
                "queue": count(2, "initializing"),
                "agents": count(3),
            },
            False,
            "unknown",
            "Wait time is not available right now.",
        ),
    ],
)
def test_the_widget_only_shows_a_number_it_can_stand_behind(records, stale, state, text):
    data = payload.build_payload(CONFIG, records, upstream_now_ms=NOW, stale=stale)
    assert (data["state"], data["text"]) == (state, text)
    assert set(data) == {"state", "text", "wait_minutes", "wait_text", "callers_ahead", "lang"}


def test_minutes_round_up_to_the_configured_step():
    config = {**CONFIG, "round_to_minutes": 5}
    assert payload.wait_text(61_000, config) == (5, "about 5 min")
    assert payload.wait_text(301_000, config) == (10, "about 10 min")
    assert payload.wait_text(59_999, config) == (0, "under 1 min")


def reset_caches():
    """Forgets cached configs, payloads and rate counts (as time passing would)."""
    from dashboard.widget import asgi as widget_asgi

    payload._configs.clear()
    widget_asgi._payloads.clear()
    widget_asgi._counts.clear()


# --- over HTTP, through the real ASGI application ------------------------------------------------


def asgi_get(path: str, **headers: str) -> httpx.Response:
    from dashboard.asgi import application

    async def get():
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            return await http.get(path, headers=headers)

    return async_to_sync(get)()


@pytest.fixture
def sales_widget(db, redis_db):
    def metric(metric_id, name):
        return Metric.objects.create(
            metric_id=metric_id, name=name, category_type="GROUP", categories=["Sales"], public=True
        )

    widget = Widget.objects.create(
        slug="sales",
        name="Sales line",
        wait_metric=metric("AWTGRP01", "Average Wait Time"),
        wait_category="Sales",
        queue_metric=metric("CIQGRP01", "Calls in Queue"),
        queue_category="Sales",
        allowed_origins="https://www.example.com",
    )
    reset_caches()
    now = clock.now_ms()
    async_to_sync(live.write_records)(
        [
            {
                "metric_id": "AWTGRP01",
                "category": "Sales",
                "state": "live",
                "error": "",
                "value": {
                    "type": "AVERAGE_DURATION",
                    "count": 10,
                    "finished_ms": 1_500_000,
                    "up": 0,
                    "down": 0,
                    "last_update_ms": now,
                },
                "upstream_ms": now,
                "source": "poll",
                "received_ms": now,
            },
            {
                "metric_id": "CIQGRP01",
                "category": "Sales",
                "state": "live",
                "error": "",
                "value": {"type": "COUNT", "count": 4, "last_update_ms": now},
                "upstream_ms": now,
                "source": "poll",
                "received_ms": now,
            },
        ]
    )
    async_to_sync(live.update_status)(poll_ok_ms=now, ws_ok_ms=now)
    yield widget
    reset_caches()


def test_the_payload_holds_only_public_fields(client, sales_widget, settings):
    response = asgi_get("/widget/sales.json")
    assert response.status_code == 200
    data = response.json()
    assert data["text"] == "Current wait: about 3 min · 4 callers ahead"
    raw = response.content.decode()
    for private in ("AWTGRP01", "CIQGRP01", "finished", "last_update", "Sales", "metric"):
        assert private not in raw
    assert response.headers["cache-control"] == "public, max-age=5"


def test_cors_only_for_allowed_origins(client, sales_widget):
    allowed = asgi_get("/widget/sales.json", origin="https://www.example.com")
    assert allowed.headers["access-control-allow-origin"] == "https://www.example.com"
    refused = asgi_get("/widget/sales.json", origin="https://evil.example")
    assert "access-control-allow-origin" not in refused.headers
    sales_widget.public = True
    sales_widget.save()
    reset_caches()
    anyone = asgi_get("/widget/sales.json", origin="https://evil.example")
    assert anyone.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in anyone.headers


def test_a_matching_etag_gets_304(client, sales_widget):
    first = asgi_get("/widget/sales.json")
    again = asgi_get("/widget/sales.json", **{"if-none-match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


def test_stale_data_shows_the_fallback_text(client, sales_widget):
    async_to_sync(live.update_status)(poll_ok_ms=1, ws_ok_ms=1)
    reset_caches()
    data = asgi_get("/widget/sales.json").json()
    assert data == {**data, "state": "unknown", "wait_minutes": None, "callers_ahead": None}
    assert data["text"] == "Wait time is not available right now."


def test_each_client_is_rate_limited(client, sales_widget, settings):
    settings.WIDGET_RATE_LIMIT = 5
    statuses = [asgi_get("/widget/sales.json").status_code for _ in range(7)]
    assert statuses == [200] * 5 + [429] * 2


def test_the_iframe_may_only_be_framed_by_allowed_sites(client, sales_widget):
    response = client.get("/widget/sales/frame/")
    assert response["Content-Security-Policy"] == "frame-ancestors 'self' https://www.example.com"
    assert "X-Frame-Options" not in response


def test_an_unknown_widget_is_404(client, redis_db, db):
    assert asgi_get("/widget/nope.json").status_code == 404


# --- in a browser, embedded in a third-party page --------------------------------------------


@pytest.fixture
def third_party_site(tmp_path):
    """A plain web site on another port, which embeds the widget as its snippet says."""
    port = free_port()
    handler = partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = HTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{port}"
    server.shutdown()


def public_metric(metric_id):
    # The system's catalog sync may have made the row already.
    return Metric.objects.update_or_create(
        metric_id=metric_id,
        defaults={"category_type": "GROUP", "categories": ["Sales"], "public": True},
    )[0]


@pytest.fixture
def embedding_page(third_party_site):
    """A widget that allows the third-party site, and that site's page embedding it."""
    folder, site = third_party_site
    Widget.objects.create(
        slug="sales",
        name="Sales line",
        wait_metric=public_metric("AWTGRP01"),
        wait_category="Sales",
        queue_metric=public_metric("CIQGRP01"),
        queue_category="Sales",
        allowed_origins=site,
        min_calls=1,
    )
    payload._configs.clear()
    return folder, site


@pytest.mark.django_db(transaction=True)
def test_the_script_tag_renders_on_another_sites_page(stack, embedding_page, browser):
    base_url, emulator = stack
    folder, site = embedding_page
    (folder / "index.html").write_text(
        "<!doctype html><html><head><style>div{color:red!important;font-size:40px}</style></head>"
        "<body><h1>Acme support</h1>"
        f'<script src="{base_url}/static/widget/widget.js" '
        f'data-widget="{base_url}/widget/sales.json" async></script>'
        f'<iframe id="framed" src="{base_url}/widget/sales/frame/"></iframe></body></html>'
    )
    page = browser.new_page()
    requests_before = emulator.stats()["requests_total"]
    page.goto(site + "/")
    widget = page.locator(".acr-wait-widget .w")  # Playwright pierces the open shadow root
    expect(widget).to_contain_text("callers ahead", timeout=20_000)
    assert widget.get_attribute("role") == "status"
    # The page's CSS does not leak in.
    assert widget.evaluate("e => getComputedStyle(e).color") != "rgb(255, 0, 0)"
    # Its origin is allowed: the iframe shows the same text.
    framed = page.frame_locator("#framed").locator(".acr-wait-widget .w")
    expect(framed).to_contain_text("callers ahead", timeout=10_000)
    # Widget traffic never reaches the upstream (the stack's own polling does, 1/s).
    for _ in range(30):
        page.evaluate(f"fetch('{base_url}/widget/sales.json').then(r => r.json())")
    stats = emulator.stats()
    polls = stats["requests"]["values"] + stats["requests"]["catalog"]
    assert stats["requests_total"] - requests_before <= polls


@pytest.fixture
def private_widget():
    Widget.objects.create(
        slug="private",
        name="Private",
        wait_metric=public_metric("AWTGRP01"),
        wait_category="Sales",
        allowed_origins="https://www.example.com",
    )


@pytest.mark.django_db(transaction=True)
def test_a_disallowed_site_can_neither_frame_nor_fetch_it(
    stack, third_party_site, private_widget, browser
):
    base_url, _ = stack
    folder, site = third_party_site
    (folder / "index.html").write_text(
        f'<iframe id="framed" src="{base_url}/widget/private/frame/"></iframe>'
    )
    page = browser.new_page()
    page.goto(site + "/")
    result = page.evaluate(
        f"fetch('{base_url}/widget/private.json').then(() => 'read', () => 'refused')"
    )
    assert result == "refused"
    page.wait_for_timeout(1500)
    assert page.frame_locator("#framed").locator(".acr-wait-widget").count() == 0
