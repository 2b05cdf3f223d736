"""The board designer in Chromium, as a team's supervisor (not staff) would use it, against the
whole running system: build a board from scratch and see it live, move and resize tiles by
keyboard and by drag, and be warned before leaving unsaved changes."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import expect

from metrics.models import Board, Metric, Sample, Team, Tile
from tests.conftest import PASSWORD, in_thread, log_in, screenshot_folder

pytestmark = pytest.mark.django_db(transaction=True)

GROUPS = ["Sales", "Support", "Billing"]


@pytest.fixture
def sally():
    """The Sales supervisor (Sales queue only), and the emulator's queue metrics in the
    catalog."""
    user = get_user_model().objects.create_user("sally", password=PASSWORD)
    team = Team.objects.create(name="Sales", queues=["Sales"])
    team.supervisors.add(user)
    for metric_id, name in (("CIQGRP01", "Calls in Queue"), ("LWCGRP01", "Longest Waiting Call")):
        Metric.objects.update_or_create(
            metric_id=metric_id,
            defaults={"name": name, "category_type": "GROUP", "categories": GROUPS},
        )
    return user, team


@pytest.fixture
def sales_board(sally):
    """A board of three tiles shared with Sales."""
    _, team = sally
    board = Board.objects.create(name="Sales floor", slug="sales-floor", columns=3)
    queue, longest = (Metric.objects.get(metric_id=m) for m in ("CIQGRP01", "LWCGRP01"))
    for order, (metric, title) in enumerate(
        ((queue, "First"), (longest, "Second"), (queue, "Third")), start=1
    ):
        Tile.objects.create(board=board, order=order, metric=metric, category="Sales", title=title)
    team.boards.add(board)
    return board


def add_tile(page, kind, metric_id, categories, **fields):
    page.click("#add-tile")
    page.select_option("#tile-kind", kind)
    page.select_option("#tile-metric", metric_id)
    page.select_option("#tile-category", categories)
    for field, value in fields.items():
        page.fill(f"#tile-{field}", str(value))


def test_a_supervisor_builds_a_board_from_scratch_and_sees_it_live(stack, sally, page):
    base_url, _ = stack
    log_in(page, base_url, "sally")
    page.get_by_role("link", name="Board designer").click()
    page.get_by_label("New board").fill("Sales floor")
    page.get_by_role("button", name="New board").click()
    expect(page).to_have_url(re.compile(r"/designer/boards/sales-floor/$"))

    add_tile(page, "value", "CIQGRP01", "Sales", title="Sales queue", warning=5, critical=2)
    # Only the team's own queue is offered: never free text, never another team's.
    options = page.locator("#tile-category option").all_inner_texts()
    assert options == ["Choose a category…", "Sales"]
    add_tile(page, "breakdown", "CIQGRP01", ["Sales"], title="Queues", width=2)
    add_tile(page, "trend", "LWCGRP01", "Sales", title="Wait trend")
    expect(page.locator("#unsaved")).to_be_visible()

    # The preview shows real live values of the unsaved tiles.
    preview = page.frame_locator("#preview")
    queue = preview.locator('.tile-value-kind[data-metric-id="CIQGRP01"][data-category="Sales"]')
    expect(queue).to_have_attribute("data-state", "live", timeout=20_000)
    expect(queue.locator(".tile-value")).to_have_text("3")

    # Critical below warning with "higher is worse": refused, said next to the field.
    page.click("#save")
    expect(page.locator("#status")).to_contain_text("Not saved")
    expect(page.locator("#error-tile-critical")).to_contain_text("must not be below warning")
    expect(page.locator("#tile-number")).to_have_text("1 of 3")  # the tile at fault is open
    page.fill("#tile-warning", "2")
    page.fill("#tile-critical", "5")
    page.click("#save")
    expect(page.locator("#status")).to_have_text("Saved.")
    expect(page.locator("#unsaved")).to_be_hidden()
    expect(page.locator("#error-tile-critical")).to_be_hidden()

    page.click("#open-board")
    expect(page).to_have_url(re.compile(r"/boards/sales-floor/$"))
    sales = page.locator('.tile-value-kind:not(.trend)[data-metric-id="CIQGRP01"]')
    expect(sales).to_have_attribute("data-state", "live", timeout=20_000)
    expect(sales.locator(".tile-value")).to_have_text("3")
    expect(sales).to_have_attribute("data-level", "warning")  # 3 >= 2
    rows = page.locator(".breakdown .tile-row")
    expect(rows).to_have_count(1)  # Sales alone: the breakdown names its queues
    expect(rows.first).to_have_attribute("data-category", "Sales")
    expect(page.locator(".trend .trend-plot .main-svg").first).to_be_visible(timeout=15_000)
    expect(page.get_by_role("link", name="Send to a screen")).to_have_attribute(
        "href", "/screens/send/?board=sales-floor"
    )


def titles(page) -> list[str]:
    return page.locator("#layout .designer-tile strong").all_inner_texts()


def test_tiles_move_and_resize_by_keyboard_and_by_drag(stack, sales_board, page):
    base_url, _ = stack
    log_in(page, base_url, "sally", path="/designer/boards/sales-floor/")
    expect(page.locator("#layout .designer-tile")).to_have_count(3)
    expect(page.locator("#tile-number")).to_have_text("1 of 3")  # the catalog is loaded

    page.locator("#layout .designer-tile").first.focus()
    page.keyboard.press("ArrowRight")
    assert titles(page) == ["Second", "First", "Third"]
    expect(page.locator("#status")).to_have_text("First moved to position 2 of 3.")
    page.keyboard.press("Shift+ArrowRight")  # the focus stays on the moved tile
    page.keyboard.press("Shift+ArrowDown")
    expect(page.locator("#status")).to_have_text("First: 2 columns wide, 2 rows high.")
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("Shift+ArrowRight")  # 3 columns at most, the board's width
    expect(page.locator("#status")).to_have_text("First: 3 columns wide, 2 rows high.")
    page.keyboard.press("ArrowLeft")
    assert titles(page) == ["First", "Second", "Third"]

    cards = page.locator("#layout .designer-tile")
    cards.nth(2).drag_to(cards.nth(0))  # drag Third onto First's place
    assert titles(page) == ["Third", "First", "Second"]
    handle = cards.nth(2).locator(".resize-handle").bounding_box()
    cell = cards.nth(2).bounding_box()
    page.mouse.move(handle["x"] + 4, handle["y"] + 4)
    page.mouse.down()
    page.mouse.move(cell["x"] + cell["width"] * 2, handle["y"] + 4, steps=5)
    page.mouse.up()
    expect(page.locator("#status")).to_contain_text("Second: 2 columns wide, 1 row high.")

    page.click("#save")
    expect(page.locator("#status")).to_have_text("Saved.")
    saved = in_thread(lambda: list(sales_board.tiles.values_list("title", "width", "height")))
    assert saved == [("Third", 1, 1), ("First", 3, 2), ("Second", 2, 1)]


def test_leaving_with_unsaved_changes_asks_first(stack, sales_board, page):
    base_url, _ = stack
    log_in(page, base_url, "sally", path="/designer/boards/sales-floor/")
    expect(page.locator("#unsaved")).to_be_hidden()
    page.locator("#board-name").press("End")
    page.locator("#board-name").press_sequentially(" east")
    expect(page.locator("#unsaved")).to_be_visible()
    asked = []
    page.on("dialog", lambda dialog: (asked.append(dialog.type), dialog.dismiss()))
    page.get_by_role("link", name="All boards").click()
    page.wait_for_timeout(500)  # a navigation would have begun by now
    assert asked == ["beforeunload"]
    expect(page).to_have_url(re.compile(r"/designer/boards/sales-floor/$"))  # stayed

    page.click("#save")
    expect(page.locator("#unsaved")).to_be_hidden()
    page.get_by_role("link", name="All boards").click()
    expect(page).to_have_url(re.compile(r"/designer/$"))
    assert asked == ["beforeunload"]  # not asked again once saved
    expect(page.get_by_role("link", name="Sales floor east")).to_be_visible()


def test_a_saved_category_the_server_no_longer_lists_is_flagged_not_dropped(
    stack, sales_board, page
):
    base_url, _ = stack
    in_thread(lambda: Tile.objects.filter(title="Third").update(category="Gone"))
    log_in(page, base_url, "sally", path="/designer/boards/sales-floor/")
    page.locator("#layout .designer-tile").nth(2).click()
    chosen = page.locator("#tile-category option:checked")
    expect(chosen).to_have_text("Gone (not listed by the server)")
    expect(chosen).to_have_attribute("data-unlisted", "1")
    expect(page.locator("#unlisted-note")).to_be_visible()
    page.click("#save")  # the server refuses it too, next to the field
    expect(page.locator("#error-tile-category")).to_contain_text("no category 'Gone'")
    page.select_option("#tile-category", "Sales")
    expect(page.locator("#unlisted-note")).to_be_hidden()
    page.click("#save")
    expect(page.locator("#status")).to_have_text("Saved.")


@pytest.fixture
def showcase_board(sales_board):
    """The three tiles dressed up: thresholds and a target, a breakdown and a trend with an
    hour of samples."""
    first, second, third = sales_board.tiles.all()
    Tile.objects.filter(pk=first.pk).update(
        title="Sales queue", warning=2, critical=5, targets={"Sales": {"warning": 3}}
    )
    Tile.objects.filter(pk=second.pk).update(title="Longest wait", format="mmss", warning=30)
    Tile.objects.filter(pk=third.pk).update(
        title="Queues", kind="breakdown", category="", categories=["Sales"]
    )
    Tile.objects.create(
        board=sales_board,
        order=4,
        kind="trend",
        title="Wait trend",
        width=3,
        trend_hours=1,
        metric=Metric.objects.get(metric_id="LWCGRP01"),
        category="Sales",
    )
    now = timezone.now()
    Sample.objects.bulk_create(
        Sample.of("LWCGRP01", "Sales", now - timedelta(minutes=m), (m % 17) * 4000)
        for m in range(1, 60)
    )
    return sales_board


def test_screenshots_of_the_designer(stack, showcase_board, browser, tmp_path):
    """Shoots designer.png: the editor of a board of a few tiles, with its live preview."""
    base_url, _ = stack
    page = browser.new_context(viewport={"width": 1600, "height": 1000}).new_page()
    log_in(page, base_url, "sally", path="/designer/boards/sales-floor/")
    page.locator("#layout .designer-tile").first.click()
    preview = page.frame_locator("#preview")
    tile = preview.locator('.tile[data-category="Sales"]').first
    expect(tile).to_have_attribute("data-state", "live", timeout=20_000)
    expect(preview.locator(".trend .trend-plot .main-svg").first).to_be_visible(timeout=15_000)
    folder = screenshot_folder(tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / "designer.png"), full_page=True)


@pytest.fixture
def vic(sales_board):
    """Vic views the Sales board: sees it, may change nothing."""
    user = get_user_model().objects.create_user("vic", password=PASSWORD)
    Team.objects.get(name="Sales").viewers.add(user)
    return user


def test_a_viewer_sees_the_board_but_no_way_to_change_it(stack, sales_board, vic, page):
    base_url, _ = stack
    log_in(page, base_url, "vic", path="/boards/sales-floor/")
    expect(page.locator(".tile").first).to_be_visible(timeout=20_000)
    expect(page.get_by_role("link", name="Edit this board")).to_have_count(0)
    expect(page.get_by_role("link", name="Send to a screen")).to_have_count(0)
    page.goto(base_url + "/")
    expect(page.get_by_role("link", name="Sales floor")).to_be_visible()
    for name in ("Board designer", "Playlists", "Screens", "Public widgets"):
        expect(page.get_by_role("link", name=name)).to_have_count(0)
    # Typed by hand, the designer's addresses refuse too.
    for path, status in (
        ("/designer/", 403),
        ("/designer/boards/sales-floor/", 403),
        ("/designer/playlists/", 403),
        ("/designer/boards/no-such-board/", 404),
        ("/screens/", 403),
        ("/screens/send/?board=sales-floor", 403),
        ("/widgets/", 403),
    ):
        response = page.goto(base_url + path)
        assert response.status == status, path
    page.goto(base_url + "/designer/")
    expect(page.get_by_role("heading", name="You may not see this page")).to_be_visible()
