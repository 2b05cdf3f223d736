"""End to end: every process really started (emulator, the web server, Celery worker and beat, the
subscriber), and Chromium driven by Playwright as a staff_user would use it."""

import json
import re
import time

import pytest
from playwright.sync_api import expect

from tests.conftest import count_record, in_thread, log_in, start_emulator, start_stack

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_supervisor_sees_a_duration_tile_tick(stack, staff_user, page):
    base_url, emulator = stack
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(payload)))
    log_in(page, base_url)
    page.get_by_role("link", name="All metrics").click()

    longest_wait = page.locator('[data-metric-id="LWCGRP01"][data-category="Sales"]')
    expect(longest_wait).to_have_attribute("data-state", "live", timeout=20_000)
    first = int(longest_wait.get_attribute("data-value"))
    first_text = longest_wait.locator(".tile-value").inner_text()
    time.sleep(2.1)
    second = int(longest_wait.get_attribute("data-value"))
    assert 1400 <= second - first <= 3000  # one call counting up: +1 s per second
    assert longest_wait.locator(".tile-value").inner_text() != first_text
    assert re.fullmatch(r"\d\d:\d\d", first_text)

    # A count, a NONE-category tile and an average all show their numbers.
    queue = page.locator('[data-metric-id="CIQGRP01"][data-category="Sales"]')
    expect(queue).to_have_attribute("data-value", "3")
    expect(queue.locator(".tile-value")).to_have_text("3")
    expect(page.locator('[data-metric-id="CANTOD01"][data-category=""]')).to_have_attribute(
        "data-value", "412"
    )

    # An average over zero calls shows no number, never 0.
    emulator.control(
        "values",
        {
            "metricId": "AWTGRP01",
            "categoryValue": "Billing",
            "value": {
                "type": "AVERAGE_DURATION",
                "count": 0,
                "finishedDuration": 0,
                "numCountingUp": 0,
                "numCountingDown": 0,
            },
        },
    )
    average = page.locator('[data-metric-id="AWTGRP01"][data-category="Billing"]')
    expect(average.locator(".tile-value")).to_have_text("—", timeout=10_000)
    expect(average).to_have_attribute("data-value", "")

    # The upstream key reaches the browser nowhere.
    assert frames, "the board received no websocket frames"
    assert emulator.auth_key not in page.content()
    assert not [f for f in frames if emulator.auth_key in str(f)]


def test_tiles_turn_stale_when_the_upstream_stops_and_recover(stack, staff_user, page, processes):
    base_url, emulator = stack
    log_in(page, base_url)
    page.goto(base_url + "/boards/all/")
    queue = page.locator('[data-metric-id="CIQGRP01"][data-category="Sales"]')
    expect(queue).to_have_attribute("data-state", "live", timeout=20_000)

    emulator.process.kill()
    expect(queue).to_have_attribute("data-state", "stale", timeout=15_000)
    expect(queue.locator(".tile-note")).to_contain_text("stale since")
    expect(page.locator("#upstream")).to_contain_text("stale")
    assert page.locator(".tile[data-state=live]").count() == 0

    port = int(emulator.url.rsplit(":", 1)[1])
    start_emulator(
        processes, "--scenario", "static", "--init-seconds", "1", port=port, key=emulator.auth_key
    )
    expect(queue).to_have_attribute("data-state", "live", timeout=15_000)
    # The websocket comes back after its reconnect backoff (at most 8 s, with jitter).
    expect(page.locator("#upstream")).to_be_hidden(timeout=15_000)


def test_durations_are_right_when_the_upstream_clock_is_two_minutes_ahead(
    processes, redis_db, settings, staff_user, page
):
    base_url, emulator = start_stack(processes, settings.REDIS_URL, "--skew-ms", "120000")
    log_in(page, base_url)
    page.goto(base_url + "/boards/all/")
    tile = page.locator('[data-metric-id="LWCGRP01"][data-category="Sales"]')
    expect(tile).to_have_attribute("data-state", "live", timeout=20_000)
    time.sleep(3)  # a few polls, so the offset estimate has several Date headers

    shown = int(tile.get_attribute("data-value"))
    upstream_now = emulator.control("clock", {"advance_ms": 0})["now_ms"]
    record = json.loads(redis_db.hget("acr:live:record", "LWCGRP01\x1fSales"))
    value = record["value"]
    truth = value["finished_ms"] + (value["up"] - value["down"]) * (
        upstream_now - value["last_update_ms"]
    )
    assert abs(shown - truth) <= 1500, (shown, truth)


def test_four_browsers_cost_the_upstream_one_websocket_and_one_poll_stream(
    stack, staff_user, browser
):
    base_url, emulator = stack
    pages = [browser.new_context().new_page() for _ in range(4)]
    for page in pages:
        log_in(page, base_url)
        page.goto(base_url + "/boards/all/")
        expect(page.locator('.tile[data-state="live"]').first).to_be_visible(timeout=20_000)

    before = emulator.stats()
    time.sleep(5)
    after = emulator.stats()

    assert after["ws_open"] == 1
    assert after["ws_total"] == 1
    polls = after["requests"]["values"] - before["requests"]["values"]
    assert 3 <= polls <= 7  # ACR_POLL_SECONDS=1 over 5 s, whatever the number of browsers


@pytest.mark.parametrize("path", ["/boards/all/", "/team/"], ids=["board", "team"])
def test_a_missed_message_makes_the_page_fetch_a_snapshot(stack, staff_user, page, path):
    """The board's tiles and the team page's cells alike (live.js checks every update)."""
    from metrics import live, services

    base_url, _ = stack
    sent: list[str] = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(payload)))
    log_in(page, base_url)
    page.goto(base_url + path)
    support = page.locator('[data-metric-id="CIQGRP01"][data-category="Support"]')
    billing = page.locator('[data-metric-id="CIQGRP01"][data-category="Billing"]')
    expect(support).to_have_attribute("data-state", "live", timeout=20_000)
    time.sleep(2)  # let the initial polls settle
    sent.clear()  # (a catalog change asks for a snapshot too)

    now = int(time.time() * 1000)  # newer than anything the upstream sent
    stored = count_record("CIQGRP01", "Support", 42, now)
    in_thread(live.write_records, [stored])  # stored, never published
    in_thread(services.store_and_publish, [count_record("CIQGRP01", "Billing", 43, now)])

    expect(billing).to_have_attribute("data-value", "43", timeout=10_000)
    expect(support).to_have_attribute("data-value", "42", timeout=10_000)
    assert any('"snapshot"' in str(frame) for frame in sent)


def test_an_undocumented_value_type_shows_as_unsupported(stack, staff_user, page):
    base_url, emulator = stack
    log_in(page, base_url)
    page.goto(base_url + "/boards/all/")
    tile = page.locator('[data-metric-id="AVLGRP01"][data-category="Sales"]')
    expect(tile).to_have_attribute("data-state", "live", timeout=20_000)

    emulator.control("faults", {"unknown_type": True})

    expect(tile).to_have_attribute("data-state", "error", timeout=10_000)
    expect(tile.locator(".tile-note")).to_contain_text("unsupported value type MAX_DURATION")
    expect(tile.locator(".tile-value")).to_have_text("—")
    expect(tile).to_have_attribute("data-value", "")
    # The rest of the board carries on.
    expect(page.locator('[data-metric-id="CIQGRP01"][data-category="Sales"]')).to_have_attribute(
        "data-state", "live"
    )
