"""The choice of what a screen shows (a board or a playlist) and the send-to-a-screen form."""

from __future__ import annotations

from django import forms

from dashboard.screens import pairing, rules
from metrics.models import Board, Playlist


def show_value(shown: rules.Shown) -> str:
    """A board as "board:<slug>", a playlist as "playlist:<id>" (the select's values)."""
    return f"board:{shown.slug}" if isinstance(shown, Board) else f"playlist:{shown.pk}"


class ShowForm(forms.Form):
    """What to show: a board or a playlist the user may send, and nothing else."""

    show = forms.ChoiceField(label="What to show")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        boards = list(rules.sendable_boards(user).order_by("name"))
        playlists = rules.sendable_playlists(user)
        self.choices = {show_value(s): s for s in [*boards, *playlists]}
        grouped = [
            ("Boards", [(show_value(b), b.name) for b in boards]),
            ("Playlists", [(show_value(p), p.name) for p in playlists]),
        ]
        self.fields["show"].choices = [("", "Choose a board or playlist")] + [
            group for group in grouped if group[1]
        ]

    def clean_show(self) -> rules.Shown:
        return self.choices[self.cleaned_data["show"]]  # ChoiceField allowed only these

    def target(self) -> dict[str, Board | Playlist | None]:
        """The DisplayLink fields for the chosen board or playlist."""
        shown = self.cleaned_data["show"]
        is_board = isinstance(shown, Board)
        return {"board": shown if is_board else None, "playlist": None if is_board else shown}


class SendForm(ShowForm):
    code = forms.CharField(
        label="Code shown on the screen",
        max_length=20,
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}
        ),
    )
    name = forms.CharField(
        label="Name of the screen",
        max_length=200,
        help_text="Where it is, e.g. 'TV by the door'.",
    )

    field_order = ["show", "code", "name"]

    def clean_code(self) -> str:
        try:
            return pairing.normalise_code(self.cleaned_data["code"])
        except pairing.BadCode as exc:
            raise forms.ValidationError(str(exc)) from exc
