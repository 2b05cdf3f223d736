"""The board designer's rules over HTTP: who may edit which board (and what every designer URL
answers to everyone else), and what a save refuses whatever the browser sends."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from dashboard import access
from metrics.models import Board, Metric, Playlist, PlaylistItem, Team, Tile

pytestmark = pytest.mark.django_db


@pytest.fixture
def site():
    """Sally supervises Sales, Sam Support; Vic views Sales; Nora has no team. A board for each
    team, and one shared with both."""
    users = get_user_model().objects
    people = {
        name: users.create_user(name, is_staff=name == "admin")
        for name in ("admin", "sally", "sam", "vic", "nora")
    }
    queue = Metric.objects.create(
        metric_id="CIQ",
        name="Calls in Queue",
        category_type="GROUP",
        categories=["Sales", "Support"],
    )
    Metric.objects.create(metric_id="TOT", name="Calls today", category_type="NONE")
    teams = {}
    for name, supervisor in (("Sales", "sally"), ("Support", "sam")):
        team = Team.objects.create(name=name, queues=[name])
        team.supervisors.add(people[supervisor])
        teams[name] = team
    teams["Sales"].viewers.add(people["vic"])
    boards = {}
    for slug, shared in (
        ("sales", ["Sales"]),
        ("support", ["Support"]),
        ("both", ["Sales", "Support"]),
    ):
        board = Board.objects.create(name=slug.title(), slug=slug)
        Tile.objects.create(
            board=board, metric=queue, category="Sales" if slug != "support" else "Support"
        )
        for name in shared:
            teams[name].boards.add(board)
        boards[slug] = board
    return people, teams, boards


def client_for(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def tile(**fields):
    return {
        "kind": "value",
        "metric_id": "CIQ",
        "category": "Sales",
        "categories": [],
        "title": "",
        "format": "auto",
        "width": 1,
        "height": 1,
        "direction": "above",
        "warning": None,
        "critical": None,
        "targets": {},
        "trend_hours": 4,
        **fields,
    }


def save(client, slug, teams, tiles, **board):
    body = {
        "name": "Sales",
        "title": "",
        "theme": "dark",
        "columns": 3,
        "teams": teams,
        "tiles": tiles,
        **board,
    }
    return client.post(
        f"/designer/boards/{slug}/save/", json.dumps(body), content_type="application/json"
    )


def test_who_may_edit_which_board(site):
    people, _, boards = site
    editable = {
        name: set(access.editable_boards(u).values_list("slug", flat=True))
        for name, u in people.items()
    }
    assert editable["admin"] == {"sales", "support", "both"}
    assert editable["sally"] == {"sales"}  # not "both": Support's viewers see it too
    assert editable["sam"] == {"support"}
    assert editable["vic"] == editable["nora"] == set()
    assert access.may_design(people["sally"]) and not access.may_design(people["vic"])


DESIGNER_GETS = [
    "/designer/",
    "/designer/playlists/",
    "/designer/preview/",
    "/designer/boards/sales/",
    "/designer/boards/sales/delete/",
    "/designer/trend.json?metric=CIQ&category=Sales",
]
DESIGNER_POSTS = [
    "/designer/",
    "/designer/playlists/",
    "/designer/boards/sales/save/",
    "/designer/boards/sales/duplicate/",
    "/designer/boards/sales/rename/",
    "/designer/boards/sales/delete/",
]


@pytest.mark.parametrize("path", DESIGNER_GETS)
def test_a_viewer_gets_403_or_404_from_every_designer_page(site, path):
    people, _, boards = site
    assert client_for(people["vic"]).get(path).status_code == 403  # sees the board, may not edit
    assert client_for(people["nora"]).get(path).status_code in (403, 404)
    response = client_for(None).get(path)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("path", DESIGNER_POSTS)
def test_a_viewer_cannot_post_to_the_designer(site, path):
    people, _, boards = site
    body = {"name": "Mine", "tiles": "[]"}
    assert client_for(people["vic"]).post(path, body).status_code == 403
    assert client_for(people["nora"]).post(path, body).status_code in (403, 404)
    assert Board.objects.count() == 3 and Board.objects.get(slug="sales").name == "Sales"


def test_a_viewer_sees_no_editing_controls(site):
    people, _, _ = site
    vic = client_for(people["vic"])
    assert "/designer/" not in vic.get("/").content.decode()
    assert "Edit this board" not in vic.get("/boards/sales/").content.decode()
    sally = client_for(people["sally"])
    assert "/designer/" in sally.get("/").content.decode()
    assert "Edit this board" in sally.get("/boards/sales/").content.decode()
    assert "Edit this board" not in sally.get("/boards/both/").content.decode()


def test_a_supervisor_may_not_edit_a_board_shared_with_a_team_they_do_not_supervise(site):
    people, teams, boards = site
    sally = client_for(people["sally"])
    assert sally.get("/designer/boards/both/").status_code == 403
    assert sally.get("/designer/boards/support/").status_code == 404  # not even its existence
    response = save(sally, "both", [teams["Sales"].pk], [tile()])
    assert response.status_code == 403
    assert save(sally, "support", [teams["Sales"].pk], [tile()]).status_code == 404
    assert Board.objects.get(slug="both").tiles.count() == 1


def test_a_supervisor_saves_tiles_of_their_own_queues(site):
    people, teams, boards = site
    sally = client_for(people["sally"])
    tiles = [
        tile(title="Sales queue", warning=2, critical=4, targets={"Sales": {"warning": 1}}),
        tile(kind="breakdown", category="", categories=["Sales"], width=2),
        tile(kind="trend", trend_hours=2),
    ]
    response = save(sally, "sales", [teams["Sales"].pk], tiles, name="Sales floor")
    assert response.status_code == 200, response.content
    board = Board.objects.get(slug="sales")
    assert board.name == "Sales floor"
    saved = list(board.tiles.values_list("order", "kind", "category", "categories", "width"))
    assert saved == [
        (1, "value", "Sales", [], 1),
        (2, "breakdown", "", ["Sales"], 2),
        (3, "trend", "Sales", [], 1),
    ]
    assert response.json()["board"]["tiles"][0]["warning"] == 2


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (tile(category="Support"), "category"),  # another team's queue
        (tile(metric_id="TOT", category=""), "category"),  # the whole site's total
        (tile(kind="breakdown", category=""), "categories"),  # every queue of the metric
        (tile(kind="breakdown", category="", categories=["Sales", "Support"]), "categories"),
        (tile(targets={"Support": {"warning": 1}}), "targets"),
    ],
)
def test_a_supervisor_cannot_save_a_category_outside_their_scope(site, bad, field):
    people, teams, _ = site
    response = save(client_for(people["sally"]), "sales", [teams["Sales"].pk], [tile(), bad])
    assert response.status_code == 400
    assert field in response.json()["errors"]["tiles"]["1"]
    assert list(Board.objects.get(slug="sales").tiles.values_list("category", flat=True)) == [
        "Sales"
    ]  # unchanged


def test_a_board_shows_only_the_queues_of_the_teams_it_is_shared_with(site):
    """Sally supervises Support too: still, Sales' board (which Vic views) takes no Support
    queue; a board shared with both teams takes either."""
    people, teams, _ = site
    teams["Support"].supervisors.add(people["sally"])
    sally = client_for(people["sally"])
    refused = save(sally, "sales", [teams["Sales"].pk], [tile(category="Support")])
    assert refused.status_code == 400
    assert refused.json()["errors"]["tiles"]["0"]["category"] == (
        "Not a queue or agent of the teams this board is shared with."
    )
    both = [teams["Sales"].pk, teams["Support"].pk]
    assert save(sally, "sales", both, [tile(category="Support")]).status_code == 200


def test_a_save_says_what_is_wrong_next_to_each_field(site):
    people, teams, _ = site
    admin = client_for(people["admin"])
    tiles = [
        tile(warning=5, critical=2),  # Tile.clean: higher is worse, critical below warning
        tile(direction="below", warning=2, critical=5),
        tile(metric_id="NOPE"),
        tile(category="Billing"),  # the metric lists no such category
        tile(category=""),
        tile(width=13, warning="many"),
        tile(kind="breakdown", category="", categories=["Gone"]),
        tile(warning=True),
    ]
    response = save(admin, "sales", [teams["Support"].pk, 999], tiles, name="", columns=0)
    errors = response.json()["errors"]
    assert response.status_code == 400
    assert set(errors) == {"name", "columns", "teams", "tiles"}
    assert "must not be below warning" in errors["tiles"]["0"]["critical"]
    assert "must not be above warning" in errors["tiles"]["1"]["critical"]
    assert set(errors["tiles"]["2"]) == {"metric"}
    assert "no category 'Billing'" in errors["tiles"]["3"]["category"]
    assert set(errors["tiles"]["4"]) == {"category"}
    assert set(errors["tiles"]["5"]) == {"width", "warning"}
    assert "no category 'Gone'" in errors["tiles"]["6"]["categories"]
    assert set(errors["tiles"]["7"]) == {"warning"}
    assert save(admin, "sales", [], [tile()], name="Sales").status_code == 200  # staff: no team


def test_a_supervisor_shares_only_with_their_own_teams(site):
    people, teams, _ = site
    sally = client_for(people["sally"])
    response = save(sally, "sales", [teams["Sales"].pk, teams["Support"].pk], [tile()])
    assert "teams" in response.json()["errors"]
    assert "teams" in save(sally, "sales", [], [tile()]).json()["errors"]  # it would vanish


def test_new_duplicate_rename_and_delete(site):
    people, teams, _ = site
    sally = client_for(people["sally"])
    response = sally.post("/designer/", {"name": "Morning"})
    board = Board.objects.get(name="Morning")
    assert response["Location"] == f"/designer/boards/{board.slug}/"
    assert list(board.teams.all()) == [teams["Sales"]]  # visible to its maker at once
    response = sally.post("/designer/boards/sales/duplicate/")
    copy = Board.objects.get(name="Copy of Sales")
    assert copy.tiles.count() == 1 and list(copy.teams.all()) == [teams["Sales"]]
    sally.post(f"/designer/boards/{copy.slug}/rename/", {"name": "Evening"})
    copy.refresh_from_db()
    assert copy.name == "Evening"
    assert "cannot be undone" in sally.get(f"/designer/boards/{copy.slug}/delete/").content.decode()
    assert Board.objects.filter(pk=copy.pk).exists()  # asking deletes nothing
    sally.post(f"/designer/boards/{copy.slug}/delete/")
    assert not Board.objects.filter(pk=copy.pk).exists()
    assert sally.post("/designer/", {"name": " "}).status_code == 400


def test_playlists_of_boards_the_maker_may_see(site):
    people, _, boards = site
    sally = client_for(people["sally"])
    sally.post("/designer/playlists/", {"name": "Lobby"})
    playlist = Playlist.objects.get(name="Lobby", owner=people["sally"])
    path = f"/designer/playlists/{playlist.pk}/"
    rows = {
        "name": "Lobby",
        "board": [boards["both"].pk, boards["sales"].pk, ""],
        "seconds": ["20", "40", "30"],
        "order": ["2", "1", "3"],
    }
    assert sally.post(path, rows).status_code == 302
    assert list(PlaylistItem.objects.values_list("board__slug", "seconds", "order")) == [
        ("sales", 40, 1),
        ("both", 20, 2),
    ]
    refused = sally.post(path, {**rows, "board": [boards["support"].pk, "", ""]})
    assert refused.status_code == 400 and PlaylistItem.objects.count() == 2
    assert sally.post(path, {**rows, "seconds": ["2", "40", "30"]}).status_code == 400
    assert client_for(people["sam"]).get(path).status_code == 404  # not his
    assert client_for(people["vic"]).get(path).status_code == 403
    sally.post(path, {"delete": "1"})  # not confirmed
    assert Playlist.objects.filter(pk=playlist.pk).exists()
    sally.post(path, {"delete": "1", "confirm": "1"})
    assert not Playlist.objects.filter(pk=playlist.pk).exists()


def test_a_breakdown_of_chosen_categories_sends_those_alone(site):
    from dashboard import boards as board_rules

    people, _, board = site[0], site[1], site[2]["sales"]
    queue = Metric.objects.get(metric_id="CIQ")
    Tile.objects.create(board=board, metric=queue, kind="breakdown", categories=["Sales"])
    shown, _ = board_rules.board_access(people["sally"], "sales")
    assert shown.allows("CIQ", "Sales") and not shown.allows("CIQ", "Support")
    assert shown.whole == frozenset()
    config = board_rules.board_config(board)
    assert config["tiles"][-1]["categories"] == ["Sales"]  # board.js draws those rows alone
    Tile.objects.create(board=board, metric=queue, kind="breakdown")  # none chosen: every one
    shown, _ = board_rules.board_access(people["sally"], "sales")
    assert shown.allows("CIQ", "Support")


def test_the_preview_trend_keeps_to_the_editors_scope(site):
    people, _, _ = site
    sally = client_for(people["sally"])
    assert sally.get("/designer/trend.json?metric=CIQ&category=Sales&hours=2").status_code == 200
    assert sally.get("/designer/trend.json?metric=CIQ&category=Support").status_code == 404
    assert sally.get("/designer/trend.json?metric=NOPE&category=Sales").status_code == 404
    assert client_for(people["admin"]).get("/designer/trend.json?metric=CIQ").status_code == 200
