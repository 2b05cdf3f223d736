"""The upstream subscriber: ONE websocket to the upstream for every catalog metric.

Run exactly one per site (`manage.py subscribe_upstream`). Browsers never connect upstream;
they get what this process stores and publishes.
"""

import asyncio
import logging

from django.conf import settings
from django.core.management.base import BaseCommand
from redis.exceptions import RedisError

from metrics import live, services
from metrics.acr import stream
from metrics.acr.client import UpstreamError

log = logging.getLogger(__name__)

CATALOG_REFRESH_SECONDS = 2.0
HEARTBEAT_SECONDS = 5.0


class Subscription:
    """What the subscriber knows: the catalog it subscribed with and whether it is connected."""

    def __init__(self) -> None:
        self.catalog: dict[str, dict] = {}
        self.subscribed_ids: list[str] = []
        self.connected = False

    def ids(self) -> list[str]:
        return sorted(self.catalog)

    def make_url(self) -> str | None:
        self.subscribed_ids = self.ids()
        if not self.subscribed_ids:
            return None
        return stream.subscription_url(
            settings.ACR_BASE_URL,
            settings.ACR_API_PREFIX,
            self.subscribed_ids,
            settings.ACR_AUTH_KEY,
        )

    def ids_changed(self) -> bool:
        return self.ids() != self.subscribed_ids

    async def refresh_catalog(self) -> None:
        try:
            catalog = await live.read_catalog()
            if catalog is None:
                catalog = await services.sync_catalog()
        except (UpstreamError, RedisError) as exc:
            log.warning("cannot read the catalog yet: %s", exc)
            return
        self.catalog = {metric["metric_id"]: metric for metric in catalog}

    async def refresh_forever(self) -> None:
        while True:
            await self.refresh_catalog()
            await asyncio.sleep(CATALOG_REFRESH_SECONDS)

    async def wait_for_ids(self) -> None:
        await asyncio.sleep(CATALOG_REFRESH_SECONDS)

    async def on_frame(self, raw: str | bytes) -> None:
        try:
            await services.ingest_frame(raw, self.catalog)
        except RedisError as exc:
            # The frame is lost: reconnect (with backoff), which resyncs everything over REST.
            raise stream.SubscriptionLost(f"live store unavailable: {exc}") from None

    async def on_status(self, connected: bool, error: str) -> None:
        self.connected = connected
        try:
            await services.report_subscription(connected, error)
        except RedisError as exc:
            if connected:
                raise stream.SubscriptionLost(f"live store unavailable: {exc}") from None
            log.warning("cannot record the subscription status: %s", exc)
            return
        if connected:
            log.info("subscribed to %d metrics", len(self.subscribed_ids))
            await self.resync()

    async def resync(self) -> None:
        """After any (re)connect, poll once so nothing that changed in the gap is missed."""
        try:
            await services.poll_values(self.subscribed_ids)
        except (UpstreamError, RedisError) as exc:
            log.warning("resync after connect failed: %s", exc)

    async def heartbeat_forever(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            if self.connected:
                try:
                    await services.report_subscription(True, "")
                except RedisError as exc:
                    log.warning("heartbeat not recorded: %s", exc)


async def run() -> None:
    subscription = Subscription()
    await subscription.refresh_catalog()
    background = [
        asyncio.create_task(subscription.refresh_forever()),
        asyncio.create_task(subscription.heartbeat_forever()),
    ]
    try:
        await stream.run_forever(
            subscription.make_url,
            subscription.on_frame,
            subscription.on_status,
            subscription.ids_changed,
            subscription.wait_for_ids,
        )
    finally:
        for task in background:
            task.cancel()


class Command(BaseCommand):
    help = "Holds the one websocket subscription to the upstream for all catalog metrics."

    def handle(self, *args, **options) -> None:
        if not settings.ACR_AUTH_KEY:
            log.warning("ACR_AUTH_KEY is empty: the upstream will refuse the subscription")
        asyncio.run(run())
