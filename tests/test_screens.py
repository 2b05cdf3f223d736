"""Send to a screen and the screens page: who may send what, re-point, a new link, revoke. Named
actors: an admin, the Sales supervisor, the Support supervisor, a Sales viewer, an anonymous
visitor."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from dashboard import boards as links
from dashboard.asgi import application
from dashboard.screens import pairing, rules
from metrics.models import Board, DisplayLink, Playlist, PlaylistItem, Team

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def people():
    users = get_user_model().objects
    found = {
        "admin": users.create_user("admin", password="pw-admin-long-1", is_staff=True),
        "sales": users.create_user("sally", password="pw-sales-long-1"),
        "support": users.create_user("sam", password="pw-support-long-1"),
        "viewer": users.create_user("vic", password="pw-viewer-long-1"),
    }
    for name in ("Sales", "Support"):
        board = Board.objects.create(name=name, slug=name.lower())
        team = Team.objects.create(name=name, queues=[name])
        team.supervisors.add(found[name.lower()])
        team.boards.add(board)
    Team.objects.get(name="Sales").viewers.add(found["viewer"])
    return found


def client_for(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def playlist(name, *slugs) -> Playlist:
    made = Playlist.objects.create(name=name)
    for order, slug in enumerate(slugs):
        PlaylistItem.objects.create(playlist=made, board=Board.objects.get(slug=slug), order=order)
    return made


def test_viewers_and_others_may_not_send_or_manage_screens(people, redis_db):
    viewer = client_for(people["viewer"])
    for path in ("/screens/", "/screens/send/", "/screens/send/?board=sales"):
        assert viewer.get(path).status_code == 403
        response = client_for(None).get(path)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert viewer.post("/screens/send/", {"show": "board:sales"}).status_code == 403
    link, _ = links.create_display_link("TV", board=Board.objects.get(slug="sales"))
    assert viewer.post(f"/screens/{link.pk}/revoke/").status_code == 403
    assert DisplayLink.objects.get(pk=link.pk).active


def test_a_supervisor_sends_only_their_teams_boards_and_playlists(people, redis_db):
    sales = client_for(people["sales"])
    page = sales.get("/screens/send/?board=sales")
    assert page.status_code == 200
    assert '<option value="board:sales" selected>' in page.content.decode()
    assert "board:support" not in page.content.decode()
    assert sales.get("/screens/send/?board=support").status_code == 404  # as everywhere
    assert sales.get("/screens/send/?board=nothing").status_code == 404

    own, mixed = playlist("Sales only", "sales"), playlist("Both", "sales", "support")
    assert sales.get(f"/screens/send/?playlist={own.pk}").status_code == 200
    assert sales.get(f"/screens/send/?playlist={mixed.pk}").status_code == 404
    assert client_for(people["admin"]).get(f"/screens/send/?playlist={mixed.pk}").status_code == 200

    code = pairing.normalise_code(shown_code(Client().get("/tv/").content.decode()))
    for show in ("board:support", f"playlist:{mixed.pk}"):
        refused = sales.post("/screens/send/", {"show": show, "code": code, "name": "TV"})
        assert refused.status_code == 400
        assert "Select a valid choice" in refused.content.decode()
    assert not DisplayLink.objects.exists()
    assert redis_db.get(pairing.KEY + code)  # the TV still waits for a right choice
    sent = sales.post("/screens/send/", {"show": f"playlist:{own.pk}", "code": code, "name": "TV"})
    assert sent.status_code == 302 and DisplayLink.objects.get().playlist == own


def test_may_send_is_the_one_rule(people):
    sales, support = Board.objects.get(slug="sales"), Board.objects.get(slug="support")
    assert rules.may_send(people["sales"], sales)
    assert not rules.may_send(people["sales"], support)
    assert not rules.may_send(people["viewer"], sales)
    assert rules.may_send(people["admin"], support)
    assert not rules.may_send(people["sales"], playlist("Empty"))
    people["sales"].is_active = False
    assert not rules.may_send(people["sales"], sales)


def shown_code(html: str) -> str:
    from tests.test_pairing import CODE_SHOWN

    return CODE_SHOWN.search(html).group(1)


def test_the_screens_page_lists_and_manages_only_the_supervisors_screens(people, redis_db):
    sales_board, support_board = Board.objects.get(slug="sales"), Board.objects.get(slug="support")
    mine, _ = links.create_display_link("Sales TV", board=sales_board)
    theirs, _ = links.create_display_link("Support TV", board=support_board)
    own_list = playlist("Sales only", "sales")
    sales = client_for(people["sales"])

    page = sales.get("/screens/").content.decode()
    assert "Sales TV" in page and "Support TV" not in page
    assert "Support TV" in client_for(people["admin"]).get("/screens/").content.decode()
    for path in ("show/", "revoke/", "link/"):
        assert (
            sales.post(f"/screens/{theirs.pk}/{path}", {"show": "board:sales"}).status_code == 404
        )

    # Re-point: the same screen shows the playlist, with no new pairing.
    assert (
        sales.post(f"/screens/{mine.pk}/show/", {"show": f"playlist:{own_list.pk}"}).status_code
        == 302
    )
    mine.refresh_from_db()
    assert mine.playlist == own_list and mine.board is None
    bad = sales.post(f"/screens/{mine.pk}/show/", {"show": "board:support"})
    assert (
        bad.status_code == 400 and "choose a board or playlist you may send" in bad.content.decode()
    )

    # A new link, shown once with its QR code; the old one stops working.
    old_hash = mine.token_hash
    shown = sales.post(f"/screens/{mine.pk}/link/")
    assert shown.status_code == 200 and "<svg" in shown.content.decode()
    assert "no-store" in shown["Cache-Control"]
    mine.refresh_from_db()
    assert mine.token_hash != old_hash
    url = shown.content.decode().split('id="display-url" class="screen-link" readonly value="')[1]
    assert Client().get(url.split('"')[0].split("testserver")[1]).status_code == 200

    # Revoke asks first.
    confirm = sales.get(f"/screens/{mine.pk}/revoke/")
    assert confirm.status_code == 200 and "goes dark at once" in confirm.content.decode()
    assert DisplayLink.objects.get(pk=mine.pk).active
    assert sales.post(f"/screens/{mine.pk}/revoke/").status_code == 302
    assert not DisplayLink.objects.get(pk=mine.pk).active
    after = sales.get("/screens/").content.decode()
    assert "“Sales TV” was revoked: that screen is dark now." in after
    assert f'data-screen="{mine.pk}"' not in after


async def test_a_revoked_screen_is_told_once_and_closed(people, redis_db):
    """One event reaches the TV's socket: "revoked", then the close (no second close after it:
    the revoke used to send an event of its own beside the save's)."""
    board = await Board.objects.aget(slug="sales")
    link, token = await sync_to_async(links.create_display_link)("TV", board=board)
    tv = WebsocketCommunicator(
        application, f"/ws/display/{token}/", headers=[(b"origin", b"http://127.0.0.1")]
    )
    assert (await tv.connect())[0]
    assert (await tv.receive_json_from(timeout=5))["type"] == "snapshot"

    await sync_to_async(links.revoke_display_link)(link)
    assert (await tv.receive_json_from(timeout=2))["type"] == "revoked"
    closed = await tv.receive_output(timeout=1)
    assert closed == {"type": "websocket.close", "code": 4403}
    assert await tv.receive_nothing(timeout=0.5)
