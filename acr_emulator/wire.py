"""Small HTTP helpers shared by the documented API and the control API."""

from __future__ import annotations

import functools
import json
from typing import Any

from aiohttp import web

from acr_emulator.engine import Emulator

ENGINE = web.AppKey("engine", Emulator)

_dumps = functools.partial(json.dumps, ensure_ascii=False)


def error_response(status: int, message: str) -> web.Response:
    """A small JSON error body (the real server's error format is undocumented)."""
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return web.json_response({"error": message}, status=status, headers=headers, dumps=_dumps)


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)
