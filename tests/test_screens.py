"""Send to a screen and the screens page: who may send what, re-point, a new link, revoke. Named
actors: an admin, the Sales supervisor, the Support supervisor, a Sales viewer, an anonymous
visitor."""

import re

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client
from playwright.sync_api import expect

from dashboard import boards as links
from dashboard.asgi import application
from dashboard.screens import pairing, rules
from metrics.models import Board, DisplayLink, Playlist, PlaylistItem, Team
from tests.conftest import log_in, screenshot_folder

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


def test_the_admin_still_makes_and_revokes_links_and_records_who_made_them(people, redis_db):
    people["admin"].is_superuser = True  # the admin's model permissions
    people["admin"].save()
    admin = client_for(people["admin"])
    sales = Board.objects.get(slug="sales")
    made = admin.post(
        "/admin/metrics/displaylink/add/", {"name": "Lobby TV", "board": sales.pk}, follow=True
    )
    assert made.status_code == 200 and 'id="display-url"' in made.content.decode()
    link = DisplayLink.objects.get(name="Lobby TV")
    assert link.created_by == people["admin"]
    assert "Lobby TV" in client_for(people["sales"]).get("/screens/").content.decode()
    revoked = admin.post(
        "/admin/metrics/displaylink/",
        {"action": "revoke", "_selected_action": [link.pk]},
        follow=True,
    )
    assert revoked.status_code == 200
    assert not DisplayLink.objects.get(pk=link.pk).active


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


async def test_a_link_revoked_while_its_tv_connects_is_refused(people, redis_db, monkeypatch):
    """Revoked just after the handshake's check, before the socket joined the link's group (the
    event went to no one): the socket checks again once it hears, and refuses."""
    board = await Board.objects.aget(slug="sales")
    link, token = await sync_to_async(links.create_display_link)("TV", board=board)
    check = links.display_access

    def checked_then_revoked(token):
        found = check(token)
        if found is not None and DisplayLink.objects.get(pk=link.pk).active:
            links.revoke_display_link(DisplayLink.objects.get(pk=link.pk))
        return found

    monkeypatch.setattr(links, "display_access", checked_then_revoked)
    tv = WebsocketCommunicator(
        application, f"/ws/display/{token}/", headers=[(b"origin", b"http://127.0.0.1")]
    )
    connected, code = await tv.connect()
    assert not connected and code == 4401
    await tv.wait()


# --- in Chromium, with the whole system ---------------------------------------------------------


@pytest.fixture
def sales_floor():
    """The Sales supervisor (not staff) and the Floor board shared with Sales."""
    from tests.conftest import PASSWORD
    from tests.test_boards import metric

    supervisor = get_user_model().objects.create_user("sally", password=PASSWORD)
    board = Board.objects.create(name="Floor", slug="floor", title="Support floor", columns=2)
    queue = metric("CIQGRP01", "Calls in Queue")
    board.tiles.create(metric=queue, category="Sales", title="Sales queue", order=1)
    board.tiles.create(metric=queue, kind="breakdown", title="Queues", order=2)
    team = Team.objects.create(name="Sales", queues=["Sales"])
    team.supervisors.add(supervisor)
    team.boards.add(board)
    return supervisor


def pairing_code(tv) -> str:
    code = tv.locator("#pairing-code")
    expect(code).to_have_text(re.compile(r"^[A-Z0-9]{3}-[A-Z0-9]{3}$"), timeout=10_000)
    return code.inner_text()


def test_a_supervisor_pairs_a_tv_by_its_code_then_revokes_it(stack, sales_floor, browser, redis_db):
    base_url, _ = stack
    tv = browser.new_context(viewport={"width": 1920, "height": 1080}).new_page()
    tv.goto(f"{base_url}/tv/")
    first = pairing_code(tv)
    assert "tv_pairing" not in tv.evaluate("document.cookie")  # HttpOnly: no script reads it

    # Its ten minutes are over: the TV shows a fresh code by itself.
    redis_db.delete(pairing.KEY + pairing.normalise_code(first))
    expect(tv.locator("#pairing-code")).not_to_have_text(first, timeout=10_000)
    code = pairing_code(tv)

    person = browser.new_context().new_page()
    # From the board (or its designer): "Send to a screen", the board preselected.
    log_in(person, base_url, "sally", path="/boards/floor/")
    person.get_by_role("link", name="Send to a screen").click()
    expect(person).to_have_url(re.compile(r"/screens/send/\?board=floor$"))
    expect(person.get_by_label("What to show")).to_have_value("board:floor")
    person.get_by_label("Code shown on the screen").fill(f" {code.lower()} ")  # as typed
    person.get_by_label("Name of the screen").fill("TV by the door")
    person.get_by_role("button", name="Send to the screen").click()
    expect(person.get_by_role("status")).to_contain_text("“TV by the door” shows Floor now.")

    # The TV opens its display link by itself and shows the board with live values.
    expect(tv).to_have_url(re.compile(r"/display/[\w-]{43}/$"), timeout=10_000)
    sales = tv.locator('.tile[data-metric-id="CIQGRP01"][data-category="Sales"]')
    expect(sales).to_have_attribute("data-state", "live", timeout=20_000)
    expect(sales.locator(".tile-value")).to_have_text("3")

    # A third browser that read the code off the screen gets no board.
    onlooker = browser.new_context().new_page()
    onlooker.goto(f"{base_url}/tv/open/")
    expect(onlooker).to_have_url(f"{base_url}/tv/")
    expect(onlooker.locator("#pairing-code")).not_to_have_text(code)

    # The supervisor revokes it on the screens page: the TV goes dark at once.
    person.goto(f"{base_url}/screens/")
    row = person.locator("tr", has_text="TV by the door")
    expect(row).to_contain_text("Floor")
    row.get_by_role("link", name="Revoke…").click()
    person.get_by_role("button", name="Revoke TV by the door").click()
    expect(person.get_by_role("status")).to_contain_text("was revoked")
    expect(tv.get_by_role("alert")).to_contain_text("revoked", timeout=5_000)
    expect(tv.locator(".tile")).to_have_count(0)
    expect(tv.locator("#connection")).to_have_attribute("data-state", "revoked")
    # Dark, not stale: no "Data is stale" banner once the stale limit (3 s here) has passed.
    tv.wait_for_timeout(4_000)
    expect(tv.locator("#upstream")).to_be_hidden()


def test_screenshots_of_pairing_a_tv(stack, sales_floor, browser, tmp_path):
    """tv-pairing.png (the TV's code at 1080p) and send-to-screen.png; with SCREENSHOTS=1 they
    go to docs/screenshots (`make screenshots`)."""
    base_url, _ = stack
    folder = screenshot_folder(tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    tv = browser.new_context(viewport={"width": 1920, "height": 1080}).new_page()
    tv.goto(f"{base_url}/tv/")
    code = pairing_code(tv)
    size = tv.locator("#pairing-code").evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
    assert size >= 1080 / 10  # readable across the room
    # The QR code's modules (not only its box) are big enough, and on the screen.
    qr = tv.locator(".pairing-qr svg .qrline").bounding_box()
    assert qr["width"] >= 300 and qr["y"] + qr["height"] <= 1080
    tv.screenshot(path=str(folder / "tv-pairing.png"))

    person = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
    log_in(person, base_url, "sally", path=f"/screens/send/?board=floor&code={code[:3]}{code[4:]}")
    expect(person.get_by_label("Code shown on the screen")).to_have_value(code.replace("-", ""))
    person.get_by_label("Name of the screen").fill("TV by the door")
    person.screenshot(path=str(folder / "send-to-screen.png"))
