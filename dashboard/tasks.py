"""Celery tasks of the screens side: alert rules, checked against the live state by beat."""

from celery import shared_task

from dashboard import alerts
from metrics.acr import clock
from metrics.tasks import run_async


@shared_task(ignore_result=True)
def check_alerts() -> int:
    return run_async(alerts.check_all, clock.now_ms())
