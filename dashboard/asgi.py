"""ASGI entry point: Django for HTTP, Channels for the browser websockets."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402 - needs Django set up first
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from dashboard.logfilters import route_daphne_access_log  # noqa: E402
from dashboard.routing import (  # noqa: E402
    DISPLAY_PREFIX,
    display_urlpatterns,
    websocket_urlpatterns,
)
from dashboard.widget.asgi import with_widget  # noqa: E402
from dashboard.wire import by_path, server_send  # noqa: E402
from metrics import gctune  # noqa: E402

route_daphne_access_log()  # under Daphne, its access lines pass the token filter too

application = ProtocolTypeRouter(
    {
        "http": with_widget(django_asgi_app),
        "websocket": server_send(
            AllowedHostsOriginValidator(
                by_path(
                    DISPLAY_PREFIX,
                    URLRouter(display_urlpatterns),
                    AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
                )
            )
        ),
    }
)

# Everything loaded so far lives as long as the process (metrics/gctune.py).
gctune.freeze_start_up_objects()
