"""The three ways to put a widget on a site, as the snippets a site owner copies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.templatetags.static import static
from django.urls import reverse


@dataclass(frozen=True)
class Embed:
    key: str  # "script", "iframe" or "json"
    label: str
    code: str


def embeds(slug: str, absolute: Callable[[str], str]) -> list[Embed]:
    """The script tag, the iframe and the JSON URL of a widget; `absolute` turns a path into
    the dashboard's absolute URL (request.build_absolute_uri)."""
    json_url = absolute(reverse("widget-json", args=[slug]))
    script_url = absolute(static("widget/widget.js"))
    frame_url = absolute(reverse("widget-frame", args=[slug]))
    return [
        Embed(
            "script",
            "Script tag (renders in place, in a shadow root)",
            f'<script src="{script_url}" data-widget="{json_url}" async></script>',
        ),
        Embed(
            "iframe",
            "Iframe",
            f'<iframe src="{frame_url}" title="Current wait" '
            'style="border:0;width:28em;height:3.5em"></iframe>',
        ),
        Embed("json", "JSON (render it yourself)", json_url),
    ]
