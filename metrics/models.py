import re
import string

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class Metric(models.Model):
    """An API-enabled metric as the upstream catalog last described it.

    Rows are never deleted when a metric leaves the catalog (boards may refer to them); they are
    marked absent instead.
    """

    metric_id = models.CharField(max_length=200, unique=True)
    name = models.CharField(max_length=500, blank=True)
    category_type = models.CharField(max_length=40)
    categories = models.JSONField(default=list, blank=True)
    in_catalog = models.BooleanField(default=True)
    public = models.BooleanField(
        default=False, help_text="May feed a public wait-time widget (on anyone's web site)."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "metric_id"]

    def __str__(self) -> str:
        return f"{self.name or self.metric_id} ({self.metric_id})"


class Sample(models.Model):
    """A record's value at one moment, for history charts. `at` is quantized to the sampling
    interval and unique per (metric, category), so a retried sampling task never writes a
    sample twice."""

    metric_id = models.CharField(max_length=200)
    category = models.CharField(max_length=500, blank=True)
    at = models.DateTimeField()
    # `at` as epoch milliseconds: charts bucket it with integer arithmetic in SQL, the same on
    # SQLite and PostgreSQL, so a day of one-second samples is reduced in the database.
    at_ms = models.BigIntegerField(default=0)
    value = models.FloatField(null=True)  # a count, or milliseconds; null: no number (avg of 0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["metric_id", "category", "at"], name="one_sample")
        ]
        indexes = [models.Index(fields=["at"]), models.Index(fields=["metric_id", "at_ms"])]

    def __str__(self) -> str:
        return f"{self.metric_id}/{self.category} @ {self.at:%Y-%m-%d %H:%M:%S}: {self.value}"

    def save(self, *args, **kwargs):
        self.at_ms = int(self.at.timestamp() * 1000)
        super().save(*args, **kwargs)

    @classmethod
    def of(cls, metric_id: str, category: str, at, value: float | None) -> "Sample":
        """A sample with its epoch filled in (bulk_create does not call save())."""
        return cls(
            metric_id=metric_id,
            category=category,
            at=at,
            at_ms=int(at.timestamp() * 1000),
            value=value,
        )


class SampleMinute(models.Model):
    """Samples rolled up per minute: a chart of a long range reads a row per minute instead of
    one per sample (a day of one-second samples is 60 times fewer rows). Built from Sample by
    history.roll_up; the newest minutes are read from Sample until they are rolled up."""

    metric_id = models.CharField(max_length=200)
    category = models.CharField(max_length=500, blank=True)
    minute_ms = models.BigIntegerField()  # epoch milliseconds of the minute's start
    low = models.FloatField(null=True)
    high = models.FloatField(null=True)
    first_ms = models.BigIntegerField()  # the minute's first and last sample
    last_ms = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["metric_id", "category", "minute_ms"], name="one_sample_minute"
            )
        ]
        indexes = [
            models.Index(fields=["metric_id", "minute_ms"]),
            models.Index(fields=["minute_ms"]),  # the newest rolled-up minute, and pruning
        ]

    def __str__(self) -> str:
        return f"{self.metric_id}/{self.category} minute {self.minute_ms}: {self.low}-{self.high}"


class Board(models.Model):
    """A wall-board: a titled grid of tiles."""

    THEMES = [("dark", "Dark"), ("light", "Light")]

    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=200, blank=True, help_text="Shown on the board.")
    theme = models.CharField(max_length=10, choices=THEMES, default="dark")
    columns = models.PositiveSmallIntegerField(
        default=4, validators=[MinValueValidator(1), MaxValueValidator(12)]
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Tile(models.Model):
    """One tile of a board: a value, a breakdown of every category, or a trend chart."""

    KINDS = [
        ("value", "Value of one category"),
        ("breakdown", "All categories, sorted"),
        ("trend", "Trend chart"),
    ]
    FORMATS = [
        ("auto", "Automatic (count or mm:ss)"),
        ("count", "Count"),
        ("mmss", "mm:ss"),
        ("hmmss", "h:mm:ss"),
        ("percent", "Percent"),
    ]
    DIRECTIONS = [("above", "Higher is worse"), ("below", "Lower is worse")]

    board = models.ForeignKey(Board, related_name="tiles", on_delete=models.CASCADE)
    order = models.PositiveIntegerField(default=0)
    kind = models.CharField(max_length=20, choices=KINDS, default="value")
    metric = models.ForeignKey(Metric, on_delete=models.PROTECT)
    category = models.CharField(
        max_length=500, blank=True, help_text="For a value or trend tile; empty for NONE metrics."
    )
    categories = models.JSONField(
        default=list,
        blank=True,
        help_text='For a breakdown: only these categories, e.g. ["Sales", "Support"]; '
        "empty: every category of the metric.",
    )
    title = models.CharField(max_length=200, blank=True, help_text="Default: the metric name.")
    format = models.CharField(max_length=10, choices=FORMATS, default="auto")
    width = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(12)]
    )
    height = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(6)]
    )
    direction = models.CharField(max_length=10, choices=DIRECTIONS, default="above")
    warning = models.FloatField(
        null=True, blank=True, help_text="Counts as they are; durations in seconds."
    )
    critical = models.FloatField(
        null=True, blank=True, help_text="Counts as they are; durations in seconds."
    )
    targets = models.JSONField(
        default=dict,
        blank=True,
        help_text='Per-queue thresholds, e.g. {"Sales": {"warning": 30, "critical": 60}}.',
    )
    trend_hours = models.PositiveSmallIntegerField(
        default=4, validators=[MinValueValidator(1), MaxValueValidator(24)]
    )

    class Meta:
        ordering = ["board", "order", "id"]

    def __str__(self) -> str:
        return self.title or f"{self.metric.name} {self.category}".strip()

    def clean(self) -> None:
        errors = {}
        if (
            self.direction == "above"
            and None not in (self.warning, self.critical)
            and self.critical < self.warning
        ):
            errors["critical"] = "With 'higher is worse', critical must not be below warning."
        if (
            self.direction == "below"
            and None not in (self.warning, self.critical)
            and self.critical > self.warning
        ):
            errors["critical"] = "With 'lower is worse', critical must not be above warning."
        if not isinstance(self.targets, dict) or not all(
            isinstance(limits, dict)
            and set(limits) <= {"warning", "critical"}
            and all(isinstance(v, int | float) for v in limits.values())
            for limits in self.targets.values()
        ):
            errors["targets"] = 'Use {"queue": {"warning": number, "critical": number}}.'
        if not isinstance(self.categories, list) or not all(
            isinstance(c, str) for c in self.categories
        ):
            errors["categories"] = "A list of category values (strings)."
        elif self.categories and self.kind != "breakdown":
            errors["categories"] = "Only a breakdown shows a list of categories."
        elif self.categories and self.metric_id:
            unlisted = [c for c in self.categories if c not in self.metric.categories]
            if unlisted:
                errors["categories"] = f"{self.metric.name} has no category {unlisted[0]!r}."
        if self.kind != "breakdown" and self.metric_id and self.category:
            metric = self.metric
            if metric.category_type != "NONE" and self.category not in metric.categories:
                errors["category"] = f"{metric.name} has no category {self.category!r}."
        if errors:
            raise ValidationError(errors)


class Playlist(models.Model):
    """Boards shown in turn on one display."""

    name = models.CharField(max_length=200)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who made it in the designer (a supervisor edits their own playlists).",
    )

    def __str__(self) -> str:
        return self.name


class PlaylistItem(models.Model):
    playlist = models.ForeignKey(Playlist, related_name="items", on_delete=models.CASCADE)
    board = models.ForeignKey(Board, on_delete=models.CASCADE)
    order = models.PositiveIntegerField(default=0)
    seconds = models.PositiveIntegerField(default=30, validators=[MinValueValidator(5)])

    class Meta:
        ordering = ["playlist", "order", "id"]

    def __str__(self) -> str:
        return f"{self.board} for {self.seconds} s"


class DisplayLink(models.Model):
    """A long, revocable link that opens one board (or playlist) on a TV with no login.

    Only a hash of the token is stored; the token itself is shown once, when it is made."""

    name = models.CharField(max_length=200, help_text="Where it is, e.g. 'TV by the door'.")
    board = models.ForeignKey(Board, null=True, blank=True, on_delete=models.CASCADE)
    playlist = models.ForeignKey(Playlist, null=True, blank=True, on_delete=models.CASCADE)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_seen_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Who made it (the admin, or "send to a screen"); the screens page says so.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if (self.board_id is None) == (self.playlist_id is None):
            raise ValidationError("Choose a board or a playlist (one of them).")

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def group(self) -> str:
        """The channel group of every socket opened with this link (to close them on revoke)."""
        return f"display.{self.pk}"


# What a widget text may hold: these placeholders, each as it is. No format spec, conversion,
# index or attribute: str.format would run them ("{minutes:>99999999}" builds 100 MB).
WIDGET_PLACEHOLDERS = ("wait", "ahead", "callers", "minutes")
# {callers}: "1 caller" or "5 callers", from the widget's own two words (any language).
CALLERS_PLACEHOLDERS = ("ahead",)
# A widget colour: #rrggbb and nothing else, since it goes into the embedding site's page as CSS.
HEX_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
# An origin a widget allows: scheme://host[:port] and nothing else, since it goes into a CSP
# header and is compared with the browser's Origin header as it is.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
ORIGIN = re.compile(rf"https?://(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-f:.]+\])(?::[0-9]{{1,5}})?")


def widget_text_error(text: str, placeholders: tuple[str, ...] = WIDGET_PLACEHOLDERS) -> str | None:
    """Why `text` cannot be a widget text, or None when it can."""
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError:
        return "Unbalanced braces (write {{ or }} for a brace itself)."
    for _, field, spec, conversion in parts:
        if field is not None and (field not in placeholders or spec or conversion):
            names = ", ".join(f"{{{name}}}" for name in placeholders)
            return f"Use only {names} as placeholders, as they are."
    return None


def _hex_color(value: str) -> None:
    if not HEX_COLOR.fullmatch(value or ""):
        raise ValidationError(f"Not a colour: {value!r} (write #rrggbb, e.g. #1a7f37).")


class Widget(models.Model):
    """A public wait-time widget: "Current wait: about 3 min · 5 callers ahead".

    Its payload is computed from the live state only (never from the upstream) and holds only
    the wording and the rounded numbers, nothing else."""

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    wait_metric = models.ForeignKey(
        Metric, on_delete=models.PROTECT, related_name="+", help_text="A duration or average."
    )
    wait_category = models.CharField(max_length=500, blank=True)
    queue_metric = models.ForeignKey(
        Metric,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        help_text="Callers ahead: a count, e.g. Calls in Queue.",
    )
    queue_category = models.CharField(max_length=500, blank=True)
    agents_metric = models.ForeignKey(
        Metric,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        help_text="Agents available or logged in: the queue counts as closed when it is 0.",
    )
    agents_category = models.CharField(max_length=500, blank=True)
    high_demand_seconds = models.PositiveIntegerField(
        default=600, help_text="From this wait on, the widget says high demand."
    )
    min_calls = models.PositiveIntegerField(
        default=3, help_text="An average over fewer calls than this is not shown."
    )
    round_to_minutes = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(30)]
    )
    lang = models.CharField(max_length=20, default="en")
    text_open = models.CharField(max_length=300, default="Current wait: {wait} · {callers} ahead")
    text_high_demand = models.CharField(
        max_length=300, default="High demand: current wait {wait} · {callers} ahead"
    )
    text_one_caller = models.CharField(
        max_length=100, default="1 caller", help_text="{callers} when exactly one caller waits."
    )
    text_callers = models.CharField(
        max_length=100,
        default="{ahead} callers",
        help_text="{callers} otherwise ({ahead}: how many).",
    )
    text_closed = models.CharField(max_length=300, default="We are closed right now.")
    text_unknown = models.CharField(max_length=300, default="Wait time is not available right now.")
    text_under_a_minute = models.CharField(max_length=100, default="under 1 min")
    text_minutes = models.CharField(max_length=100, default="about {minutes} min")
    allowed_origins = models.TextField(
        blank=True,
        help_text="One origin per line (https://www.example.com) that may embed or fetch it.",
    )
    public = models.BooleanField(
        default=False, help_text="Any site may fetch and embed it (CORS *, without credentials)."
    )
    max_age_seconds = models.PositiveSmallIntegerField(default=5)
    # Its look, so that it matches the site it sits on (the embedding page may still override
    # each with a CSS custom property, see static/widget/widget.js).
    color_text = models.CharField(max_length=7, default="#14191f", validators=[_hex_color])
    color_background = models.CharField(max_length=7, default="#ffffff", validators=[_hex_color])
    color_open = models.CharField(
        max_length=7, default="#1a7f37", validators=[_hex_color], help_text="Border when open."
    )
    color_high_demand = models.CharField(
        max_length=7, default="#9a6700", validators=[_hex_color], help_text="Border in high demand."
    )
    color_closed = models.CharField(
        max_length=7,
        default="#6e7781",
        validators=[_hex_color],
        help_text="Border when closed or unknown.",
    )
    font_size = models.PositiveSmallIntegerField(
        default=16, validators=[MinValueValidator(10), MaxValueValidator(48)], help_text="Pixels."
    )
    corner_radius = models.PositiveSmallIntegerField(
        default=8, validators=[MaxValueValidator(32)], help_text="Pixels."
    )

    STYLE_FIELDS = (
        "color_text",
        "color_background",
        "color_open",
        "color_high_demand",
        "color_closed",
        "font_size",
        "corner_radius",
    )

    def __str__(self) -> str:
        return self.name

    def _origin_lines(self) -> list[str]:
        lines = self.allowed_origins.splitlines()
        return [line.strip().rstrip("/").lower() for line in lines if line.strip()]

    def origins(self) -> list[str]:
        """The allowed origins; a line saved before they were checked that is not one is left
        out (it would go into a header)."""
        return [origin for origin in self._origin_lines() if ORIGIN.fullmatch(origin)]

    def clean(self) -> None:
        errors = {}
        for field in ("wait_metric", "queue_metric", "agents_metric"):
            metric = getattr(self, field, None) if getattr(self, f"{field}_id") else None
            if metric is not None and not metric.public:
                errors[field] = f"{metric} is not marked public."
        for origin in self._origin_lines():
            if not ORIGIN.fullmatch(origin):
                errors["allowed_origins"] = f"Not an origin: {origin!r} (scheme://host[:port])."
        for field in ("text_open", "text_high_demand", "text_minutes"):
            error = widget_text_error(getattr(self, field))
            if error:
                errors[field] = error
        for field in ("text_one_caller", "text_callers"):
            error = widget_text_error(getattr(self, field), CALLERS_PLACEHOLDERS)
            if error:
                errors[field] = error
        if errors:
            raise ValidationError(errors)


class Team(models.Model):
    """Who sees what: supervisors see their team's queues and agents live and the boards shared
    with the team; viewers see the shared boards only. Staff (admins) see everything."""

    name = models.CharField(max_length=200, unique=True)
    queues = models.JSONField(
        default=list, blank=True, help_text='GROUP category values, e.g. ["Sales"].'
    )
    agents = models.JSONField(
        default=list, blank=True, help_text='AGENT category values, e.g. ["Ana García(201)"].'
    )
    supervisors = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="supervised_teams", blank=True
    )
    viewers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="viewed_teams", blank=True
    )
    boards = models.ManyToManyField(Board, related_name="teams", blank=True)

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        for field in ("queues", "agents"):
            value = getattr(self, field)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValidationError({field: "A list of category values (strings)."})


class AlertRule(models.Model):
    """'Tell me when Sales' longest wait is above 120 s for 30 s': checked every few seconds
    against the live state; fires once, then waits out its cooldown and quiet hours."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    name = models.CharField(max_length=200)
    metric = models.ForeignKey(Metric, on_delete=models.CASCADE)
    category = models.CharField(max_length=500, blank=True)
    direction = models.CharField(max_length=10, choices=Tile.DIRECTIONS, default="above")
    threshold = models.FloatField(help_text="Counts as they are; durations in seconds.")
    for_seconds = models.PositiveIntegerField(default=30)
    cooldown_minutes = models.PositiveIntegerField(default=15)
    quiet_start = models.TimeField(
        null=True, blank=True, help_text="No alerts from (the site's time zone)…"
    )
    quiet_end = models.TimeField(null=True, blank=True, help_text="…until (the site's time zone).")
    email = models.BooleanField(default=False, help_text="Also e-mail the owner.")
    webhook_url = models.URLField(blank=True, help_text="Also POST a JSON message here.")
    active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.name


class AlertEvent(models.Model):
    rule = models.ForeignKey(AlertRule, related_name="events", on_delete=models.CASCADE)
    fired_at = models.DateTimeField(auto_now_add=True)
    value = models.FloatField(null=True)
    message = models.CharField(max_length=500)

    class Meta:
        ordering = ["-fired_at"]

    def __str__(self) -> str:
        return self.message


class OIDCIdentity(models.Model):
    """The OpenID Connect subject (`sub`) a person signs in as. Users are matched on it alone:
    an e-mail is only the provider's word about an address, which may not even be checked."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oidc_identity"
    )
    sub = models.CharField(
        max_length=255, unique=True, help_text="The provider's `sub` claim for this person."
    )
    linked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "OIDC identity"
        verbose_name_plural = "OIDC identities"

    def __str__(self) -> str:
        return f"{self.sub} → {self.user}"
