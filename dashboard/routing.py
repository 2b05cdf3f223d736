from django.urls import path

from dashboard.consumers import AlertConsumer, AllMetricsConsumer, BoardConsumer, DisplayConsumer

websocket_urlpatterns = [
    path("ws/boards/all/", AllMetricsConsumer.as_asgi()),
    path("ws/boards/<slug:slug>/", BoardConsumer.as_asgi()),
    path("ws/display/<str:token>/", DisplayConsumer.as_asgi()),
    path("ws/alerts/", AlertConsumer.as_asgi()),
]
