"""Configured wall-boards in Chromium: every tile type, thresholds, display links, playlists."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from dashboard import boards, demo
from metrics.models import Board, Metric, Playlist, PlaylistItem, Sample, Tile
from tests.conftest import assert_ticks_with_the_clock, in_thread, log_in, screenshot_folder

pytestmark = pytest.mark.django_db(transaction=True)

GROUPS = ["Sales", "Support", "Billing"]


def metric(metric_id, name, categories=GROUPS, kind="GROUP"):
    # The system's catalog sync may have made the row already.
    found, _ = Metric.objects.update_or_create(
        metric_id=metric_id,
        defaults={"name": name, "category_type": kind, "categories": categories},
    )
    return found


@pytest.fixture
def floor_board():
    """A board with every tile type, as an admin would configure it."""
    queue = metric("CIQGRP01", "Calls in Queue")
    longest = metric("LWCGRP01", "Longest Waiting Call")
    board = Board.objects.create(name="Floor", slug="floor", title="Support floor", columns=3)
    Tile.objects.create(
        board=board,
        order=1,
        metric=queue,
        category="Sales",
        title="Sales queue",
        warning=2,
        critical=5,
    )
    Tile.objects.create(
        board=board,
        order=2,
        metric=queue,
        kind="breakdown",
        title="Queues",
        warning=1,
        critical=3,
        targets={"Billing": {"warning": 0}},
    )
    Tile.objects.create(
        board=board,
        order=3,
        metric=longest,
        category="Sales",
        title="Longest wait",
        format="hmmss",
        warning=600,
    )
    Tile.objects.create(
        board=board,
        order=4,
        metric=longest,
        kind="trend",
        category="Sales",
        title="Wait trend",
        trend_hours=2,
    )
    now = timezone.now()
    Sample.objects.bulk_create(
        Sample.of("LWCGRP01", "Sales", now - timedelta(minutes=m), m * 1000) for m in range(1, 60)
    )
    return board


def set_count(emulator, category, count):
    emulator.control(
        "values",
        {
            "metricId": "CIQGRP01",
            "categoryValue": category,
            "value": {"type": "COUNT", "count": count},
        },
    )


def test_a_board_renders_every_tile_type_and_its_thresholds(stack, floor_board, staff_user, page):
    base_url, emulator = stack
    log_in(page, base_url)
    page.goto(base_url + "/boards/floor/")

    sales = page.locator('.tile[data-metric-id="CIQGRP01"][data-category="Sales"]')
    expect(sales).to_have_attribute("data-state", "live", timeout=20_000)
    expect(sales.locator(".tile-value")).to_have_text("3")
    expect(sales).to_have_attribute("data-level", "warning")  # 3 >= 2
    expect(sales.locator(".tile-level")).to_have_text("▲ Warning")  # not colour alone
    warning_background = sales.evaluate("e => getComputedStyle(e).backgroundColor")

    set_count(emulator, "Sales", 6)
    expect(sales).to_have_attribute("data-level", "critical", timeout=10_000)
    expect(sales.locator(".tile-level")).to_have_text("■ Critical")
    assert sales.evaluate("e => getComputedStyle(e).backgroundColor") != warning_background
    set_count(emulator, "Sales", 0)
    expect(sales).to_have_attribute("data-level", "normal", timeout=10_000)

    # The breakdown lists every queue, worst first, with per-queue targets.
    rows = page.locator(".breakdown .tile-row")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_have_attribute("data-category", "Support")  # 1 (Sales is now 0)
    expect(rows.nth(0)).to_have_attribute("data-level", "warning")
    billing = page.locator('.breakdown .tile-row[data-category="Billing"]')
    expect(billing).to_have_attribute("data-level", "warning")  # its own target: 0

    # A duration in h:mm:ss that ticks, and a trend chart drawn by Plotly from samples.
    selector = '.tile-value-kind:not(.trend)[data-metric-id="LWCGRP01"]'
    longest = page.locator(selector)
    assert_ticks_with_the_clock(page, selector)  # once a second, with no new message
    assert longest.locator(".tile-value").inner_text().count(":") == 2
    expect(page.locator(".trend .trend-plot .main-svg").first).to_be_visible(timeout=15_000)
    expect(page.locator(".trend .trend-plot path.js-line")).to_have_count(1)


@pytest.fixture
def display_link(floor_board):
    return boards.create_display_link("TV by the door", board=floor_board)


def test_a_display_link_opens_the_board_without_login_until_revoked(stack, display_link, browser):
    base_url, _ = stack
    link, token = display_link
    tv = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
    frames = []
    tv.on("websocket", lambda ws: ws.on("framereceived", lambda frame: frames.append(frame)))
    tv.goto(f"{base_url}/display/{token}/")

    tile = tv.locator('.tile[data-metric-id="CIQGRP01"][data-category="Sales"]')
    expect(tile).to_have_attribute("data-state", "live", timeout=20_000)
    assert tv.locator(".logout").count() == 0  # kiosk: nothing to log out of
    # Scoped to its board: no other metric ever reaches the TV.
    assert not [f for f in frames if "ATTAGT01" in str(f) or "CANTOD01" in str(f)]

    in_thread(boards.revoke_display_link, link)
    expect(tv.get_by_role("alert")).to_contain_text("revoked", timeout=5_000)
    expect(tv.locator(".tile")).to_have_count(0)
    tv.reload()
    expect(tv.get_by_role("alert")).to_contain_text("not valid")


@pytest.fixture
def lobby(floor_board):
    """A playlist of two boards, two seconds each, and its display link."""
    second = Board.objects.create(name="Sales", slug="sales", theme="light")
    Tile.objects.create(
        board=second, metric=Metric.objects.get(metric_id="CIQGRP01"), category="Billing"
    )
    playlist = Playlist.objects.create(name="Lobby")
    PlaylistItem.objects.create(playlist=playlist, board=floor_board, order=1, seconds=2)
    PlaylistItem.objects.create(playlist=playlist, board=second, order=2, seconds=2)
    _, token = boards.create_display_link("Lobby TV", playlist=playlist)
    return floor_board, second, token


def test_a_playlist_rotates_its_boards_in_kiosk_mode(stack, lobby, browser):
    base_url, _ = stack
    floor_board, second, token = lobby

    tv = browser.new_page()
    tv.goto(f"{base_url}/display/{token}/")
    floor = tv.locator(f'.board-page[data-board-id="{floor_board.pk}"]')
    sales = tv.locator(f'.board-page[data-board-id="{second.pk}"]')
    expect(floor).to_be_visible(timeout=10_000)
    expect(sales).to_be_hidden()
    expect(sales).to_be_visible(timeout=5_000)
    expect(floor).to_be_hidden()
    assert "theme-light" in tv.locator("body").get_attribute("class")
    expect(floor).to_be_visible(timeout=5_000)


@pytest.mark.parametrize(("name", "width", "height"), [("1080p", 1920, 1080), ("4k", 3840, 2160)])
def test_screenshots_of_a_display_at_tv_sizes(
    stack, display_link, browser, tmp_path, name, width, height
):
    """Shoots board-<size>.png and checks the numerals scale; with SCREENSHOTS=1 the shots go
    to docs/screenshots for reviewers, otherwise to a temporary folder."""
    base_url, _ = stack
    _, token = display_link
    tv = browser.new_context(viewport={"width": width, "height": height}).new_page()
    tv.goto(f"{base_url}/display/{token}/")
    tile = tv.locator('.tile[data-metric-id="CIQGRP01"][data-category="Sales"]')
    expect(tile).to_have_attribute("data-state", "live", timeout=20_000)
    expect(tv.locator(".trend .trend-plot .main-svg").first).to_be_visible(timeout=15_000)
    numeral = tile.locator(".tile-value").evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
    assert numeral >= height / 12  # big enough to read across the floor
    folder = screenshot_folder(tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    tv.screenshot(path=str(folder / f"board-{name}.png"))


# Every text of every tile: its box must stay inside the tile and show all of its text.
OVERFLOWS = """() => {
  const out = [];
  for (const tile of document.querySelectorAll(".board-page:not([hidden]) .tile")) {
    const box = tile.getBoundingClientRect();
    for (const e of tile.querySelectorAll(".tile-title, .tile-category, .tile-value, th, td")) {
      const r = e.getBoundingClientRect();
      const outside = r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1
        || r.bottom > box.bottom + 1;
      const clipped = e.scrollWidth > e.clientWidth + 1;
      if (outside || clipped) out.push(e.className + ": " + e.textContent);
    }
  }
  return out;
}"""
COVERAGE = """() => {
  const top = document.querySelector(".topbar").getBoundingClientRect().bottom;
  const tiles = [...document.querySelectorAll(".board-page:not([hidden]) .tile")];
  const area = tiles.reduce((sum, t) => {
    const r = t.getBoundingClientRect();
    return sum + r.width * Math.max(0, Math.min(r.bottom, innerHeight) - Math.max(r.top, top));
  }, 0);
  return area / (innerWidth * (innerHeight - top));
}"""


@pytest.fixture
def seeded_demo(tmp_path):
    """The demo `make run` seeds, and its TV link (the playlist of the two demo boards)."""
    demo.seed(tmp_path)
    # A category name as long as a real site's may be (the agents board shows every agent).
    agents = Metric.objects.get(metric_id="ATTAGT01")
    return (tmp_path / "demo_tv_token").read_text(), agents


@pytest.mark.parametrize(("name", "width", "height"), [("1080p", 1920, 1080), ("4k", 3840, 2160)])
def test_screenshots_of_the_seeded_demo_filling_the_screen(
    stack, seeded_demo, browser, tmp_path, name, width, height
):
    """Both demo boards cover most of the screen under the header and no text leaves its tile;
    shoots demo-board-<size>.png (docs/screenshots with SCREENSHOTS=1)."""
    base_url, _ = stack
    token, _ = seeded_demo
    tv = browser.new_context(viewport={"width": width, "height": height}).new_page()
    tv.goto(f"{base_url}/display/{token}/")
    tile = tv.locator('.tile[data-metric-id="CIQGRP01"][data-category="Sales"]').first
    expect(tile).to_have_attribute("data-state", "live", timeout=20_000)
    expect(tv.locator(".trend .trend-plot .main-svg").first).to_be_visible(timeout=15_000)
    assert tv.evaluate(COVERAGE) >= 0.85
    assert tv.evaluate(OVERFLOWS) == []
    folder = screenshot_folder(tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    tv.screenshot(path=str(folder / f"demo-board-{name}.png"))
    numeral = tile.locator(".tile-value").evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
    assert numeral >= height / 12
    # The second board of the playlist: the agents, with their long names.
    tv.evaluate(
        "() => { const s = document.querySelectorAll('.board-page');"
        " s[0].hidden = true; s[1].hidden = false; }"
    )
    expect(tv.locator('.tile-row[data-metric-id="ATTAGT01"]').first).to_be_visible()
    assert tv.evaluate(COVERAGE) >= 0.85
    assert tv.evaluate(OVERFLOWS) == []


def test_screenshots_of_the_widget_on_the_demo_site(stack, seeded_demo, browser, tmp_path):
    base_url, _ = stack
    site = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
    site.goto(f"{base_url}/demo/site/")
    widget = site.locator(".acr-wait-widget .w")
    expect(widget).to_contain_text("wait", timeout=20_000)
    folder = screenshot_folder(tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    site.screenshot(path=str(folder / "widget-demo-site.png"))
