"""WEB_SERVER=daphne: the same app under Daphne, started as every deployment starts the web process
(`python -m dashboard.web`), with the rest of the system real. A browser and a websocket client
see live values change, as under uvicorn."""

import json

import pytest
from playwright.sync_api import expect
from websockets.sync.client import connect

from dashboard import boards
from metrics.models import Board, Metric, Tile
from tests.conftest import LOGS, log_in, start_stack, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def set_queue(emulator, category: str, count: int) -> None:
    emulator.control(
        "values",
        {
            "metricId": "CIQGRP01",
            "categoryValue": category,
            "value": {"type": "COUNT", "count": count},
        },
    )


def web_log() -> list[dict]:
    """The web process's lines: every one a JSON object (LOG_FORMAT=json holds under Daphne)."""
    return [json.loads(line) for line in (LOGS / "web.log").read_text().splitlines()]


@pytest.fixture
def daphne_stack(processes, redis_db, settings):
    base_url, emulator = start_stack(
        processes, settings.REDIS_URL, WEB_SERVER="daphne", LOG_FORMAT="json", WEB_ACCESS_LOG="1"
    )
    # Served by Daphne indeed, not uvicorn.
    lines = web_log()
    assert any(line["logger"] == "daphne.server" for line in lines)
    assert not [line for line in lines if line["logger"].startswith("uvicorn")]
    return base_url, emulator


@pytest.fixture
def tv_link(db):
    queue, _ = Metric.objects.update_or_create(
        metric_id="CIQGRP01",
        defaults={"name": "Calls in Queue", "category_type": "GROUP", "categories": ["Sales"]},
    )
    board = Board.objects.create(name="Floor", slug="floor")
    Tile.objects.create(board=board, order=1, metric=queue, category="Sales")
    _, token = boards.create_display_link("TV by the door", board=board)
    return token


def test_a_board_served_by_daphne_shows_live_values_change(daphne_stack, staff_user, page):
    base_url, emulator = daphne_stack
    log_in(page, base_url)
    page.get_by_role("link", name="All metrics").click()
    queue = page.locator('[data-metric-id="CIQGRP01"][data-category="Sales"]')
    expect(queue).to_have_attribute("data-state", "live", timeout=20_000)
    expect(queue.locator(".tile-value")).to_have_text("3")

    set_queue(emulator, "Sales", 17)
    expect(queue).to_have_attribute("data-value", "17", timeout=10_000)
    expect(queue.locator(".tile-value")).to_have_text("17")
    expect(page.locator("#connection")).to_have_attribute("data-state", "connected")


def records_of(message: dict) -> dict[tuple[str, str], dict]:
    return {(r["metric_id"], r["category"]): r for r in message.get("records", [])}


def test_a_websocket_served_by_daphne_gets_a_snapshot_then_live_updates(daphne_stack, tv_link):
    base_url, emulator = daphne_stack
    ws_url = base_url.replace("http://", "ws://") + f"/ws/display/{tv_link}/"
    sales = ("CIQGRP01", "Sales")
    # The emulator initializes its metrics for a second first: a TV reconnects until it has
    # a live value.
    wait_until(
        lambda: records_of(snapshot(ws_url, base_url)).get(sales, {}).get("state") == "live",
        timeout=20,
        what="a snapshot holding the Sales queue live",
    )
    assert records_of(snapshot(ws_url, base_url))[sales]["value"]["count"] == 3
    with connect(ws_url, origin=base_url) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "snapshot"
        set_queue(emulator, "Sales", 23)
        while True:  # status and other messages may come first
            message = json.loads(ws.recv(timeout=10))
            record = records_of(message).get(sales)
            if message["type"] == "records" and record:
                break
    assert record["value"]["count"] == 23 and record["state"] == "live"
    assert message["server_time_ms"] > 0 and record["seq"] > 0
    # Daphne's access lines went through logging: JSON, and the TV's token redacted.
    access = [line["message"] for line in web_log() if line["logger"] == "daphne.access"]
    assert any("WSCONNECT /ws/display/***/" in text for text in access)
    assert tv_link not in (LOGS / "web.log").read_text()


def snapshot(ws_url: str, origin: str) -> dict:
    with connect(ws_url, origin=origin) as ws:
        message = json.loads(ws.recv(timeout=10))
    assert message["type"] == "snapshot"
    return message
