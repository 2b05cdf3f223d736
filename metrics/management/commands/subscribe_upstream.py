"""The upstream subscriber: ONE websocket to the upstream for every catalog metric.

Start one or more per site (`manage.py subscribe_upstream`): a Redis lease makes exactly one of
them active; the others wait as hot standbys and take over when the lease runs out (the active
one died or hung). Browsers never connect upstream; they get what the active one stores.
"""

import asyncio
import logging
import uuid

import uvloop
from django.conf import settings
from django.core.management.base import BaseCommand
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, LockNotOwnedError, RedisError

from metrics import gctune, heartbeat, ingest, live, observability
from metrics.acr import stream
from metrics.acr.client import UpstreamError
from metrics.acr.clock import Bounds, now_ms

log = logging.getLogger(__name__)

CATALOG_REFRESH_SECONDS = 2.0
HEARTBEAT_SECONDS = 5.0
# A standby takes over at most LEASE_TTL + STANDBY_RETRY after the active one stopped renewing.
LEASE_TTL_MS = 10_000
LEASE_RENEW_SECONDS = 3.0
STANDBY_RETRY_SECONDS = 2.0
# While the upstream refuses the key (a 401), how often to look whether the pause is over.
AUTH_PAUSE_CHECK_SECONDS = 1.0


class Subscription:
    """What the active subscriber knows: the catalog it subscribed with, whether it is
    connected, and what the frames tell of the upstream's clock."""

    def __init__(self, lease: Lock, fence: str) -> None:
        self.lease = lease
        self.fence = fence
        self.catalog: dict[str, dict] = {}
        self.refused: dict[str, str] = {}  # catalog metrics the upstream refuses (by REST)
        self.subscribed_ids: list[str] = []
        self.answered_ids: list[str] = []  # subscribed ids REST answered for, after a 403
        self.blocked = 0  # the status websockets are refused with on the way (0: not known to be)
        self.connected = False
        self.session = 0  # which websocket session a resync belongs to
        self.clock_bound: Bounds | None = None
        self.background: set[asyncio.Task] = set()

    def ids(self) -> list[str]:
        """The metrics to subscribe: one refused metric would refuse the whole socket (5.0's
        403), so those the upstream refuses are left out (and shown as errors by the polls)
        until a catalog refresh finds them answered again."""
        return sorted(set(self.catalog) - set(self.refused))

    def make_url(self) -> str | None:
        self.subscribed_ids = self.ids()
        if not self.subscribed_ids:
            return None
        return stream.subscription_url(
            settings.ACR_BASE_URL,
            settings.ACR_API_PREFIX,
            self.subscribed_ids,
            ingest.auth_key(),
        )

    def ids_changed(self) -> bool:
        return self.ids() != self.subscribed_ids

    async def refresh_catalog(self) -> None:
        try:
            self.catalog = await ingest.catalog_by_id()
            self.refused = await live.read_refused()
        except (UpstreamError, RedisError) as exc:
            log.warning("cannot read the catalog yet: %s", exc)

    async def refresh_forever(self) -> None:
        while True:
            stream.raise_if_cancelled()
            await self.refresh_catalog()
            await asyncio.sleep(CATALOG_REFRESH_SECONDS)

    async def wait_for_ids(self) -> None:
        await asyncio.sleep(CATALOG_REFRESH_SECONDS)

    async def on_frames(self, raws: list[str | bytes]) -> None:
        try:
            bound = await ingest.ingest_frames(raws, self.catalog, self.fence)
        except RedisError as exc:
            # The frames are lost: reconnect (with backoff), which resyncs everything over REST.
            raise stream.SubscriptionLost(f"live store unavailable: {exc}") from None
        if bound is not None and (self.clock_bound is None or bound.low > self.clock_bound.low):
            self.clock_bound = bound

    async def on_status(self, connected: bool, error: str) -> None:
        self.session += 1
        self.connected = False
        if not connected:
            if self.blocked:
                return  # known to be blocked on the way: said once, not again at every retry
            try:
                await ingest.report_subscription(False, error)
            except RedisError as exc:
                log.warning("cannot record the subscription status: %s", exc)
            return
        log.info("subscribed to %d metrics", len(self.subscribed_ids))
        # The websocket is reported connected only after the resync: that status makes
        # browsers trust the values they hold, which may be from before the gap. In its own
        # task: frames keep flowing meanwhile, and a cancellation of the session never lands
        # inside the HTTP client.
        task = asyncio.create_task(self.resync(self.session))
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def on_refused(self, status: int) -> None:
        """A refused handshake. 401: the key is paused as after a REST 401, and no handshake is
        tried until the pause is over or the key changed. 403: some metric may be refused; a
        poll of the subscribed ids finds which (the REST batch is split until they are
        isolated), and the next handshake leaves them out. When REST answers for every one of
        them, or for any other status, something between us and the upstream refuses
        websockets: the status says the push channel is blocked, and polling carries every
        record."""
        try:
            if status == 401:
                await ingest.report_auth_refused(
                    "upstream refused the auth key on the websocket (401): check ACR_AUTH_KEY"
                )
                while await ingest.auth_paused():
                    await asyncio.sleep(AUTH_PAUSE_CHECK_SECONDS)
                return
            if self.subscribed_ids != self.answered_ids:
                # Also brings every record up to date at once, rather than at the next poll.
                await ingest.poll_values(self.subscribed_ids, self.fence)
                await self.refresh_catalog()
                if status == 403 and self.ids_changed():
                    log.warning("left out of the subscription, refused: %s", sorted(self.refused))
                    return
                self.answered_ids = list(self.subscribed_ids)  # no poll per retry from now on
            if status != self.blocked:
                log.warning(
                    "websockets are refused on the way (%d) while REST answers: polling carries "
                    "every tile until a handshake succeeds",
                    status,
                )
                await ingest.report_push_blocked(status)
                self.blocked = status
        except (UpstreamError, RedisError) as exc:
            log.warning("cannot tell why the websocket was refused: %s", exc)

    async def resync(self, session: int) -> None:
        """After any (re)connect, poll once so nothing that changed in the gap is missed; then
        report the websocket connected, unless it dropped meanwhile."""
        try:
            await ingest.poll_values(self.subscribed_ids, self.fence)
        except (UpstreamError, RedisError) as exc:
            log.warning("resync after connect failed: %s", exc)
        except live.LeaseLost:
            log.error("resync fenced off: another subscriber is active")
            return
        if session != self.session:
            return
        self.connected = True  # from now on the heartbeat reports it too
        self.blocked = 0
        try:
            await ingest.report_subscription(True, "")
        except RedisError as exc:
            log.warning("cannot record the subscription status: %s", exc)

    async def heartbeat_forever(self) -> None:
        while True:
            stream.raise_if_cancelled()
            await asyncio.sleep(HEARTBEAT_SECONDS)
            if not self.connected:
                continue
            try:
                if not await self.lease.owned():
                    continue  # a paused-and-resumed subscriber must not speak for the site
                await ingest.report_subscription(True, "")
                if self.clock_bound is not None:
                    await ingest.observe_clock([self.clock_bound])
                    self.clock_bound = None
            except RedisError as exc:
                log.warning("heartbeat not recorded: %s", exc)


async def hold_lease(lease: Lock) -> None:
    """Renews the lease until it is lost (returns), e.g. after this process was paused."""
    while True:
        await asyncio.sleep(LEASE_RENEW_SECONDS)
        try:
            await lease.reacquire()
        except LockNotOwnedError:
            log.error("lost the subscriber lease: going back to standby")
            observability.LEASE_CHANGES.labels("lost").inc()
            return
        except RedisError as exc:
            log.warning("cannot renew the subscriber lease: %s", exc)


async def serve_while_leased(lease: Lock, token: str) -> None:
    """Holds the upstream subscription for as long as this process holds the lease."""
    subscription = Subscription(lease, fence=token)
    await subscription.refresh_catalog()
    tasks = [
        asyncio.create_task(hold_lease(lease)),
        asyncio.create_task(subscription.refresh_forever()),
        asyncio.create_task(subscription.heartbeat_forever()),
        asyncio.create_task(stream.run_forever(subscription)),
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                if not isinstance(task.exception(), live.LeaseLost):
                    raise task.exception()
                log.error("a write was fenced off: another subscriber is active")
    finally:
        tasks += subscription.background
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def run() -> None:
    token = uuid.uuid4().hex
    lease = live.subscriber_lease(LEASE_TTL_MS)
    waiting_logged = False
    try:
        while True:
            try:
                leased = await lease.acquire(token=token)
            except RedisError as exc:
                log.warning("cannot reach Redis for the subscriber lease: %s", exc)
                leased = False
            if not leased:
                if not waiting_logged:
                    log.info("another subscriber is active: waiting as a standby")
                    waiting_logged = True
                await asyncio.sleep(STANDBY_RETRY_SECONDS)
                continue
            log.info("holding the subscriber lease: this subscriber is active")
            observability.LEASE_CHANGES.labels("taken").inc()
            waiting_logged = False
            await serve_while_leased(lease, token)
    finally:
        try:
            await asyncio.shield(lease.release())
        except (LockError, RedisError, asyncio.CancelledError):
            pass  # not held, or already expired: nothing to give back


class Command(BaseCommand):
    help = "Holds the one websocket subscription to the upstream for all catalog metrics."

    def handle(self, *args, **options) -> None:
        if not ingest.auth_key():
            log.warning("ACR_AUTH_KEY is empty: the upstream will refuse the subscription")
        gctune.freeze_start_up_objects()  # Django is loaded: out of the collector's scans
        try:
            # uvloop, as the web processes run: every update goes through this loop first.
            uvloop.run(run_until_terminated())
        except (KeyboardInterrupt, asyncio.CancelledError):
            pass


async def run_until_terminated() -> None:
    """SIGTERM cancels the run, so the lease is released and a standby takes over at once."""
    import signal

    task = asyncio.current_task()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    alive = asyncio.create_task(heartbeat_forever())
    try:
        await run()
    finally:
        alive.cancel()


async def heartbeat_forever() -> None:
    """This process's heartbeat (metrics.heartbeat: `manage.py healthcheck subscriber`), active
    or standby, from the event loop that does the work: a hung loop lets it expire."""
    heart = heartbeat.Heartbeat("subscriber")
    while True:
        await heart.abeat(live.get_redis(), now_ms())
        await asyncio.sleep(heartbeat.BEAT_SECONDS)
