"""End to end: every process really started (emulator, the web server, Celery worker and beat, the
subscriber), and Chromium driven by Playwright as a staff_user would use it."""

import json
import math
import re
import time

import pytest
from playwright.sync_api import expect

from tests.conftest import (
    assert_ticks_with_the_clock,
    count_record,
    in_thread,
    log_in,
    start_emulator,
    start_stack,
    wait_until,
)

pytestmark = pytest.mark.django_db(transaction=True)


def date_headers_since(redis_db, since_ms: int) -> int:
    """How many upstream HTTP Date headers the clock offset estimate has taken in since
    `since_ms` (a value's timestamp gives a lower bound only, and is not counted)."""
    kept = (json.loads(raw) for raw in redis_db.lrange("acr:clock:bounds", 0, -1))
    return sum(1 for _, high, seen_ms in kept if math.isfinite(high) and seen_ms > since_ms)


def test_a_supervisor_sees_a_duration_tile_tick(stack, staff_user, page):
    base_url, emulator = stack
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(payload)))
    log_in(page, base_url)
    page.get_by_role("link", name="All metrics").click()

    selector = '[data-metric-id="LWCGRP01"][data-category="Sales"]'
    longest_wait = page.locator(selector)
    expect(longest_wait).to_have_attribute("data-state", "live", timeout=20_000)
    # It ticks once a second with no new message: timed from one tick to the one that shows 2 s
    # more, and compared with the time that passed in between.
    advanced_by = "([selector, first]) => Number(document.querySelector(selector).dataset.value)"
    ticked = int(longest_wait.get_attribute("data-value"))
    page.wait_for_function(advanced_by + " !== first", arg=[selector, ticked], timeout=5_000)
    started, first = time.monotonic(), int(longest_wait.get_attribute("data-value"))
    first_text = longest_wait.locator(".tile-value").inner_text()
    page.wait_for_function(advanced_by + " - first >= 2000", arg=[selector, first], timeout=10_000)
    second = int(longest_wait.get_attribute("data-value"))
    elapsed_ms = (time.monotonic() - started) * 1000
    # One call counting up: +1 s per second.
    assert elapsed_ms - 700 <= second - first <= elapsed_ms + 900, (second - first, elapsed_ms)
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
    live_ms = int(time.time() * 1000)
    wait_until(
        lambda: date_headers_since(redis_db, live_ms) >= 3,
        timeout=15,
        what="a few polls, so that the offset estimate has several Date headers",
    )

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

    started = time.monotonic()
    before = emulator.stats()
    time.sleep(5)  # the window the polls are counted in (measured: a busy machine stretches it)
    after = emulator.stats()
    window_s = round(time.monotonic() - started)

    assert after["ws_open"] == 1
    assert after["ws_total"] == 1
    polls = after["requests"]["values"] - before["requests"]["values"]
    # ACR_POLL_SECONDS=1: one poll a second, whatever the number of browsers.
    assert window_s - 2 <= polls <= window_s + 2, (polls, window_s)


@pytest.mark.parametrize("path", ["/boards/all/", "/team/"], ids=["board", "team"])
def test_a_missed_message_makes_the_page_fetch_a_snapshot(stack, staff_user, page, path):
    """The board's tiles and the team page's cells alike (live.js checks every update)."""
    from metrics import ingest, live

    base_url, _ = stack
    sent: list[str] = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(payload)))
    log_in(page, base_url)
    page.goto(base_url + path)
    support = page.locator('[data-metric-id="CIQGRP01"][data-category="Support"]')
    billing = page.locator('[data-metric-id="CIQGRP01"][data-category="Billing"]')
    expect(support).to_have_attribute("data-state", "live", timeout=20_000)
    # The initial polls have settled: nothing on the page is still initializing (and a
    # catalog change, which asks for a snapshot too, is behind us).
    settling = page.locator('[data-metric-id][data-state]:not([data-state="live"])')
    expect(settling).to_have_count(0, timeout=10_000)
    sent_before = len(sent)

    now = int(time.time() * 1000)  # newer than anything the upstream sent
    # Two updates the page never gets (stored, never published): Billing's, and one of
    # Support's, which the next Support update shows was missed.
    missed = [
        count_record("CIQGRP01", "Billing", 41, now),
        count_record("CIQGRP01", "Support", 42, now),
    ]
    in_thread(live.write_records, missed)
    in_thread(ingest.store_and_publish, [count_record("CIQGRP01", "Support", 43, now + 1)])

    expect(support).to_have_attribute("data-value", "43", timeout=10_000)
    # Only the fresh snapshot that the gap asked for brings Billing's 41.
    expect(billing).to_have_attribute("data-value", "41", timeout=10_000)
    assert any('"snapshot"' in str(frame) for frame in sent[sent_before:])


def test_undocumented_value_types_tick_by_their_fields_or_show_as_unsupported(
    stack, staff_user, page, redis_db
):
    base_url, emulator = stack
    log_in(page, base_url)
    page.goto(base_url + "/boards/all/")

    # LWCALL01 sends MAX_DURATION, a type no document names, with the DURATION fields: it ticks
    # like a duration, one call counting up.
    selector = '[data-metric-id="LWCALL01"][data-category=""]'
    longest = page.locator(selector)
    expect(longest).to_have_attribute("data-state", "live", timeout=20_000)
    assert_ticks_with_the_clock(page, selector)
    assert re.fullmatch(r"\d\d:\d\d", longest.locator(".tile-value").inner_text())
    record = json.loads(redis_db.hget("acr:live:record", "LWCALL01\x1f"))
    assert record["value"]["type"] == "DURATION"
    assert record["value"]["upstream_type"] == "MAX_DURATION"  # kept for a tile to show

    # An undocumented type with no field to read a number from shows as unsupported.
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
