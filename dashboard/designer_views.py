"""Thin views of the board designer: the catalog picker's data, boards, tiles and playlists."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from dashboard import access, designer


def catalog_json(request: HttpRequest) -> JsonResponse:
    """The metrics and categories the user may pick (staff: all; a supervisor: their teams'
    queues and agents; anyone else, signed in or not: 403, as JSON endpoints answer)."""
    scope = access.require_live_scope(request.user)
    return JsonResponse(designer.catalog(scope))
