"""Celery tasks of the pipeline: thin shells over metrics.ingest and metrics.history, scheduled
by beat (see CELERY_BEAT_SCHEDULE).

Upstream failures are already recorded in the live status by ingest, so they are not retried
here: the next scheduled poll is the retry, and expiring tasks never pile up.
"""

from asgiref.sync import async_to_sync
from celery import shared_task
from django.conf import settings

from metrics import history, ingest, live
from metrics.acr import clock
from metrics.acr.client import UpstreamError


def run_async(service, *args):
    """Runs an async service in this worker thread's own short-lived event loop."""

    async def main():
        try:
            return await service(*args)
        finally:
            await live.close_redis()

    return async_to_sync(main)()


@shared_task(ignore_result=True)
def sync_catalog() -> None:
    try:
        run_async(ingest.refresh_catalog)
    except UpstreamError:
        pass  # logged and shown as the upstream status by ingest


# A poll whose pool process died (OOM, SIGKILL) is run again once, at once: acknowledged only
# when done, and put back when its process is lost. Its expiry still drops a late redelivery.
@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def poll_values(ids: list[str] | None = None) -> list[str]:
    """Polls values; ids the upstream is still initializing are polled again soon."""
    try:
        initializing = run_async(ingest.poll_values, ids)
    except UpstreamError:
        return []
    if initializing:
        delay = settings.ACR_INITIALIZING_RETRY_SECONDS
        poll_values.apply_async(kwargs={"ids": initializing}, countdown=delay, expires=delay * 5)
    return initializing


@shared_task(ignore_result=True)
def record_samples() -> int:
    return run_async(history.record_samples)


@shared_task(ignore_result=True)
def prune_samples() -> int:
    return history.prune_samples()


@shared_task(ignore_result=True)
def roll_up_samples() -> int:
    return history.roll_up(clock.now_ms())
