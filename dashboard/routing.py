from django.urls import path

from dashboard.consumers import AlertConsumer, AllMetricsConsumer, BoardConsumer, DisplayConsumer

# A TV's display link is its only credential: its socket needs no session, no user, and none of
# the per-socket objects of the middleware that reads them (thousands of TVs, each held open).
DISPLAY_PREFIX = "/ws/display/"
display_urlpatterns = [
    path("ws/display/<str:token>/", DisplayConsumer.as_asgi()),
]

# The sockets of people who log in.
websocket_urlpatterns = [
    path("ws/boards/all/", AllMetricsConsumer.as_asgi()),
    path("ws/boards/<slug:slug>/", BoardConsumer.as_asgi()),
    path("ws/alerts/", AlertConsumer.as_asgi()),
]
