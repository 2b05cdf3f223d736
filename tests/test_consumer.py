"""The browser websocket through the real ASGI stack (session auth, origin check)."""

import json

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from dashboard import boards
from dashboard.asgi import application
from metrics import fanout, ingest, live
from metrics.models import Board, Metric, Tile
from tests.conftest import count_record

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1")


def session_headers() -> list[tuple[bytes, bytes]]:
    user = get_user_model().objects.create_user(
        "staff_user", password="a-long-password-1", is_staff=True
    )
    client = Client()
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    return [ORIGIN, (b"cookie", cookie.encode())]


async def connect(headers) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, "/ws/boards/all/", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def test_it_sends_a_snapshot_then_updates(redis_db):
    from asgiref.sync import sync_to_async

    headers = await sync_to_async(session_headers)()
    await ingest.store_and_publish([count_record("CIQGRP01", "Sales", 3, 1000)])
    communicator = await connect(headers)

    snapshot = await communicator.receive_json_from(timeout=5)
    assert snapshot["type"] == "snapshot"
    assert snapshot["seq"] == 1
    assert [t["value"]["count"] for t in snapshot["records"]] == [3]
    assert isinstance(snapshot["server_time_ms"], int)

    asked = await live.redis_time_us()  # a poll is sent; while it is in flight...
    await ingest.store_and_publish([count_record("CIQGRP01", "Sales", 4, 2000)])  # a frame
    update = await communicator.receive_json_from(timeout=5)
    assert update["type"] == "records"
    assert [(t["seq"], t["value"]["count"]) for t in update["records"]] == [(2, 4)]

    # The poll's answer, older than the frame, and a repeat are neither stored nor sent.
    older = count_record("CIQGRP01", "Sales", 9, 1500)
    assert await ingest.store_and_publish([older], asked_us=asked) == []
    assert await ingest.store_and_publish([count_record("CIQGRP01", "Sales", 4, 2000)]) == []
    assert await communicator.receive_nothing(timeout=0.3)

    await communicator.send_json_to({"type": "snapshot"})
    again = await communicator.receive_json_from(timeout=5)
    assert again["type"] == "snapshot" and again["seq"] == 2
    await communicator.disconnect()


async def kill_tile_subscription() -> None:
    """Closes this process's tile subscription from the Redis side (CLIENT KILL)."""
    redis = live.get_redis()
    name = fanout.client_name()
    [client_id] = [c["id"] for c in await redis.client_list() if c["name"] == name]
    await redis.execute_command("CLIENT", "KILL", "ID", client_id)


async def test_a_lost_tile_subscription_is_resumed_and_the_socket_resynced(redis_db):
    """Redis drops the web process's one tile subscription (here: killed by an operator):
    updates published meanwhile are lost, so the socket gets a fresh snapshot, then updates."""
    from asgiref.sync import sync_to_async

    await ingest.store_and_publish([count_record("CIQGRP01", "Sales", 3, 1000)])
    communicator = await connect(await sync_to_async(session_headers)())
    assert (await communicator.receive_json_from(timeout=5))["type"] == "snapshot"

    await kill_tile_subscription()
    await ingest.store_and_publish([count_record("CIQGRP01", "Sales", 5, 3000)])
    # What the browser shows, message by message, until a resync snapshot has come and the
    # update is shown (it was either lost and is in the snapshot, or came after it).
    shown, resynced = 3, False
    while not (resynced and shown == 5):
        message = await communicator.receive_json_from(timeout=10)
        resynced = resynced or message["type"] == "snapshot"
        [tile] = message["records"]
        shown = tile["value"]["count"]

    await ingest.store_and_publish([count_record("CIQGRP01", "Sales", 6, 4000)])
    update = await communicator.receive_json_from(timeout=10)
    assert [t["value"]["count"] for t in update["records"]] == [6]
    await communicator.disconnect()


async def test_tiles_of_another_redis_database_never_arrive(redis_db, settings):
    """Pub/sub is server-wide: another site on the same Redis server, another database, must
    not show up on this site's boards."""
    from asgiref.sync import sync_to_async

    communicator = await connect(await sync_to_async(session_headers)())
    await communicator.receive_json_from(timeout=5)
    base, own = settings.REDIS_URL.rsplit("/", 1)
    elsewhere = f"{base}/{3 if own != '3' else 4}"  # any database but the test's own
    foreign = [{**count_record("CIQGRP01", "Sales", 999, 5000), "seq": 1, "rseq": 1}]
    await live.get_redis().publish(fanout.topic(live.ALL_GROUP, elsewhere), json.dumps(foreign))
    assert await communicator.receive_nothing(timeout=0.5)

    await ingest.store_and_publish([count_record("CIQGRP01", "Sales", 4, 6000)])
    update = await communicator.receive_json_from(timeout=5)
    assert [t["value"]["count"] for t in update["records"]] == [4]
    await communicator.disconnect()


def display_of(*metric_ids: str) -> str:
    """A display link to a board with a Sales tile of each metric."""
    board = Board.objects.create(name="-".join(metric_ids), slug="-".join(metric_ids).lower())
    for order, metric_id in enumerate(metric_ids):
        metric, _ = Metric.objects.get_or_create(
            metric_id=metric_id, defaults={"name": metric_id, "categories": ["Sales"]}
        )
        Tile.objects.create(board=board, order=order, metric=metric, category="Sales")
    return boards.create_display_link("TV", board=board)[1]


async def test_tiles_that_change_together_reach_each_board_in_one_frame(redis_db):
    """Two metrics' updates in Redis before the web process reads either: a board showing both
    gets them in one frame, in order; a board showing one gets only its own."""
    from asgiref.sync import sync_to_async

    both = await sync_to_async(display_of)("CIQGRP01", "AVLGRP01")
    one = await sync_to_async(display_of)("AVLGRP01")
    tvs = []
    for token in (both, one):
        tv = WebsocketCommunicator(application, f"/ws/display/{token}/", headers=[ORIGIN])
        assert (await tv.connect())[0]
        assert (await tv.receive_json_from(timeout=5))["type"] == "snapshot"
        tvs.append(tv)

    updates = [
        [{**count_record("CIQGRP01", "Sales", 7, 5000), "seq": 1, "rseq": 1}],
        [{**count_record("AVLGRP01", "Sales", 2, 5000), "seq": 2, "rseq": 1}],
    ]
    with redis_db.pipeline(transaction=False) as pipe:  # blocks this loop: the hub reads later
        for update in updates:
            group = live.metric_group(update[0]["metric_id"])
            pipe.publish(fanout.topic(group), json.dumps(update))
        pipe.execute()

    shown = []
    for tv in tvs:
        message = await tv.receive_json_from(timeout=5)
        shown.append([(t["metric_id"], t["value"]["count"]) for t in message["records"]])
        assert await tv.receive_nothing(timeout=0.3)
        await tv.disconnect()
    assert shown == [[("CIQGRP01", 7), ("AVLGRP01", 2)], [("AVLGRP01", 2)]]


async def test_status_changes_are_pushed(redis_db):
    from asgiref.sync import sync_to_async

    communicator = await connect(await sync_to_async(session_headers)())
    await communicator.receive_json_from(timeout=5)
    await ingest.report_subscription(False, "websocket lost after 3s: ConnectionClosedError")
    message = await communicator.receive_json_from(timeout=5)
    assert message["type"] == "status"
    assert message["status"]["ws_error"].startswith("websocket lost")
    await communicator.disconnect()


async def test_an_anonymous_visitor_is_refused(redis_db):
    communicator = WebsocketCommunicator(application, "/ws/boards/all/", headers=[ORIGIN])
    connected, _ = await communicator.connect()
    assert not connected


async def test_a_foreign_origin_is_refused(redis_db):
    from asgiref.sync import sync_to_async

    headers = [h for h in await sync_to_async(session_headers)() if h[0] != b"origin"]
    communicator = WebsocketCommunicator(
        application, "/ws/boards/all/", headers=[(b"origin", b"http://evil.example"), *headers]
    )
    connected, _ = await communicator.connect()
    assert not connected


async def test_an_oversized_message_closes_the_socket(redis_db):
    from asgiref.sync import sync_to_async

    communicator = await connect(await sync_to_async(session_headers)())
    await communicator.receive_json_from(timeout=5)
    await communicator.send_to(text_data="x" * 5000)
    closed = await communicator.receive_output(timeout=5)
    assert closed["type"] == "websocket.close"


def test_the_group_name_is_valid():
    assert live.ALL_GROUP.replace(".", "").isalnum()


async def test_hundreds_of_screens_closing_at_once_leave_no_group_behind(redis_db):
    """A web restart or a switched-off TV wall: more sockets join and leave the channel layer's
    groups at once than its Redis pool has connections (100, and it fails rather than waits).
    Every socket must still get in, and leave its groups when it goes."""
    import asyncio

    from asgiref.sync import sync_to_async

    token = await sync_to_async(display_of)("CIQGRP01")
    tvs = [
        WebsocketCommunicator(application, f"/ws/display/{token}/", headers=[ORIGIN])
        for _ in range(150)
    ]
    connected = await asyncio.gather(*(tv.connect(timeout=20) for tv in tvs))
    assert all(ok for ok, _ in connected)
    await asyncio.gather(*(tv.disconnect(timeout=20) for tv in tvs))
    groups = [k for k in redis_db.keys("acrdash*") if redis_db.type(k) == "zset"]
    assert sum(redis_db.zcard(k) for k in groups) == 0


class Screen:
    """A socket as metrics.fanout sees it: a filter, and the frames it was given."""

    def __init__(self, narrowing) -> None:
        self.narrowing = narrowing
        self.frames: list[str] = []
        self.events: list[dict] = []

    def push(self, update) -> None:
        self.frames.append(update.text)

    def shown_status(self, status):
        return status

    async def handle(self, event) -> None:
        self.events.append(event)

    async def resync(self) -> None:
        pass


def seat(hub, topics, *screens) -> None:
    """Screens joined to the hub's audiences as join() would leave them, without Redis."""
    for screen in screens:
        hub.audience_of[screen] = (topics, screen.narrowing)
        hub.audiences.setdefault((topics, screen.narrowing), set()).add(screen)


class BrokenScreen(Screen):
    """A socket that closed under the fan-out."""

    def push(self, update) -> None:
        raise ConnectionResetError("gone")


async def test_a_narrowed_frame_is_built_once_for_every_socket_with_that_filter():
    """A thousand TVs on one board: each burst is narrowed to the board's tiles once, and every
    TV is given that same frame; a socket whose filter keeps nothing is given nothing."""
    from dashboard.boards import Shown

    def shows(*records):
        return Shown(records=frozenset(records), whole=frozenset())

    hub = fanout.Hub(redis=None)
    tvs = [Screen(shows(("CIQ", "Sales"))) for _ in range(3)]
    staff, billing = Screen(None), Screen(shows(("CIQ", "Billing")))
    topics = frozenset({fanout.topic(live.metric_group("CIQ"))})
    seat(hub, topics, *tvs, staff, billing)
    records = [
        {**count_record("CIQ", category, count, 1000), "seq": seq, "rseq": 1}
        for seq, (category, count) in enumerate((("Sales", 3), ("Support", 7)), 1)
    ]
    await hub._fan_out([{"channel": next(iter(topics)), "data": json.dumps(records)}])

    [frame] = tvs[0].frames
    assert all(tv.frames[0] is frame for tv in tvs)  # one object, built once
    assert [r["category"] for r in json.loads(frame)["records"]] == ["Sales"]
    assert [r["category"] for r in json.loads(staff.frames[0])["records"]] == ["Sales", "Support"]
    assert billing.frames == []


async def test_a_broken_socket_is_dropped_and_the_others_still_get_every_frame():
    """Records, the status and a catalog change in one burst: a socket that fails is left out
    of the hub, the others are each told all three."""
    hub = fanout.Hub(redis=None)
    good, broken, other = Screen(None), BrokenScreen(None), Screen(None)
    topics = frozenset({fanout.topic(live.metric_group("CIQ"))})
    seat(hub, topics, good, broken, other)
    records = [{**count_record("CIQ", "Sales", 3, 1000), "seq": 1, "rseq": 1}]
    status = {"type": "status.update", "status": {"ws_connected": True}}
    await hub._fan_out(
        [
            {"channel": next(iter(topics)), "data": json.dumps(records)},
            {"channel": fanout.topic(fanout.STATUS), "data": json.dumps(status)},
            {"channel": fanout.topic(fanout.STATUS), "data": '{"type": "catalog.update"}'},
        ]
    )
    for screen in (good, other):
        assert sorted(json.loads(f)["type"] for f in screen.frames) == [
            "catalog",
            "records",
            "status",
        ]
    assert broken not in hub.audience_of and all(broken not in m for m in hub.audiences.values())


async def test_a_broken_socket_does_not_stop_a_catalog_change():
    hub = fanout.Hub(redis=None)
    first, broken, last = Screen(None), BrokenScreen(None), Screen(None)
    seat(hub, frozenset(), first, broken, last)
    catalog = {"channel": fanout.topic(fanout.STATUS), "data": '{"type": "catalog.update"}'}
    await hub._fan_out([catalog])
    assert [json.loads(f)["type"] for s in (first, last) for f in s.frames] == ["catalog"] * 2
    assert broken not in hub.audience_of


async def test_a_socket_that_joins_twice_hears_the_events_of_both_calls(redis_db, settings):
    """A socket joins its records' groups, then more (with their event groups): the events of
    the first call's groups still reach it, and leaving forgets them all."""
    import asyncio
    import contextlib

    import redis.asyncio as aioredis

    redis = aioredis.from_url(settings.REDIS_URL, decode_responses=True)
    hub = fanout.Hub(redis)
    screen = Screen(None)
    try:
        await hub.join(screen, [live.ALL_GROUP], ["user.7"])
        await hub.join(screen, [live.metric_group("CIQ")], ["board.9"])
        await fanout.publish_event(redis, "user.7", {"type": "access.changed"})
        await fanout.publish_event(redis, "board.9", {"type": "board.changed"})
        for _ in range(100):
            if len(screen.events) == 2:
                break
            await asyncio.sleep(0.05)
        assert sorted(e["type"] for e in screen.events) == ["access.changed", "board.changed"]
        await hub.leave(screen)
        assert hub.hearing == {} and hub.heard_by == {} and hub.audiences == {}
    finally:
        hub.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await hub.reader
        await redis.aclose()
