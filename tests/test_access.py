"""Who sees what, with named users: an admin, the Sales supervisor, the Support supervisor, a
user with no team, and an anonymous visitor. Every page, JSON endpoint and websocket refuses
what the user may not see, including by guessing ids and slugs."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from dashboard.asgi import application
from metrics import ingest
from metrics.acr import clock
from metrics.models import Board, Metric, Team, Tile
from tests.conftest import count_record

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1")


@pytest.fixture
def floor():
    """Two teams, a board each, and their supervisors."""
    users = get_user_model().objects
    people = {
        "admin": users.create_user("admin", password="pw-admin-long-1", is_staff=True),
        "sales": users.create_user("sally", password="pw-sales-long-1"),
        "support": users.create_user("sam", password="pw-support-long-1"),
        "nobody": users.create_user("nora", password="pw-nobody-long-1"),
    }
    queue = Metric.objects.create(
        metric_id="CIQ",
        name="Calls in Queue",
        category_type="GROUP",
        categories=["Sales", "Support"],
    )
    boards = {}
    for name, user in (("Sales", people["sales"]), ("Support", people["support"])):
        board = Board.objects.create(name=name, slug=name.lower())
        tile = Tile.objects.create(board=board, metric=queue, category=name, kind="trend")
        team = Team.objects.create(name=name, queues=[name])
        team.supervisors.add(user)
        team.boards.add(board)
        boards[name] = (board, tile)
    return people, boards


def client_for(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def test_pages_and_json_refuse_other_teams(floor, redis_db):
    people, boards = floor
    sales, support = client_for(people["sales"]), client_for(people["support"])
    _, support_tile = boards["Support"]

    assert sales.get("/boards/sales/").status_code == 200
    assert sales.get("/boards/support/").status_code == 404  # not even its existence
    assert sales.get(f"/boards/support/tiles/{support_tile.pk}/trend.json").status_code == 404
    assert sales.get(f"/boards/sales/tiles/{support_tile.pk}/trend.json").status_code == 404
    assert support.get("/boards/support/").status_code == 200
    home = sales.get("/").content.decode()
    assert "/boards/sales/" in home and "/boards/support/" not in home
    assert sales.get("/admin/metrics/board/").status_code == 302  # not staff
    assert client_for(people["nobody"]).get("/boards/all/").status_code == 403
    assert client_for(people["admin"]).get("/boards/support/").status_code == 200
    anonymous = client_for(None)
    for path in (
        "/",
        "/boards/all/",
        "/boards/sales/",
        f"/boards/sales/tiles/{support_tile.pk}/trend.json",
    ):
        response = anonymous.get(path)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


async def connect(user, path):
    def cookie():
        client = client_for(user)
        return f"sessionid={client.cookies['sessionid'].value}".encode()

    headers = [ORIGIN] + ([(b"cookie", await sync_to_async(cookie)())] if user else [])
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect()
    return communicator if connected else None


async def test_websockets_refuse_other_teams_and_scope_live_data(floor, redis_db):
    from metrics import live
    from metrics.acr.values import CatalogMetric

    people, _ = floor
    assert await connect(people["sales"], "/ws/boards/support/") is None
    assert await connect(None, "/ws/boards/sales/") is None
    assert await connect(None, "/ws/boards/all/") is None
    assert await connect(people["nobody"], "/ws/boards/all/") is None
    assert await connect(people["sales"], "/ws/boards/no-such-board/") is None

    await live.store_catalog(
        [CatalogMetric("CIQ", "Calls in Queue", "GROUP", ("Sales", "Support"))]
    )
    now = clock.now_ms()
    await ingest.store_and_publish(
        [count_record("CIQ", "Sales", 1, now), count_record("CIQ", "Support", 7, now)]
    )
    sales = await connect(people["sales"], "/ws/boards/all/")
    snapshot = await sales.receive_json_from(timeout=5)
    assert [m["categories"] for m in snapshot["metrics"]] == [["Sales"]]
    assert [(t["category"], t["value"]["count"]) for t in snapshot["records"]] == [("Sales", 1)]

    await ingest.store_and_publish([count_record("CIQ", "Support", 8, now + 1)])
    assert await sales.receive_nothing(timeout=0.5)  # another team's update never arrives
    await ingest.store_and_publish([count_record("CIQ", "Sales", 2, now + 1)])
    update = await sales.receive_json_from(timeout=5)
    assert [t["category"] for t in update["records"]] == ["Sales"]
    # Its sequence follows the snapshot's with no gap: the page sees nothing missing (with a
    # sequence per metric, Support's update made every Sales supervisor ask for a snapshot).
    assert update["records"][0]["rseq"] == snapshot["records"][0]["rseq"] + 1
    await sales.disconnect()

    admin = await connect(people["admin"], "/ws/boards/all/")
    snapshot = await admin.receive_json_from(timeout=5)
    assert sorted(t["category"] for t in snapshot["records"]) == ["Sales", "Support"]
    await admin.disconnect()


# --- a board or display socket sees what its tiles show, nothing more -------------------------


def keys(records) -> set[tuple[str, str]]:
    return {(r["metric_id"], r["category"]) for r in records}


@pytest.fixture
def sales_viewer(floor):
    """A Sales viewer; the Sales board also has a breakdown of the wait per queue, and the
    catalog an agent metric no board shows."""
    people, boards = floor
    viewer = get_user_model().objects.create_user("vic", password="pw-viewer-long-1")
    Team.objects.get(name="Sales").viewers.add(viewer)
    wait = Metric.objects.create(
        metric_id="AWT", name="Wait", category_type="GROUP", categories=["Sales", "Support"]
    )
    Tile.objects.create(board=boards["Sales"][0], metric=wait, kind="breakdown")
    return viewer


async def publish_the_floor(at: int) -> None:
    from metrics import live
    from metrics.acr.values import CatalogMetric

    await live.store_catalog(
        [
            CatalogMetric("CIQ", "Calls in Queue", "GROUP", ("Sales", "Support")),
            CatalogMetric("AWT", "Wait", "GROUP", ("Sales", "Support")),
            CatalogMetric("AGT", "Talking", "AGENT", ("Ana(201)",)),
        ]
    )
    await ingest.store_and_publish(
        [
            count_record("CIQ", "Sales", 1, at),
            count_record("CIQ", "Support", 7, at),
            count_record("AWT", "Sales", 3, at),
            count_record("AWT", "Support", 4, at),
            count_record("AGT", "Ana(201)", 2, at),
        ]
    )


async def test_a_viewers_socket_gets_only_the_categories_its_boards_tiles_show(
    floor, sales_viewer, redis_db
):
    """The Sales board shows Sales' queue (a trend tile) and the wait of every queue (a
    breakdown): its viewer, and a TV with its display link, are never sent Support's queue
    nor any agent, in the snapshot or any frame after it."""
    from dashboard import boards

    now = clock.now_ms()
    await publish_the_floor(now)
    board, _ = floor[1]["Sales"]
    _, token = await sync_to_async(boards.create_display_link)("TV", board)
    viewer = await connect(sales_viewer, "/ws/boards/sales/")
    tv = await connect(None, f"/ws/display/{token}/")
    shown = {("CIQ", "Sales"), ("AWT", "Sales"), ("AWT", "Support")}
    for socket in (viewer, tv):
        snapshot = await socket.receive_json_from(timeout=5)
        assert keys(snapshot["records"]) == shown
        categories = {m["metric_id"]: m["categories"] for m in snapshot["metrics"]}
        assert categories == {"CIQ": ["Sales"], "AWT": ["Sales", "Support"]}
        assert snapshot["agents"] == {}

    await ingest.store_and_publish(
        [count_record("CIQ", "Support", 8, now + 1), count_record("AGT", "Ana(201)", 3, now + 1)]
    )
    for socket in (viewer, tv):
        assert await socket.receive_nothing(timeout=0.5)
    await ingest.store_and_publish(
        [count_record("CIQ", "Support", 9, now + 2), count_record("CIQ", "Sales", 5, now + 2)]
    )
    for socket in (viewer, tv):
        update = await socket.receive_json_from(timeout=5)
        assert [(r["category"], r["value"]["count"]) for r in update["records"]] == [("Sales", 5)]
        await socket.disconnect()


# --- a socket keeps its access only while its user, team, board or link grants it ------------


async def close_code(socket, within: float = 1.0) -> int | None:
    """The code the server closed `socket` with within `within` seconds (None: still open)."""
    import asyncio

    deadline = asyncio.get_running_loop().time() + within
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        try:
            message = await socket.receive_output(timeout=left)
        except TimeoutError:
            break
        if message["type"] == "websocket.close":
            return message.get("code")
    return None


def leave_by_removal(user, team, board):
    team.supervisors.remove(user)


def leave_by_clearing_the_users_teams(user, team, board):
    user.supervised_teams.clear()


def unshare_the_board(user, team, board):
    board.teams.remove(team)


def delete_the_team(user, team, board):
    team.delete()


@pytest.mark.parametrize(
    "leave",
    [leave_by_removal, leave_by_clearing_the_users_teams, unshare_the_board, delete_the_team],
)
async def test_a_socket_closes_within_a_second_of_its_user_leaving_the_team(floor, redis_db, leave):
    people, boards = floor
    board, _ = boards["Sales"]
    sockets = [
        await connect(people["sales"], "/ws/boards/sales/"),
        await connect(people["sales"], "/ws/boards/all/"),
    ]
    others = await connect(people["support"], "/ws/boards/support/")
    for socket in (*sockets, others):
        assert (await socket.receive_json_from(timeout=5))["type"] == "snapshot"

    team = await Team.objects.aget(name="Sales")
    await sync_to_async(leave)(people["sales"], team, board)
    if leave is unshare_the_board:
        await sockets.pop().disconnect()  # still the team's supervisor: All metrics stays
    for socket in sockets:
        assert await close_code(socket) == 4403
    assert await others.receive_nothing(timeout=0.3)  # another team's socket goes on
    await others.disconnect()


async def test_after_logout_the_sockets_of_that_session_close(floor, redis_db):
    def two_sessions():
        return client_for(people["sales"]), client_for(people["sales"])

    people, _ = floor
    sessions = await sync_to_async(two_sessions)()
    sockets = []
    for client in sessions:
        cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
        socket = WebsocketCommunicator(
            application, "/ws/boards/sales/", headers=[ORIGIN, (b"cookie", cookie)]
        )
        assert (await socket.connect())[0]
        assert (await socket.receive_json_from(timeout=5))["type"] == "snapshot"
        sockets.append(socket)

    logged_out = await sync_to_async(sessions[0].post)("/accounts/logout/")
    assert logged_out.status_code == 302
    assert await close_code(sockets[0]) == 4403
    assert await sockets[1].receive_nothing(timeout=0.3)  # the other browser stays signed in
    await sockets[1].disconnect()


async def test_a_deactivated_users_sockets_close(floor, redis_db):
    people, _ = floor
    board = await connect(people["sales"], "/ws/boards/sales/")
    alerts = await connect(people["sales"], "/ws/alerts/")
    assert (await board.receive_json_from(timeout=5))["type"] == "snapshot"

    people["sales"].is_active = False
    await people["sales"].asave()
    assert await close_code(board) == 4403
    assert await close_code(alerts) == 4403


def delete_the_link(link, other_board):
    link.delete()


def re_point_the_link(link, other_board):
    link.board = other_board
    link.save()


def delete_the_board(link, other_board):
    link.board.delete()


@pytest.mark.parametrize("change", [delete_the_link, re_point_the_link, delete_the_board])
async def test_a_display_socket_closes_when_its_link_is_deleted_or_re_pointed(
    floor, redis_db, change
):
    """A deleted link (or board) is refused from then on; a re-pointed one is told to reload,
    so that the TV shows its new board, and is closed whether it reloads or not."""
    from dashboard import boards as board_links

    _, boards = floor
    await publish_the_floor(clock.now_ms())
    link, token = await sync_to_async(board_links.create_display_link)("TV", boards["Sales"][0])
    tv = await connect(None, f"/ws/display/{token}/")
    assert (await tv.receive_json_from(timeout=5))["type"] == "snapshot"

    await sync_to_async(change)(link, boards["Support"][0])
    if change is re_point_the_link:
        assert (await tv.receive_json_from(timeout=1))["type"] == "reload"
        assert await close_code(tv) == 4205
        again = await connect(None, f"/ws/display/{token}/")
        snapshot = await again.receive_json_from(timeout=5)
        assert keys(snapshot["records"]) == {("CIQ", "Support")}
        await again.disconnect()
    else:
        assert await close_code(tv) == 4403
        assert await connect(None, f"/ws/display/{token}/") is None
