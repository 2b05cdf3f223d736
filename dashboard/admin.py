from asgiref.sync import async_to_sync
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from dashboard import boards
from dashboard.widget.embeds import embeds
from metrics import health
from metrics.models import (
    Board,
    DisplayLink,
    Metric,
    OIDCIdentity,
    Playlist,
    PlaylistItem,
    Team,
    Tile,
    Widget,
)


@admin.register(Metric)
class MetricAdmin(admin.ModelAdmin):
    list_display = ("name", "metric_id", "category_type", "in_catalog", "public", "updated_at")
    list_filter = ("category_type", "in_catalog", "public")
    list_editable = ("public",)
    search_fields = ("name", "metric_id")
    readonly_fields = ("metric_id", "name", "category_type", "categories", "in_catalog")

    def has_add_permission(self, request) -> bool:
        return False  # metrics come from the upstream's catalog

    def changelist_view(self, request, extra_context=None):
        # The upstream's status heads the metric list, in words an operator understands.
        report = async_to_sync(health.read_health)()
        return super().changelist_view(request, {**(extra_context or {}), "health": report})


class TileInline(admin.StackedInline):
    model = Tile
    extra = 0
    fields = (
        ("order", "kind", "metric", "category"),
        "categories",
        ("title", "format", "width", "height"),
        ("direction", "warning", "critical"),
        "targets",
        "trend_hours",
    )


@admin.register(Board)
class BoardAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "theme", "open_link")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [TileInline]
    change_form_template = "admin/metrics/board/change_form.html"

    @admin.display(description="Open")
    def open_link(self, board: Board) -> str:
        return format_html('<a href="{}">open board</a>', reverse("board", args=[board.slug]))


class PlaylistItemInline(admin.TabularInline):
    model = PlaylistItem
    extra = 1


@admin.register(Playlist)
class PlaylistAdmin(admin.ModelAdmin):
    list_display = ("name", "owner")
    inlines = [PlaylistItemInline]


@admin.register(DisplayLink)
class DisplayLinkAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "board",
        "playlist",
        "active",
        "created_by",
        "created_at",
        "last_seen_at",
    )
    list_filter = ("revoked_at",)
    fields = ("name", "board", "playlist", "created_by", "created_at", "revoked_at", "last_seen_at")
    readonly_fields = ("created_by", "created_at", "revoked_at", "last_seen_at")
    actions = ["revoke"]

    @admin.display(boolean=True)
    def active(self, link: DisplayLink) -> bool:
        return link.active

    def save_model(self, request, obj, form, change):
        if not change:
            token = boards.issue_token(obj)
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        if not change:
            url = request.build_absolute_uri(reverse("display", args=[token]))
            messages.success(
                request,
                format_html(
                    "Open this link on the display (it is shown only now): "
                    '<a id="display-url" href="{0}">{0}</a>',
                    url,
                ),
            )

    @admin.action(description="Revoke the selected display links (their screens go dark now)")
    def revoke(self, request, queryset):
        for link in queryset.filter(revoked_at=None):
            boards.revoke_display_link(link)
        messages.success(request, "Revoked.")


@admin.register(Widget)
class WidgetAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "public")
    prepopulated_fields = {"slug": ("name",)}
    change_form_template = "admin/metrics/widget/change_form.html"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        widget = self.get_object(request, object_id)
        snippets = {}
        if widget is not None:
            snippets = {e.label: e.code for e in embeds(widget.slug, request.build_absolute_uri)}
        context = {**(extra_context or {}), "snippets": snippets}
        return super().change_view(request, object_id, form_url, context)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name",)
    filter_horizontal = ("supervisors", "viewers", "boards")


@admin.register(OIDCIdentity)
class OIDCIdentityAdmin(admin.ModelAdmin):
    """Who signs in as whom through the OpenID Connect provider. Staff accounts are never linked
    by e-mail: add their provider `sub` here."""

    list_display = ("user", "sub", "linked_at")
    search_fields = ("user__username", "user__email", "sub")
    raw_id_fields = ("user",)
