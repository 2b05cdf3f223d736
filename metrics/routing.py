from django.urls import path

from metrics.consumers import BoardConsumer

websocket_urlpatterns = [
    path("ws/boards/all/", BoardConsumer.as_asgi()),
]
