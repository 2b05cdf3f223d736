"""The board designer's rules: the catalog a user may pick from, and the checking and saving
of a board as the designer sends it (never trusting the browser)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils.text import slugify

from dashboard.access import Scope, editable_teams, live_scope, visible_metrics
from dashboard.boards import board_config
from metrics.models import Board, Metric, Playlist, PlaylistItem, Team, Tile


def catalog(scope: Scope) -> dict[str, Any]:
    """The metrics and categories a scope may put on a board, as the upstream lists them
    (static/metrics/picker.js fills its selects from this)."""
    metrics = []
    for metric in visible_metrics(scope):
        categories = [c for c in metric.categories if scope.allows(c)]
        metrics.append(
            {
                "metric_id": metric.metric_id,
                "name": metric.name or metric.metric_id,
                "category_type": metric.category_type,
                "categories": sorted(categories, key=str.casefold),
            }
        )
    return {"metrics": metrics}


class Refused(Exception):
    """A board the designer may not save, with the reasons next to their fields:
    {"name": "...", "teams": "...", "tiles": {"0": {"critical": "..."}}}."""

    def __init__(self, errors: dict[str, Any]) -> None:
        super().__init__("the board was not saved")
        self.errors = errors


BOARD_FIELDS = ("name", "title", "theme", "columns")
TILE_FIELDS = (
    "kind",
    "category",
    "categories",
    "title",
    "format",
    "width",
    "height",
    "direction",
    "warning",
    "critical",
    "targets",
    "trend_hours",
)
MAX_TILES = 100
NOT_YOURS = "Not a queue or agent of the teams this board is shared with."


def _scope_errors(tile: Tile, scope: Scope) -> dict[str, str]:
    """Where a tile shows a category outside the editor's scope (staff have no limit). A
    breakdown of a supervisor's must name its categories: unfiltered, it shows every queue of
    its metric to the board's viewers."""
    if scope.categories is None:
        return {}
    errors = {}
    if tile.kind == "breakdown":
        if not tile.categories:
            errors["categories"] = "Choose the queues or agents to show."
        elif not all(scope.allows(c) for c in tile.categories):
            errors["categories"] = NOT_YOURS
    elif not scope.allows(tile.category):
        errors["category"] = NOT_YOURS
    if isinstance(tile.targets, dict) and not all(scope.allows(q) for q in tile.targets):
        errors["targets"] = NOT_YOURS
    return errors


def _tile(raw: Any, order: int, scope: Scope) -> tuple[Tile | None, dict[str, str]]:
    """A tile from what the browser sent, checked (Tile.clean's rules, then the scope's)."""
    if not isinstance(raw, dict):
        return None, {"kind": "Not a tile."}
    metric = Metric.objects.filter(metric_id=str(raw.get("metric_id", ""))).first()
    if metric is None:
        return None, {"metric": "Choose a metric from the catalog."}
    tile = Tile(order=order, metric=metric)
    for field in TILE_FIELDS:
        if field in raw:
            setattr(tile, field, raw[field])
    if tile.kind == "breakdown":
        tile.category = ""  # a breakdown shows its categories; one category means nothing
    for field in ("warning", "critical"):  # a checkbox's true would pass as 1.0
        if isinstance(getattr(tile, field), bool):
            setattr(tile, field, "not a number")
    try:
        tile.full_clean(exclude=["board"])
    except ValidationError as error:
        return None, {field: " ".join(messages) for field, messages in error.message_dict.items()}
    errors = _scope_errors(tile, scope)
    if tile.kind != "breakdown" and metric.category_type != "NONE" and not tile.category:
        errors["category"] = "Choose a category."  # Tile.clean lets an empty one pass
    return (None, errors) if errors else (tile, {})


def check(data: Any, *, user, board: Board | None) -> tuple[Board, list[Tile], list[Team]]:
    """The board, tiles and teams the designer sent, checked for this user, unsaved; Refused
    with every error found. Never trusts the browser: the scope and teams are the server's."""
    if not isinstance(data, dict):
        raise Refused({"form": "Send the board as a JSON object."})
    errors: dict[str, Any] = {}
    board = board or Board(slug="")
    for field in BOARD_FIELDS:
        if field in data:
            setattr(board, field, data[field])
    try:
        board.full_clean(exclude=["slug"])
    except ValidationError as error:
        errors.update({f: " ".join(m) for f, m in error.message_dict.items()})
    teams = _teams(data.get("teams", []), user, errors)
    scope = board_scope(user, teams)
    raw_tiles = data.get("tiles", [])
    if not isinstance(raw_tiles, list) or len(raw_tiles) > MAX_TILES:
        raw_tiles, errors["form"] = [], f"At most {MAX_TILES} tiles, as a list."
    tiles, tile_errors = [], {}
    for order, raw in enumerate(raw_tiles, start=1):
        tile, problems = _tile(raw, order, scope)
        if problems:
            tile_errors[str(order - 1)] = problems
        else:
            tiles.append(tile)
    if tile_errors:
        errors["tiles"] = tile_errors
    if errors:
        raise Refused(errors)
    return board, tiles, teams


def board_scope(user, teams: list[Team]) -> Scope:
    """What a board's tiles may show: staff anything; a supervisor only the queues and agents of
    the teams it is shared with (all theirs). Their whole scope would not do: a supervisor of
    Sales and Support could put Support's queue on a board that Sales' viewers see."""
    if user.is_staff:
        return Scope(None)
    categories: set[str] = set()
    for team in teams:
        categories.update(team.queues)
        categories.update(team.agents)
    return Scope(frozenset(categories) & (live_scope(user) or Scope(frozenset())).categories)


def _teams(ids: Any, user, errors: dict[str, Any]) -> list[Team]:
    """The teams to share with: the user's to give (staff: any); a supervisor's board keeps at
    least one of theirs, or it would vanish from their own list."""
    if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
        errors["teams"] = "A list of team ids."
        return []
    teams = list(editable_teams(user).filter(pk__in=ids))
    if len(teams) != len(set(ids)):
        errors["teams"] = "You may share only with your own teams."
    elif not teams and not user.is_staff:
        errors["teams"] = "Share it with at least one of your teams."
    return teams


def unique_slug(name: str) -> str:
    base = slugify(name)[:40] or "board"
    slug, n = base, 1
    while Board.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def save(board: Board, tiles: list[Tile], teams: list[Team]) -> Board:
    """Stores a checked board: its tiles replaced in their new order, its teams set."""
    if not board.slug:
        board.slug = unique_slug(board.name)
    board.save()
    board.tiles.all().delete()
    for tile in tiles:
        tile.board = board
    Tile.objects.bulk_create(tiles)
    board.teams.set(teams)
    return board


@transaction.atomic
def duplicate(board: Board, name: str) -> Board:
    """A copy of the board, its tiles and its teams, under a new name."""
    tiles, teams = list(board.tiles.all()), list(board.teams.all())
    copy = Board.objects.create(
        name=name,
        slug=unique_slug(name),
        title=board.title,
        theme=board.theme,
        columns=board.columns,
    )
    for tile in tiles:
        tile.pk, tile.board = None, copy
    Tile.objects.bulk_create(tiles)
    copy.teams.set(teams)
    return copy


def editor_config(board: Board) -> dict[str, Any]:
    """The board as the designer edits it: board_config with metric ids and team ids."""
    config = board_config(board)
    for tile, raw in zip(board.tiles.all(), config["tiles"], strict=True):
        raw["title"] = tile.title  # the saved title, not the fallback name
    config["title"] = board.title  # the saved title, not the fallback name
    config["slug"] = board.slug
    config["teams"] = sorted(board.teams.values_list("pk", flat=True))
    return config


def playlist_items(form, visible: QuerySet[Board]) -> list[PlaylistItem]:
    """A playlist's rows from its form (board, seconds and position; rows without a board are
    left out), in the order of their positions, each board one the user may see; Refused
    otherwise."""
    rows = zip(form.getlist("board"), form.getlist("seconds"), form.getlist("order"), strict=False)
    items = []
    for row, (board_id, seconds, order) in enumerate(rows, start=1):
        if not board_id:
            continue
        board = visible.filter(pk=board_id).first() if board_id.isdigit() else None
        if board is None:
            raise Refused({"board": f"Row {row}: choose one of your boards."})
        if not seconds.isdigit() or not 5 <= int(seconds) <= 3600:
            raise Refused({"seconds": f"Row {row}: between 5 and 3600 seconds."})
        if not order.isdigit():
            raise Refused({"order": f"Row {row}: the position is a number (1 first)."})
        items.append((int(order), row, PlaylistItem(board=board, seconds=int(seconds))))
    items.sort(key=lambda item: item[:2])
    for position, (_, _, item) in enumerate(items, start=1):
        item.order = position
    return [item for _, _, item in items]


@transaction.atomic
def save_playlist(playlist: Playlist, name: str, items: list[PlaylistItem]) -> None:
    playlist.name = name.strip()[:200] or playlist.name
    playlist.save()
    playlist.items.all().delete()
    for item in items:
        item.playlist = playlist
        item.save()  # one by one: signals tell the playlist's TVs
