"""Browser websockets: authenticate, join the live group, send a snapshot, then forward events.

Every message carries `server_time_ms` so the browser can correct for its own clock, and tile
records carry the global sequence number so it can detect a gap and ask for a fresh snapshot.
"""

import json
import time

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from metrics import live

MAX_INCOMING_BYTES = 1024


def server_time_ms() -> int:
    return time.time_ns() // 1_000_000


class BoardConsumer(AsyncWebsocketConsumer):
    group = live.ALL_GROUP

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)  # before accept: the handshake is refused
            return
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_snapshot()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # The only thing a browser may ask for is a fresh snapshot.
        if bytes_data is not None or text_data is None or len(text_data) > MAX_INCOMING_BYTES:
            await self.close(code=1009)
            return
        try:
            message = json.loads(text_data)
        except ValueError:
            message = None
        if isinstance(message, dict) and message.get("type") == "snapshot":
            await self.send_snapshot()

    async def send_json(self, message: dict) -> None:
        message["server_time_ms"] = server_time_ms()
        await self.send(text_data=json.dumps(message, separators=(",", ":")))

    async def send_snapshot(self) -> None:
        snapshot = await live.read_snapshot()
        stale_ms = int(settings.ACR_STALE_SECONDS * 1000)
        await self.send_json({"type": "snapshot", "stale_ms": stale_ms, **snapshot})

    async def tiles_update(self, event: dict) -> None:
        await self.send_json({"type": "tiles", "tiles": event["tiles"]})

    async def status_update(self, event: dict) -> None:
        await self.send_json({"type": "status", "status": event["status"]})

    async def catalog_update(self, event: dict) -> None:
        await self.send_json({"type": "catalog"})
