"""The Celery app; its settings are the CELERY_* names in dashboard.settings.

Beat is a singleton: only the beat that holds a Redis lease sends the schedule, so a second
beat (started by mistake, or on purpose as a standby) sends nothing until the first stops
renewing, then takes over within BEAT_LEASE_MS.
"""

import logging
import os
import time

from celery import Celery, bootsteps, signals
from celery.beat import PersistentScheduler

from metrics import observability

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

app = Celery("dashboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.beat_scheduler = "dashboard.celery:SingletonScheduler"
app.autodiscover_tasks()
observability.connect_celery_signals()  # task durations and failures, in one place

log = logging.getLogger(__name__)


@signals.setup_logging.connect
def use_django_logging(**_) -> None:
    """The worker and beat log as every other process does (settings.LOGGING, from
    dashboard/logconfig.py: LOG_LEVEL, LOG_FORMAT, token redaction, routine lines at DEBUG)
    rather than by Celery's own setup; their --loglevel is not used."""
    from django.conf import settings

    from dashboard import logconfig

    logconfig.apply(settings.LOGGING)


BEAT_LEASE_KEY = "acr:beat:lease"
BEAT_LEASE_MS = 10_000
BEAT_RENEW_SECONDS = 2.0


def _heartbeat_client():
    import redis
    from django.conf import settings

    # A short timeout: a heartbeat must not hold up the loop that writes it for long.
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def _now_ms() -> int:
    from metrics.acr.clock import now_ms

    return now_ms()


class WorkerHeartbeat(bootsteps.StartStopStep):
    """The worker's heartbeat (metrics.heartbeat), written by a timer of its consumer's event
    loop: it stops when the process dies or its loop hangs, not merely when a thread lives."""

    requires = {"celery.worker.consumer.tasks:Tasks"}  # once tasks are being consumed

    def __init__(self, parent, **kwargs) -> None:
        super().__init__(parent, **kwargs)
        self.timer_ref = None

    def start(self, parent) -> None:
        from metrics.heartbeat import BEAT_SECONDS, Heartbeat

        heart, client = Heartbeat("worker"), _heartbeat_client()
        beat = lambda: heart.beat(client, _now_ms())  # noqa: E731
        beat()
        self.timer_ref = parent.timer.call_repeatedly(BEAT_SECONDS, beat)

    def stop(self, parent) -> None:
        if self.timer_ref is not None:
            self.timer_ref.cancel()


app.steps["consumer"].add(WorkerHeartbeat)


class SingletonScheduler(PersistentScheduler):
    """The default scheduler, sending only while it holds the beat lease (redis-py's Lock)."""

    def __init__(self, *args, **kwargs) -> None:
        self.leased: bool | None = None  # None: not asked yet
        self.lease_checked = 0.0
        self._lease = None
        self._heart = None
        self.beat_at = 0.0
        super().__init__(*args, **kwargs)

    def tick(self, *args, **kwargs) -> float:
        if time.monotonic() - self.lease_checked >= BEAT_RENEW_SECONDS:
            self.lease_checked = time.monotonic()
            leased = self._hold_lease()
            if leased != self.leased:
                log.info("beat lease %s", "held: sending the schedule" if leased else "elsewhere")
            self.leased = leased
        self._heartbeat()
        if not self.leased:
            return BEAT_RENEW_SECONDS
        return min(super().tick(*args, **kwargs), BEAT_RENEW_SECONDS)

    def _heartbeat(self) -> None:
        """Beat's heartbeat (metrics.heartbeat), active or standby: tick runs every 2 s at most."""
        from metrics.heartbeat import BEAT_SECONDS, Heartbeat

        if time.monotonic() - self.beat_at < BEAT_SECONDS:
            return
        self.beat_at = time.monotonic()
        if self._heart is None:
            self._heart = (Heartbeat("beat"), _heartbeat_client())
        heart, client = self._heart
        heart.beat(client, _now_ms(), lease="held" if self.leased else "elsewhere")

    def _hold_lease(self) -> bool:
        """Renews the lease while this beat holds it, else tries to take it."""
        import redis
        from django.conf import settings

        try:
            if self._lease is None:
                client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)
                self._lease = client.lock(
                    BEAT_LEASE_KEY, timeout=BEAT_LEASE_MS / 1000, blocking=False
                )
            if self.leased:
                try:
                    return self._lease.reacquire()
                except redis.exceptions.LockNotOwnedError:
                    pass  # lost while this process was paused: take it again if free
            return self._lease.acquire()
        except redis.RedisError as exc:
            log.warning("cannot reach Redis for the beat lease: %s", exc)
            return False

    def close(self) -> None:
        try:
            if self._lease is not None and self.leased:
                self._lease.release()
        except Exception:  # noqa: BLE001, S110 - shutting down: the lease expires anyway
            pass
        super().close()
