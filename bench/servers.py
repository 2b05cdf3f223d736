"""The web servers a benchmark can start: the web process as shipped, or Daphne to compare.

Each entry gives the arguments after `python -m` for a port; the shipped one takes its port
from WEB_PORT, so pass that in the environment too."""

APP = "dashboard.asgi:application"

WEB_SERVERS = {
    "web": lambda port: ["dashboard.web"],  # as the Procfile runs it (uvicorn)
    "daphne": lambda port: ["daphne", "-b", "127.0.0.1", "-p", str(port), APP],
    "daphne-quiet": lambda port: ["daphne", "-v", "0", "-b", "127.0.0.1", "-p", str(port), APP],
}
