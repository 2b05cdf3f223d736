from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from dashboard import designer_views, scrape, views
from dashboard.screens import views as screens
from dashboard.widget import views as widget_views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("dashboard.accounts")),
    path("", views.home, name="home"),
    path("boards/all/", views.all_metrics_board, name="all-metrics"),
    path("team/", views.team, name="team"),
    path("boards/<slug:slug>/", views.board, name="board"),
    path("boards/<slug:slug>/tiles/<int:tile_id>/trend.json", views.board_trend),
    path("display/<str:token>/", views.display, name="display"),
    path("display/<str:token>/tiles/<int:tile_id>/trend.json", views.display_trend),
    path("catalog.json", designer_views.catalog_json, name="catalog"),
    path("tv/", screens.tv, name="tv"),
    path("tv/status.json", screens.tv_status, name="tv-status"),
    path("tv/open/", screens.tv_open, name="tv-open"),
    path("screens/", screens.screens, name="screens"),
    path("screens/send/", screens.send, name="send-to-screen"),
    path("screens/<int:link_id>/show/", screens.repoint, name="screen-repoint"),
    path("screens/<int:link_id>/revoke/", screens.revoke, name="screen-revoke"),
    path("screens/<int:link_id>/link/", screens.new_link, name="screen-link"),
    path("designer/", designer_views.board_list, name="designer"),
    path("designer/preview/", designer_views.preview, name="designer-preview"),
    path("designer/trend.json", designer_views.preview_trend, name="designer-trend"),
    path("designer/playlists/", designer_views.playlist_list, name="designer-playlists"),
    path("designer/playlists/<int:pk>/", designer_views.playlist_editor, name="designer-playlist"),
    path("designer/boards/<slug:slug>/", designer_views.board_editor, name="designer-board"),
    path("designer/boards/<slug:slug>/save/", designer_views.board_save, name="designer-save"),
    path(
        "designer/boards/<slug:slug>/duplicate/",
        designer_views.board_duplicate,
        name="designer-duplicate",
    ),
    path(
        "designer/boards/<slug:slug>/rename/", designer_views.board_rename, name="designer-rename"
    ),
    path(
        "designer/boards/<slug:slug>/delete/", designer_views.board_delete, name="designer-delete"
    ),
    path("demo/site/", views.demo_site, name="demo-site"),
    path("health/", views.health_check, name="health"),
    path("metrics", scrape.metrics, name="metrics"),  # Prometheus (dashboard/scrape.py)
    path("status/", views.status_page, name="status"),
    path("alerts/", views.alerts_page, name="alerts"),
    path("history/", views.history_page, name="history"),
    path("history/data.json", views.history_data, name="history-data"),
    path("history/data.csv", views.history_csv, name="history-csv"),
    # Answered by dashboard.widget.asgi in front of Django; routed so that it can be reversed.
    path("widget/<slug:slug>.json", widget_views.widget_json, name="widget-json"),
    path("widget/<slug:slug>/frame/", widget_views.widget_frame, name="widget-frame"),
    path("widgets/", widget_views.widget_list, name="widget-list"),
    path("widgets/new/", widget_views.widget_edit, name="widget-new"),
    path("widgets/<slug:slug>/", widget_views.widget_edit, name="widget-edit"),
    path("widgets/<slug:slug>/delete/", widget_views.widget_delete, name="widget-delete"),
]

if settings.OIDC_ENABLED:
    urlpatterns.insert(0, path("oidc/", include("mozilla_django_oidc.urls")))
