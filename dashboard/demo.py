"""The demo that `make run` seeds when it starts the bundled emulator on an empty database: two
boards, a playlist with a TV link, a team with a supervisor and a viewer, and a public widget.

The bundled emulator is the upstream here, so its catalog is the one the first catalog sync
stores: it is stored now, so seeding never waits for the other processes to start. Secrets
(the demo users' passwords, the TV link's token, shown once when made) are kept in the run
folder like the admin's, so every start can print them again.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction

from acr_emulator.catalog import Catalog
from dashboard.boards import create_display_link, find_display_link
from metrics.acr.values import parse_catalog
from metrics.ingest import save_metrics
from metrics.models import Board, Metric, Playlist, PlaylistItem, Team, Tile, Widget

FLOOR, AGENTS, WIDGET = "demo-floor", "demo-agents", "demo-wait"
SUPERVISOR, VIEWER = "supervisor", "viewer"
# The wait metrics the widget reads. No agents metric: it would say "closed" whenever every
# Sales agent is on a call, which the busy demo often has.
PUBLIC_METRICS = ("AWTGRP01", "LWCGRP01", "CIQGRP01")
QUEUE_LIMITS = {"warning": 1, "critical": 3}  # calls waiting (the demo reaches each state)
WAIT_LIMITS = {"warning": 20, "critical": 45}  # seconds


@dataclass(frozen=True)
class DemoLogins:
    supervisor: str
    viewer: str
    tv_token: str


def is_seeded() -> bool:
    return Board.objects.filter(slug=FLOOR).exists()


def seed(run_dir: Path) -> DemoLogins | None:
    """Seeds the demo once (into a database with no boards) and returns its logins; None when
    the database has boards of its own. Run again, it creates nothing and returns the logins."""
    if not is_seeded():
        if Board.objects.exists():
            return None
        with transaction.atomic():
            _store_catalog()
            _seed_boards()
    return DemoLogins(
        supervisor=_ensure_user(SUPERVISOR, run_dir),
        viewer=_ensure_user(VIEWER, run_dir),
        tv_token=_ensure_tv_token(run_dir),
    )


def remembered_secret(path: Path) -> str:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(12), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def _store_catalog() -> None:
    listing = [metric.listing() for metric in Catalog().visible()]
    save_metrics(parse_catalog(listing))
    Metric.objects.filter(metric_id__in=PUBLIC_METRICS).update(public=True)


def _seed_boards() -> None:
    m = {metric.metric_id: metric for metric in Metric.objects.all()}
    floor = Board.objects.create(name="Floor", slug=FLOOR, title="Contact center floor")
    tiles = [
        Tile(kind="value", metric=m["CIQGRP01"], category="Sales", title="Sales queue"),
        Tile(kind="value", metric=m["CIQGRP01"], category="Support", title="Support queue"),
        Tile(kind="value", metric=m["LWCALL01"], title="Longest wait", format="mmss"),
        Tile(kind="value", metric=m["CANTOD01"], title="Answered today", format="count"),
        Tile(kind="breakdown", metric=m["LWCGRP01"], title="Longest wait by queue", width=2),
        Tile(kind="trend", metric=m["CIQGRP01"], category="Sales", title="Sales queue", width=2),
    ]
    for order, tile in enumerate(tiles):
        tile.board, tile.order = floor, order
        limits = WAIT_LIMITS if tile.metric.metric_id.startswith("LWC") else QUEUE_LIMITS
        if tile.kind != "trend" and tile.metric.metric_id != "CANTOD01":
            tile.warning, tile.critical = limits["warning"], limits["critical"]
    Tile.objects.bulk_create(tiles)
    agents = Board.objects.create(name="Agents", slug=AGENTS, title="Agents", columns=3)
    Tile.objects.bulk_create(
        [
            Tile(board=agents, order=0, kind="breakdown", metric=m["ATTAGT01"], width=2, height=2),
            Tile(board=agents, order=1, kind="breakdown", metric=m["AVLGRP01"], height=2),
            Tile(board=agents, order=2, kind="breakdown", metric=m["CABGRP01"], width=3),
        ]
    )
    wall = Playlist.objects.create(name="Demo wall")
    PlaylistItem.objects.create(playlist=wall, board=floor, order=0, seconds=20)
    PlaylistItem.objects.create(playlist=wall, board=agents, order=1, seconds=20)
    team = Team.objects.create(
        name="Demo floor",
        queues=["Sales", "Support"],
        agents=[a for a in m["ATTAGT01"].categories if a.startswith(("Ana", "Ben", "Dev"))],
    )
    team.boards.set([floor, agents])
    Widget.objects.create(
        slug=WIDGET,
        name="Sales wait (demo site)",
        wait_metric=m["AWTGRP01"],
        wait_category="Sales",
        queue_metric=m["CIQGRP01"],
        queue_category="Sales",
        public=True,
    )


def _ensure_user(role: str, run_dir: Path) -> str:
    """The demo login "role / password" (the password kept in run_dir), in the demo team."""
    password = remembered_secret(run_dir / f"{role}_password")
    user, _ = get_user_model().objects.get_or_create(username=role)
    user.is_active = True
    if not user.check_password(password):  # re-hashed, it would end the user's sessions
        user.set_password(password)
    user.save()
    team = Team.objects.filter(name="Demo floor").first()
    if team is not None:
        (team.supervisors if role == SUPERVISOR else team.viewers).add(user)
    return f"{role} / {password}"


def _ensure_tv_token(run_dir: Path) -> str:
    """The demo playlist's TV link token; a new link when the kept token no longer opens one."""
    path = run_dir / "demo_tv_token"
    token = path.read_text(encoding="utf-8").strip() if path.exists() else ""
    if find_display_link(token) is None:
        wall = Playlist.objects.get(name="Demo wall")
        _, token = create_display_link("Demo TV", playlist=wall)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(token, encoding="utf-8")
        path.chmod(0o600)
    return token
