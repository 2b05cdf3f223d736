"""Writing record frames straight to a screen's socket, under the web server as shipped.

The fan-out sends the same frame to thousands of sockets at once. Through ASGI, each one costs a
chain of coroutines (Channels' session wrapper, the server's send) and the frame is built again
for every socket; that was two thirds of the web process's CPU at 2,000 screens. Under uvicorn's
sans-I/O websockets with no extension negotiated (dashboard/web.py turns compression off), a
server's frame is the same bytes for every socket, so the fan-out builds it once
(metrics.fanout.Update.wire) and this writes it to each socket's transport.

Anything else (Daphne, the test communicator, a negotiated extension) has no Wire, and the
consumer sends through ASGI, in order, from a task of its own.
"""

from __future__ import annotations

import logging
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

log = logging.getLogger(__name__)

# What a socket may have waiting to go out before the screen is taken for gone: 1 MiB is
# minutes of a board's frames. A screen that stops reading (a hung browser, a dead network path)
# is cut off here, and reconnects for a snapshot if it comes back; the others never wait for it.
MAX_WAITING_BYTES = 1024 * 1024


def server_send(app: Any) -> Any:
    """ASGI middleware: a websocket's scope carries the server's own send, under whatever
    wrappers (Channels' session middleware) the consumer's `send` goes through."""

    async def with_server_send(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            scope["server_send"] = send  # in place: a copy per socket is memory held open
        await app(scope, receive, send)

    return with_server_send


def by_path(prefix: str, matching: Any, other: Any) -> Any:
    """ASGI: the sockets whose path starts with `prefix` go to one app, the rest to the other
    (a TV's display socket skips the session and user middleware it has no use for)."""

    async def route(scope: dict, receive: Any, send: Any) -> None:
        app = matching if scope["path"].startswith(prefix) else other
        await app(scope, receive, send)

    return route


class Wire:
    """A socket's transport, for frames already encoded."""

    __slots__ = ("protocol",)

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self.protocol = protocol

    @classmethod
    def of(cls, scope: dict) -> Wire | None:
        protocol = getattr(scope.get("server_send"), "__self__", None)
        if not isinstance(protocol, WebSocketsSansIOProtocol) or protocol.conn.extensions:
            return None
        return cls(protocol)

    def write(self, frame: bytes) -> bool:
        """Writes the frame; False when the socket is closing (its disconnect follows) or was
        cut off for not reading."""
        protocol = self.protocol
        if protocol.close_sent or protocol.conn.state is not State.OPEN:
            return False
        transport = protocol.transport
        if transport.is_closing():
            return False
        if transport.get_write_buffer_size() > MAX_WAITING_BYTES:
            log.info("closed a screen's socket that stopped reading (1 MiB waiting)")
            transport.abort()  # the server sees the connection lost: the consumer disconnects
            return False
        transport.write(frame)
        return True
