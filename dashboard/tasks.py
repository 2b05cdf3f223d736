"""Celery tasks of the screens side: alert rules, checked against the live state by beat, and
their webhooks, sent by a task of their own."""

from celery import shared_task

from dashboard import alerts, webhooks
from metrics.acr import clock
from metrics.tasks import run_async


@shared_task(ignore_result=True)
def check_alerts() -> int:
    return run_async(alerts.check_all, clock.now_ms())


@shared_task(ignore_result=True)
def send_webhooks(jobs: list[dict]) -> None:
    """The webhooks of one check, sent at once, each within webhooks.TOTAL_SECONDS."""
    run_async(webhooks.send_all, jobs)
