"""The demo `make run` seeds: what it makes, that it makes it once, and where it stays away."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from dashboard import access
from metrics.models import Board, DisplayLink, Metric, Playlist, Team, Tile, Widget

pytestmark = pytest.mark.django_db


def seed_demo(run_dir) -> str:
    out = StringIO()
    call_command("seed_demo", run_dir=run_dir, base_url="http://tv.example:8000", stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    models = (Board, Tile, Playlist, Team, Widget, DisplayLink, Metric)
    return {model.__name__: model.objects.count() for model in models}


def test_it_seeds_two_boards_a_playlist_a_team_and_a_public_widget(tmp_path):
    printed = seed_demo(tmp_path)
    floor = Board.objects.get(slug="demo-floor")
    kinds = set(floor.tiles.values_list("kind", flat=True))
    assert kinds == {"value", "breakdown", "trend"}
    assert (
        floor.tiles.filter(kind="value", warning__isnull=False, critical__isnull=False).count() >= 3
    )
    assert Board.objects.filter(slug="demo-agents").exists()
    assert [i.board.slug for i in Playlist.objects.get().items.all()] == [
        "demo-floor",
        "demo-agents",
    ]
    team = Team.objects.get()
    assert [u.username for u in team.supervisors.all()] == ["supervisor"]
    assert [u.username for u in team.viewers.all()] == ["viewer"]
    widget = Widget.objects.get()
    assert widget.public and widget.wait_metric.public and widget.queue_metric.public
    supervisor_password = (tmp_path / "supervisor_password").read_text()
    token = (tmp_path / "demo_tv_token").read_text()
    assert f"supervisor / {supervisor_password}" in printed
    assert f"viewer / {(tmp_path / 'viewer_password').read_text()}" in printed
    assert f"http://tv.example:8000/display/{token}/" in printed
    assert "http://tv.example:8000/demo/site/" in printed


def test_the_demo_logins_see_the_demo_boards(tmp_path, client):
    seed_demo(tmp_path)
    for role in ("supervisor", "viewer"):
        password = (tmp_path / f"{role}_password").read_text()
        user = get_user_model().objects.get(username=role)
        assert user.check_password(password)
        slugs = {board.slug for board in access.visible_boards(user)}
        assert slugs == {"demo-floor", "demo-agents"}
    assert client.get(f"/display/{(tmp_path / 'demo_tv_token').read_text()}/").status_code == 200


def test_seeding_again_makes_nothing_new_and_prints_the_same_logins(tmp_path):
    first = seed_demo(tmp_path)
    before = counts()
    hashes = dict(get_user_model().objects.values_list("username", "password"))
    assert seed_demo(tmp_path) == first
    assert counts() == before
    # The passwords are not hashed again: that would sign everyone out at each `make run`.
    assert dict(get_user_model().objects.values_list("username", "password")) == hashes


def test_it_leaves_a_database_with_boards_of_its_own_alone(tmp_path):
    Board.objects.create(name="Ours", slug="ours")
    assert seed_demo(tmp_path) == ""
    assert counts()["Board"] == 1 and counts()["Team"] == 0 and counts()["Widget"] == 0
    assert not (tmp_path / "supervisor_password").exists()


def test_the_demo_site_embeds_the_widget_once_the_demo_is_seeded(tmp_path, client):
    assert client.get("/demo/site/").status_code == 404
    seed_demo(tmp_path)
    page = client.get("/demo/site/")
    assert page.status_code == 200
    assert b'data-widget="/widget/demo-wait.json"' in page.content
    assert b"/static/widget/widget.js" in page.content


def test_the_printed_admin_login_keeps_its_sessions_across_runs(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "boss")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-boss-password-1")
    call_command("ensure_login", stdout=StringIO())
    first = get_user_model().objects.get(username="boss").password
    call_command("ensure_login", stdout=StringIO())
    boss = get_user_model().objects.get(username="boss")
    assert boss.password == first and boss.check_password("a-long-boss-password-1")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-new-boss-password-2")  # changed: applied
    call_command("ensure_login", stdout=StringIO())
    assert get_user_model().objects.get(username="boss").check_password("a-new-boss-password-2")
