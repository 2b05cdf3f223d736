"""Changes that reach open sockets: access is checked at the handshake AND whenever something it
rests on changes, so that nothing streams on to someone who lost the right to see it.

Each socket is in the group of its user (access.user_group), of its board(s) (boards.board_group)
and of its display link (DisplayLink.group). A change tells the sockets concerned to check their
access again (`access.changed`: LiveConsumer.access_changed), or that their board changed
(`board.changed`: checked again, then the page reloads). What tells whom:

- a user saved (deactivated, no longer staff, a new password), deleted or logged out: that user;
- supervisors or viewers removed from a team (either side of the relation, or cleared), a
  team's queues or agents changed, a team deleted: its members;
- a board no longer shared with a team: that board's sockets;
- a board or its tiles changed or deleted: that board's sockets (`board.changed`);
- a display link saved (re-pointed, revoked) or deleted, a playlist's boards changed: the
  sockets of the links concerned.

Sent once the change is committed (the admin saves in a transaction): a check that ran before
would still read the old access.
"""

from __future__ import annotations

from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete
from django.dispatch import receiver

from dashboard.access import user_group
from dashboard.boards import board_group
from metrics import fanout, live
from metrics.models import Board, DisplayLink, PlaylistItem, Team, Tile

# m2m_changed actions that take someone out (a clear's rows are known only before it).
REMOVALS = ("post_remove", "pre_clear")


def tell(groups: Iterable[str], event_type: str = "access.changed") -> None:
    """Sends the sockets in `groups` an event once the current transaction is committed."""
    names = sorted(set(groups))
    if names:
        # robust: the change is committed whatever happens here; a failed send is logged.
        transaction.on_commit(lambda: async_to_sync(_send)(names, event_type), robust=True)


async def _send(groups: list[str], event_type: str) -> None:
    # Live sockets hear through metrics.fanout; alert sockets through the channel layer.
    layer, redis = get_channel_layer(), live.get_redis()
    for group in groups:
        await fanout.publish_event(redis, group, {"type": event_type})
        await layer.group_send(group, {"type": event_type})


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
@receiver(post_delete, sender=settings.AUTH_USER_MODEL)
def _user_changed(sender, instance, **kwargs) -> None:
    if kwargs.get("created") or kwargs.get("update_fields") == frozenset({"last_login"}):
        return  # a new user has no socket yet; a login takes nothing away
    tell([user_group(instance.pk)])


@receiver(user_logged_out)
def _logged_out(sender, request, user, **kwargs) -> None:
    if user is not None:  # (the sockets of the user's other sessions stay)
        tell([user_group(user.pk)])


def _removed(sender, instance, action: str, reverse: bool, pk_set, column: str) -> list[int]:
    """The ids on the far side of a team's relation that were just removed (`column` of the
    relation's table): from the far side's own end, the instance itself."""
    if action not in REMOVALS:
        return []
    if reverse:
        return [instance.pk]
    if action == "pre_clear":
        return list(sender.objects.filter(team=instance).values_list(column, flat=True))
    return list(pk_set)


@receiver(m2m_changed, sender=Team.supervisors.through)
@receiver(m2m_changed, sender=Team.viewers.through)
def _members_removed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    tell(user_group(pk) for pk in _removed(sender, instance, action, reverse, pk_set, "user_id"))


@receiver(m2m_changed, sender=Team.boards.through)
def _boards_unshared(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    tell(board_group(pk) for pk in _removed(sender, instance, action, reverse, pk_set, "board_id"))


@receiver(post_save, sender=Team)
@receiver(pre_delete, sender=Team)  # before: its members are still known
def _team_changed(sender, instance, created=False, **kwargs) -> None:
    if not created:  # fewer queues or agents, or no team at all
        members = [*instance.supervisors.all(), *instance.viewers.all()]
        tell(user_group(user.pk) for user in members)


@receiver([post_save, post_delete], sender=Board)
@receiver([post_save, post_delete], sender=Tile)
def _board_changed(sender, instance, **kwargs) -> None:
    board_id = instance.pk if sender is Board else instance.board_id
    tell([board_group(board_id)], "board.changed")


@receiver([post_save, post_delete], sender=DisplayLink)
def _link_changed(sender, instance, created=False, **kwargs) -> None:
    if not created:  # (a new link has no socket yet)
        tell([instance.group])


@receiver([post_save, post_delete], sender=PlaylistItem)
def _playlist_changed(sender, instance, **kwargs) -> None:
    links = DisplayLink.objects.filter(playlist_id=instance.playlist_id)
    tell(link.group for link in links)
