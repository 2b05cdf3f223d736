"""Record frames written straight to the screens' sockets (dashboard/wire.py), under the web
server as shipped: in order, the same bytes for every screen, and never held up by one screen
that stopped reading."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket

import pytest
import redis.asyncio as aioredis
from websockets.asyncio.client import connect

from dashboard import boards
from metrics import fanout, live
from metrics.models import Board, Metric, Tile
from tests.conftest import (
    LOGS,
    count_record,
    free_port,
    stack_env,
    start_emulator,
    start_web,
    wait_for_port,
)

pytestmark = pytest.mark.django_db(transaction=True)

UPDATES = 200
PADDING = 50_000  # characters per record: 200 of them are 10 MB, more than any socket buffers


def display_link() -> str:
    metric = Metric.objects.create(
        metric_id="CIQGRP01", name="Calls in Queue", category_type="GROUP", categories=["Sales"]
    )
    board = Board.objects.create(name="Floor", slug="floor")
    Tile.objects.create(board=board, metric=metric, category="Sales")
    return boards.create_display_link("TV", board=board)[1]


def stuck_screen(port: int, path: str) -> socket.socket:
    """A screen whose browser hung: it opened its socket, then never read again (a receive
    buffer as small as the kernel allows, so the server's side fills first)."""
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    stuck.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: http://127.0.0.1:{port}\r\n\r\n"
        ).encode()
    )
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += stuck.recv(1)
    assert answer.startswith(b"HTTP/1.1 101"), answer
    return stuck


def closed_by_the_server(stuck: socket.socket) -> bool:
    """Reads what is left: True once the server closed (or reset) the connection."""
    stuck.settimeout(10)
    try:
        while stuck.recv(1 << 20):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


async def read(tv, counts: list[int]) -> None:
    """A screen that reads everything: the counts of the records it was sent, in order."""
    while len(counts) < UPDATES:
        message = json.loads(await tv.recv())
        if message["type"] == "records":
            counts += [record["value"]["count"] for record in message["records"]]


def test_a_screen_that_stops_reading_is_cut_off_while_the_others_keep_up(
    processes, redis_db, settings
):
    emulator = start_emulator(processes, "--scenario", "static")
    port = free_port()
    wait_for_port(port, start_web(processes, stack_env(emulator, settings.REDIS_URL), port), "web")
    path = f"/ws/display/{display_link()}/"

    async def scenario() -> tuple[list[int], socket.socket]:
        origin = f"http://127.0.0.1:{port}"
        tv = await connect(
            f"ws://127.0.0.1:{port}{path}", origin=origin, max_size=None, max_queue=None
        )
        assert json.loads(await tv.recv())["type"] == "snapshot"
        stuck = stuck_screen(port, path)
        await asyncio.sleep(0.5)  # its snapshot is out: from now on it holds the records
        counts: list[int] = []
        reading = asyncio.create_task(read(tv, counts))
        publisher = aioredis.from_url(settings.REDIS_URL)
        channel = fanout.topic(live.metric_group("CIQGRP01"))
        for n in range(1, UPDATES + 1):
            record = {
                **count_record("CIQGRP01", "Sales", n, 1000 + n),
                "error": "x" * PADDING,
                "seq": n,
                "rseq": n,
            }
            await publisher.publish(channel, json.dumps([record]))
            await asyncio.sleep(0.005)  # a busy site, not a flood: the reading TV keeps up
        await publisher.aclose()
        await asyncio.wait_for(reading, timeout=30)
        await tv.close()
        return counts, stuck

    counts, stuck = asyncio.run(scenario())
    assert counts == list(range(1, UPDATES + 1))  # every one, in order, to the screen that reads
    assert closed_by_the_server(stuck)
    assert "closed a screen's socket that stopped reading" in (LOGS / "web.log").read_text()
