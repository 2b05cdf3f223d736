"""Migrations: a fresh database gets the whole schema, and what a site configured under a
previous release (metrics at 0006_alerts, and at the migration before the newest one) is still
there, and usable, after the upgrade."""

import hashlib
import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader

from dashboard import alerts, boards
from dashboard.widget import payload
from metrics.models import AlertRule, Board, DisplayLink, Metric, Sample, Team, Widget
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


def before_newest() -> str:
    """The metrics migration just before the newest one (no database needed)."""
    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    [newest] = [node for node in graph.leaf_nodes() if node[0] == "metrics"]
    [parent] = [node for node in graph.node_map[newest].parents if node[0] == "metrics"]
    return parent.key[1]


# The release before the history rework (0007's data migration fills Sample.at_ms), and
# whatever came just before the newest migration.
PREVIOUS_RELEASES = sorted({"0006_alerts", before_newest()})
TOKEN = "a-display-token-made-under-the-previous-release"
SAMPLED_AT = datetime(2026, 11, 1, 12, 0, 10, tzinfo=UTC)


def migrate(targets: list[tuple[str, str | None]] | None = None) -> MigrationExecutor:
    """Migrates the test database to `targets` (default: the latest of every app)."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets or executor.loader.graph.leaf_nodes())
    return MigrationExecutor(connection)  # a fresh loader sees what is applied now


@pytest.fixture(params=PREVIOUS_RELEASES)
def previous_release(request):
    """The test database with metrics at a previous release; always migrated back to the
    latest afterwards, so a failure here cannot leave the next test an old schema."""
    target = [("metrics", request.param)]
    executor = migrate(target)
    try:
        yield executor.loader.project_state(target).apps
    finally:
        migrate()


def test_an_empty_database_migrates_to_the_latest_schema(tmp_path):
    """`manage.py migrate` on a database with no tables at all, as a new site's first deploy."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "dashboard.test_settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}",
    }
    manage = [sys.executable, "manage.py"]
    run = {"cwd": ROOT, "env": env, "capture_output": True, "text": True, "timeout": 60}

    migrated = subprocess.run([*manage, "migrate", "--noinput"], **run)  # noqa: S603
    assert migrated.returncode == 0, migrated.stderr

    checked = subprocess.run([*manage, "migrate", "--check"], **run)  # noqa: S603
    assert checked.returncode == 0, "unapplied migrations left: " + checked.stdout


def test_the_models_need_no_migration_that_is_not_written():
    call_command("makemigrations", "metrics", "--check", "--dry-run", verbosity=0)


def test_the_metrics_app_migrates_down_to_nothing_and_back_up():
    migrate([("metrics", None)])
    assert "metrics_board" not in connection.introspection.table_names()
    migrate()
    assert {"metrics_board", "metrics_sample", "metrics_alertrule"} <= set(
        connection.introspection.table_names()
    )


def create_previous_release_site(old) -> None:
    """A site as the previous release's models left it: historical models only."""
    user = old.get_model("auth", "User").objects.create(username="supervisor", is_staff=True)
    metric = old.get_model("metrics", "Metric")
    waiting = metric.objects.create(
        metric_id="CIQGRP01",
        name="Calls in Queue",
        category_type="GROUP",
        categories=["Sales", "Support"],
        public=True,
    )
    average = metric.objects.create(
        metric_id="AWTGRP01",
        name="Average Wait Time",
        category_type="GROUP",
        categories=["Sales", "Support"],
        public=True,
    )
    board = old.get_model("metrics", "Board").objects.create(
        name="Floor", slug="floor", title="Sales floor", columns=3
    )
    tile = old.get_model("metrics", "Tile")
    tile.objects.create(board=board, metric=waiting, category="Sales", order=0, warning=5)
    tile.objects.create(board=board, metric=average, kind="breakdown", order=1, format="mmss")
    old.get_model("metrics", "DisplayLink").objects.create(
        name="TV by the door", board=board, token_hash=hashlib.sha256(TOKEN.encode()).hexdigest()
    )
    old.get_model("metrics", "Widget").objects.create(
        slug="sales",
        name="Sales wait",
        wait_metric=average,
        wait_category="Sales",
        queue_metric=waiting,
        queue_category="Sales",
        allowed_origins="https://www.example.com",
    )
    old.get_model("metrics", "AlertRule").objects.create(
        owner=user, name="Sales queue", metric=waiting, category="Sales", threshold=10
    )
    team = old.get_model("metrics", "Team").objects.create(name="Sales", queues=["Sales"])
    team.boards.add(board)
    team.supervisors.add(user)
    sample = old.get_model("metrics", "Sample")
    epoch = {"at_ms": int(SAMPLED_AT.timestamp() * 1000)} if has_field(sample, "at_ms") else {}
    sample.objects.create(metric_id="CIQGRP01", category="Sales", at=SAMPLED_AT, value=4, **epoch)


def has_field(model, name: str) -> bool:
    return name in {field.name for field in model._meta.fields}


def test_a_site_configured_under_the_previous_release_survives_the_upgrade(previous_release):
    create_previous_release_site(previous_release)

    migrate()

    board = Board.objects.get(slug="floor")
    config = boards.board_config(board)
    assert [(t["kind"], t["metric_id"], t["category"]) for t in config["tiles"]] == [
        ("value", "CIQGRP01", "Sales"),
        ("breakdown", "AWTGRP01", ""),
    ]
    assert config["tiles"][0]["warning"] == 5
    for tile in board.tiles.all():
        tile.full_clean()

    link = boards.find_display_link(TOKEN)
    assert link == DisplayLink.objects.get(name="TV by the door") and link.active
    _, (shown, groups) = boards.display_access(TOKEN)
    assert shown.metric_ids == {"CIQGRP01", "AWTGRP01"} and link.group in groups

    widget = Widget.objects.get(slug="sales")
    widget.full_clean()
    assert payload.widget_config(widget)["origins"] == ["https://www.example.com"]
    # Default texts said "1 callers ahead" before 0011: they now say "1 caller ahead".
    assert widget.text_open == "Current wait: {wait} · {callers} ahead"
    assert payload.widget_config(widget)["style"]["background"] == "#ffffff"

    [rule] = alerts._rules()
    assert (rule["metric_id"], rule["category"], rule["threshold"]) == ("CIQGRP01", "Sales", 10)
    AlertRule.objects.get(name="Sales queue").full_clean()

    team = Team.objects.get(name="Sales")
    assert list(team.boards.all()) == [board]
    assert Metric.objects.filter(public=True).count() == 2

    sample = Sample.objects.get(metric_id="CIQGRP01")
    assert sample.at_ms == int(SAMPLED_AT.timestamp() * 1000)  # 0007's data migration fills it
