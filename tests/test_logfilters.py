"""Display tokens (and any auth_token= value) never reach a log line: the redacting filter on
the root handler, and whole sessions of every process with a TV reconnecting."""

import logging
import subprocess
import sys

import httpx
import pytest
from playwright.sync_api import expect
from websockets.sync.client import connect

from dashboard import boards
from dashboard.logfilters import RedactTokens
from metrics.models import Board, Metric, Tile
from tests.conftest import (
    LOGS,
    daphne_command,
    database_url,
    free_port,
    stack_env,
    start_stack,
    start_web,
    wait_for_port,
    wait_until,
)

TOKEN = "Zm9vYmFyLWEtZGlzcGxheS10b2tlbi1mb3ItdGVzdHM1"


@pytest.mark.parametrize(
    ("msg", "args", "expected"),
    [
        (
            '%s - "%s %s HTTP/%s" %d',  # uvicorn's access line
            ("127.0.0.1:5000", "GET", f"/display/{TOKEN}/", "1.1", 200),
            '127.0.0.1:5000 - "GET /display/***/ HTTP/1.1" 200',
        ),
        (
            '%s - "WebSocket %s" [accepted]',  # uvicorn's websocket line, access log or not
            ("127.0.0.1:5000", f"/ws/display/{TOKEN}/"),
            '127.0.0.1:5000 - "WebSocket /ws/display/***/" [accepted]',
        ),
        (
            "Not Found: %s",  # django.request
            (f"/display/{TOKEN}/tiles/3/trend.json",),
            "Not Found: /display/***/tiles/3/trend.json",
        ),
        (
            f"GET /display/{TOKEN}?x=1 and wss://acr/sub?id=A&auth_token=s3cret-key&id=B",
            (),
            "GET /display/***?x=1 and wss://acr/sub?id=A&auth_token=***&id=B",
        ),
        ("%(path)s opened", ({"path": f"/display/{TOKEN}/"},), "/display/***/ opened"),
        ("nothing secret: %s %d", ("/boards/floor/", 3), "nothing secret: /boards/floor/ 3"),
    ],
)
def test_tokens_are_redacted_in_messages_and_args(msg, args, expected):
    record = logging.LogRecord("any", logging.INFO, __file__, 1, msg, args, None)
    assert RedactTokens().filter(record)
    assert record.getMessage() == expected


def test_a_traceback_holding_a_token_is_redacted():
    try:
        raise ValueError(f"no such link: /display/{TOKEN}/")
    except ValueError:
        record = logging.LogRecord("any", logging.ERROR, __file__, 1, "boom", (), None)
        record.exc_info = sys.exc_info()
    RedactTokens().filter(record)
    line = logging.Formatter().format(record)
    assert TOKEN not in line and "/display/***/" in line


@pytest.fixture
def tv_link(db):
    """A display link for a board with a value tile and a trend tile (the trend asks the server
    for its data by the link's own URL)."""
    queue, _ = Metric.objects.update_or_create(
        metric_id="CIQGRP01",
        defaults={"name": "Calls in Queue", "category_type": "GROUP", "categories": ["Sales"]},
    )
    board = Board.objects.create(name="Floor", slug="floor")
    Tile.objects.create(board=board, order=1, metric=queue, category="Sales")
    Tile.objects.create(board=board, order=2, metric=queue, category="Sales", kind="trend")
    _, token = boards.create_display_link("TV by the door", board=board)
    return token


def lines_holding(token: str, names: list[str]) -> list[str]:
    return [
        f"{name}: {line}"
        for name in names
        for line in (LOGS / f"{name}.log").read_text(errors="replace").splitlines()
        if token in line
    ]


@pytest.fixture
def access_logged_stack(processes, redis_db, settings):
    """The whole system, its web server writing its access log (WEB_ACCESS_LOG=1: off by
    default), where display tokens would otherwise show."""
    return start_stack(processes, settings.REDIS_URL, WEB_ACCESS_LOG="1")


@pytest.mark.django_db(transaction=True)
def test_no_log_line_of_a_session_with_a_tv_reconnecting_holds_its_token(
    tv_link, access_logged_stack, processes, settings, browser
):
    base_url, emulator = access_logged_stack
    port = int(base_url.rsplit(":", 1)[1])
    connected = []  # the TV's sockets that got a frame (attempts while the server is down get none)
    tv = browser.new_page()
    tv.on(
        "websocket",
        lambda ws: ws.on("framereceived", lambda _: ws in connected or connected.append(ws)),
    )
    tv.goto(f"{base_url}/display/{tv_link}/")
    tile = tv.locator('.tile[data-metric-id="CIQGRP01"][data-category="Sales"]').first
    expect(tile).to_have_attribute("data-state", "live", timeout=20_000)
    expect(tv.locator(".trend .trend-plot .main-svg").first).to_be_visible(timeout=15_000)

    # The TV reconnects after the web process restarts, and once more after a reload.
    web = processes.named("web")
    web.terminate()
    web.wait()
    restarted = start_web(
        processes, stack_env(emulator, settings.REDIS_URL), port, WEB_ACCESS_LOG="1"
    )
    wait_for_port(port, restarted, "web")
    # (Playwright delivers its events only inside its own calls: wait in one.)
    reconnected = lambda: tv.wait_for_timeout(50) or len(connected) >= 2  # noqa: E731
    wait_until(reconnected, timeout=20, what="the TV reconnected")
    tv.reload()
    expect(tile).to_have_attribute("data-state", "live", timeout=20_000)

    names = list(dict.fromkeys(name for name, _ in processes.running))
    processes.stop_all()  # every line written and flushed
    assert not lines_holding(tv_link, names)
    web_log = (LOGS / "web.log").read_text()
    assert "GET /display/***/ " in web_log and '"WebSocket /ws/display/***/"' in web_log


@pytest.mark.django_db(transaction=True)
def test_daphne_logs_no_display_token_either(tv_link, processes, redis_db, settings):
    """Daphne writes its access log itself, to stdout rather than through logging: it is sent
    through logging (and so through the filter) when the app loads."""
    port = free_port()
    env = {
        "DJANGO_SETTINGS_MODULE": "dashboard.test_settings",
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "WEB_ACCESS_LOG": "1",
    }
    daphne = processes.start("daphne", daphne_command(port), env)
    wait_for_port(port, daphne, "daphne")
    base_url = f"http://127.0.0.1:{port}"
    assert httpx.get(f"{base_url}/display/{tv_link}/", timeout=10).status_code == 200
    for _ in range(2):  # a TV reconnecting
        with connect(f"ws://127.0.0.1:{port}/ws/display/{tv_link}/", origin=base_url) as ws:
            assert '"snapshot"' in ws.recv(timeout=10)

    daphne.terminate()
    try:
        daphne.wait(timeout=10)
    except subprocess.TimeoutExpired:
        daphne.kill()
    assert not lines_holding(tv_link, ["daphne"])
    log = (LOGS / "daphne.log").read_text()
    assert '"GET /display/***/"' in log and "WSCONNECT /ws/display/***/" in log
