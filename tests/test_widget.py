"""The public wait-time widget: honest payload, only public fields, CORS, framing, caching,
rate limiting, and no upstream traffic."""

import re
import threading
import time
from functools import partial
from http.server import HTTPServer, SimpleHTTPRequestHandler

import httpx
import pytest
from asgiref.sync import async_to_sync
from django.core.exceptions import ValidationError
from playwright.sync_api import expect

from dashboard.widget import payload
from metrics import live
from metrics.acr import clock
from metrics.models import Metric, Widget, widget_text_error
from tests.conftest import database_url, free_port, wait_for_port, web_command

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
        "one_caller": "1 caller",
        "callers": "{ahead} callers",
    },
    "style": {"text": "#14191f", "background": "#ffffff", "font_size": 16},
    "origins": ["https://www.example.com"],
    "all_public": True,
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
    assert set(data) == {
        "state",
        "text",
        "wait_minutes",
        "wait_text",
        "callers_ahead",
        "lang",
        "style",
    }


@pytest.mark.parametrize(
    ("ahead", "text"),
    [
        (0, "Current wait: under 1 min · 0 callers ahead"),
        (1, "Current wait: under 1 min · 1 caller ahead"),
        (2, "Current wait: under 1 min · 2 callers ahead"),
    ],
)
def test_one_caller_is_one_caller(ahead, text):
    config = {
        **CONFIG,
        "texts": {**CONFIG["texts"], "open": "Current wait: {wait} · {callers} ahead"},
    }
    records = {"wait": average(30_000 * 10, 10), "queue": count(ahead), "agents": count(3)}
    data = payload.build_payload(config, records, upstream_now_ms=NOW, stale=False)
    assert data["text"] == text


def test_the_callers_words_follow_the_widgets_language():
    texts = {
        **CONFIG["texts"],
        "open": "Espera: {wait} · {callers} delante",
        "under_a_minute": "menos de 1 min",
        "one_caller": "1 persona",
        "callers": "{ahead} personas",
    }
    records = {"wait": average(30_000 * 10, 10), "queue": count(1), "agents": count(3)}
    data = payload.build_payload(
        {**CONFIG, "texts": texts}, records, upstream_now_ms=NOW, stale=False
    )
    assert data["text"] == "Espera: menos de 1 min · 1 persona delante"


def test_minutes_round_up_to_the_configured_step():
    config = {**CONFIG, "round_to_minutes": 5}
    assert payload.wait_text(61_000, config) == (5, "about 5 min")
    assert payload.wait_text(301_000, config) == (10, "about 10 min")
    assert payload.wait_text(59_999, config) == (0, "under 1 min")


def reset_caches():
    """Forgets cached configs and payloads (as time passing would; the rate counts live in the
    test's Redis database)."""
    from dashboard.widget import asgi as widget_asgi

    payload._configs.clear()
    widget_asgi._payloads.clear()


# --- over HTTP, through the real ASGI application ------------------------------------------------


def asgi_get(path: str, peer: str = "127.0.0.1", **headers: str) -> httpx.Response:
    """GET `path` from the ASGI application, as a client at `peer` (the address the web server
    sees) with `headers`."""
    from dashboard.asgi import application

    async def get():
        transport = httpx.ASGITransport(app=application, client=(peer, 40000))
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
    assert data["style"] == {
        "text": "#14191f",
        "background": "#ffffff",
        "open": "#1a7f37",
        "high_demand": "#9a6700",
        "closed": "#6e7781",
        "font_size": 16,
        "corner_radius": 8,
    }
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
    from prometheus_client import REGISTRY

    def counted(status: str) -> float:
        return REGISTRY.get_sample_value("acrdash_widget_requests_total", {"status": status})

    settings.WIDGET_RATE_LIMIT = 5
    served, refused = counted("200"), counted("429")
    statuses = [asgi_get("/widget/sales.json").status_code for _ in range(7)]
    assert statuses == [200] * 5 + [429] * 2
    # What /metrics reports (acrdash_widget_requests_total) counts the same.
    assert (counted("200") - served, counted("429") - refused) == (5, 2)


def test_behind_a_proxy_one_client_at_its_limit_leaves_the_others_served(
    client, sales_widget, settings
):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    settings.WIDGET_RATE_LIMIT = 3

    def via_proxy(client_address):
        forwarded = {"x-forwarded-for": client_address}
        return asgi_get("/widget/sales.json", peer="10.0.0.2", **forwarded).status_code

    assert [via_proxy("203.0.113.5") for _ in range(5)] == [200] * 3 + [429] * 2
    assert via_proxy("198.51.100.7") == 200
    # The limited client cannot name another address itself: it is no trusted proxy.
    direct = {"x-forwarded-for": "198.51.100.8"}
    assert asgi_get("/widget/sales.json", peer="203.0.113.5", **direct).status_code == 429


def test_the_limit_is_counted_once_for_every_process(redis_db, settings):
    """Two event loops, each with its own Redis connection, as two web processes have."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from dashboard import ratelimit

    now = clock.now_ms()

    def process(hits):
        async def run():
            try:
                return [
                    await ratelimit.hit("widget:203.0.113.5", limit=10, window=60, now_ms=now)
                    for _ in range(hits)
                ]
            finally:
                await live.close_redis()

        return asyncio.run(run())

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(process, [8, 8])
    assert (first + second).count(True) == 10
    # Only the current window's count is kept, and not for longer than the window.
    (key,) = redis_db.keys(ratelimit.PREFIX + "*")
    assert 0 < redis_db.ttl(key) <= 60


@pytest.mark.django_db(transaction=True)
def test_two_web_workers_allow_the_configured_limit_in_total(sales_widget, processes, settings):
    port = free_port()
    env = {
        "DJANGO_SETTINGS_MODULE": "dashboard.test_settings",
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "WEB_WORKERS": "2",
        "WEB_PORT": str(port),
        "WIDGET_RATE_LIMIT": "10",
    }
    web = processes.start("web", web_command(), env)
    wait_for_port(port, web, "web")
    statuses = []
    for _ in range(40):  # a connection each: the workers take turns accepting them
        with httpx.Client() as http:
            statuses.append(http.get(f"http://127.0.0.1:{port}/widget/sales.json").status_code)
    assert statuses.count(200) == 10
    assert statuses.count(429) == 30


async def test_a_client_over_its_limit_is_refused_without_asking_redis(redis_db, monkeypatch):
    from dashboard import ratelimit

    now = clock.now_ms()
    assert await ratelimit.hit("widget:203.0.113.5", limit=1, window=60, now_ms=now)
    assert not await ratelimit.hit("widget:203.0.113.5", limit=1, window=60, now_ms=now)

    def unreachable():
        raise AssertionError("asked Redis")

    monkeypatch.setattr(live, "get_redis", unreachable)
    for _ in range(100):  # a flood costs no round trip
        assert not await ratelimit.hit("widget:203.0.113.5", limit=1, window=60, now_ms=now)
    next_window = now + 60_000
    with pytest.raises(AssertionError, match="asked Redis"):
        await ratelimit.hit("widget:203.0.113.5", limit=1, window=60, now_ms=next_window)


def test_the_iframe_may_only_be_framed_by_allowed_sites(client, sales_widget):
    response = client.get("/widget/sales/frame/")
    assert response["Content-Security-Policy"] == "frame-ancestors 'self' https://www.example.com"
    assert "X-Frame-Options" not in response


def test_an_unknown_widget_is_404(client, redis_db, db):
    assert asgi_get("/widget/nope.json").status_code == 404


def test_unknown_widgets_are_rate_limited_before_they_are_looked_up(
    redis_db, db, settings, django_assert_max_num_queries
):
    settings.WIDGET_RATE_LIMIT = 3
    reset_caches()
    with django_assert_max_num_queries(3):
        statuses = [asgi_get(f"/widget/guess-{n}.json").status_code for n in range(10)]
    assert statuses == [404] * 3 + [429] * 7


def age_configs():
    """Makes every cached config as old as its time to live (as time passing would)."""
    for slug, (_, config) in payload._configs.items():
        payload._configs[slug] = (0.0, config)


def test_the_config_cache_is_bounded_and_forgets_unknown_slugs(db, monkeypatch):
    monkeypatch.setattr(payload, "CONFIG_CACHE_SIZE", 5)
    reset_caches()
    for n in range(50):
        assert payload.cached_config(f"guess-{n}") is None
    assert len(payload._configs) == 5
    assert list(payload._configs) == [f"guess-{n}" for n in range(45, 50)]  # the newest
    # A slug found to be no widget is remembered for a few seconds only.
    Widget.objects.create(slug="guess-49", name="New", wait_metric=public_metric("AWTGRP01"))
    assert payload.cached_config("guess-49") is None
    age_configs()
    assert payload.cached_config("guess-49")["slug"] == "guess-49"


# --- hostile or outdated configuration ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("Current wait: {wait} · {ahead} callers ahead", True),
        ("Current wait: {wait} · {callers} ahead", True),
        ("about {minutes} min", True),
        ("{{braces}} {minutes}", True),
        ("no placeholder at all", True),
        ("{minutes:s}", False),  # made every request fail
        ("{minutes:>99999999}", False),  # built a 100 MB body
        ("{minutes:{wait}}", False),
        ("{minutes!r}", False),
        ("{wait.__class__}", False),
        ("{ahead[0]}", False),
        ("{0}", False),
        ("{}", False),
        ("{seconds}", False),
        ("{minutes", False),
        ("minutes}", False),
    ],
)
def test_widget_texts_may_hold_only_the_known_placeholders_as_they_are(text, valid):
    assert (widget_text_error(text) is None) is valid


@pytest.mark.parametrize(
    ("origin", "valid"),
    [
        ("https://www.example.com", True),
        ("http://127.0.0.1:8080", True),
        ("https://WWW.Example.com/", True),  # read as https://www.example.com
        ("http://[::1]:8000", True),
        ("https://www.example.com/page", False),
        ("https://www.example.com; script-src *", False),
        ("https://a.example 'unsafe-inline'", False),
        ('https://a.example"', False),
        ("https://*.example.com", False),
        ("javascript://www.example.com", False),
        ("www.example.com", False),
        ("https://www.example.com:", False),
        ("https://user@www.example.com", False),
    ],
)
def test_allowed_origins_are_scheme_host_and_port_only(db, origin, valid):
    widget = Widget(
        slug="w", name="W", wait_metric=public_metric("AWTGRP01"), allowed_origins=origin
    )
    if valid:
        widget.clean()
    else:
        with pytest.raises(ValidationError) as error:
            widget.clean()
        assert "allowed_origins" in error.value.message_dict


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("color_text", "red"),
        ("color_background", "#fff"),
        ("color_open", "#12345g"),
        ("color_closed", "#123456;background:url(https://evil.example)"),
        ("font_size", 200),
        ("corner_radius", 99),
        ("text_callers", "{ahead:>9999} callers"),
        ("text_one_caller", "{wait}"),
    ],
)
def test_a_widgets_look_and_callers_words_are_checked(db, field, value):
    widget = Widget(slug="w", name="W", wait_metric=public_metric("AWTGRP01"), **{field: value})
    with pytest.raises(ValidationError) as error:
        widget.full_clean()
    assert field in error.value.message_dict


def test_a_look_saved_around_the_checks_never_reaches_a_page(client, sales_widget):
    Widget.objects.filter(pk=sales_widget.pk).update(
        color_text="red;a:b",  # 7 characters: the column holds no more
        font_size=400,
    )
    reset_caches()
    style = asgi_get("/widget/sales.json").json()["style"]
    assert (style["text"], style["font_size"]) == ("#14191f", 16)  # the defaults


def test_bad_texts_and_origins_saved_before_they_were_checked_are_left_out(client, sales_widget):
    Widget.objects.filter(pk=sales_widget.pk).update(  # saved without clean(), as before
        text_open="{wait:s} · {ahead}",
        text_minutes="{minutes:>99999999}",
        allowed_origins="https://www.example.com\nhttps://evil.example; script-src *",
    )
    reset_caches()
    response = asgi_get("/widget/sales.json")
    assert response.status_code == 200
    assert response.json()["text"] == "Current wait: about 3 min · 4 callers ahead"  # defaults
    assert len(response.content) < 1000
    frame = client.get("/widget/sales/frame/")
    assert frame["Content-Security-Policy"] == "frame-ancestors 'self' https://www.example.com"


def test_a_metric_no_longer_public_is_not_shown(client, sales_widget):
    assert asgi_get("/widget/sales.json").json()["state"] == "open"
    Metric.objects.filter(metric_id="CIQGRP01").update(public=False)
    reset_caches()  # as the few seconds of the config cache passing would
    data = asgi_get("/widget/sales.json").json()
    assert (data["state"], data["callers_ahead"]) == ("unknown", None)
    assert data["text"] == "Wait time is not available right now."


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
        color_background="#102030",
        color_open="#ff8800",
        color_high_demand="#ff8800",
        font_size=22,
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
    page.goto(site + "/")
    widget = page.locator(".acr-wait-widget .w")  # Playwright pierces the open shadow root
    expect(widget).to_contain_text(re.compile(r"\d+ callers? ahead"), timeout=20_000)
    assert widget.get_attribute("role") == "status"
    # The page's CSS does not leak in.
    assert widget.evaluate("e => getComputedStyle(e).color") != "rgb(255, 0, 0)"
    # The widget's look, as set in its settings.
    look = widget.evaluate(
        "e => { const s = getComputedStyle(e);"
        " return [s.backgroundColor, s.borderTopColor, s.fontSize]; }"
    )
    assert look == ["rgb(16, 32, 48)", "rgb(255, 136, 0)", "22px"]
    # The embedding page may override any of it with a custom property.
    page.evaluate(
        "document.querySelector('.acr-wait-widget').style"
        ".setProperty('--acr-widget-background', '#000001')"
    )
    assert widget.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(0, 0, 1)"
    # Its origin is allowed: the iframe shows the same text.
    framed = page.frame_locator("#framed").locator(".acr-wait-widget .w")
    expect(framed).to_contain_text(re.compile(r"\d+ callers? ahead"), timeout=10_000)
    # Widget traffic never reaches the upstream: 30 answers, and the upstream saw no more value
    # requests than the stack's own polling makes meanwhile (one a second).
    before, started = emulator.stats()["requests"], time.monotonic()
    answers = page.evaluate(
        f"Promise.all(Array.from({{length: 30}}, () => fetch('{base_url}/widget/sales.json')"
        ".then(r => r.status)))"
    )
    after, elapsed = emulator.stats()["requests"], time.monotonic() - started
    assert answers == [200] * 30
    assert after["values"] - before["values"] <= elapsed + 2


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
