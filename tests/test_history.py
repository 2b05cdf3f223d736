"""History samples: written in batches from the live state, never twice, pruned by age."""

from datetime import timedelta

import pytest
from django.utils import timezone

from metrics import services
from metrics.models import Sample

pytestmark = pytest.mark.django_db(transaction=True)


def duration(metric_id, category, finished, up, at, count=None):
    value = {"type": "DURATION", "finished_ms": finished, "up": up, "down": 0, "last_update_ms": at}
    if count is not None:
        value = {**value, "type": "AVERAGE_DURATION", "count": count}
    return {
        "metric_id": metric_id,
        "category": category,
        "state": "live",
        "error": "",
        "value": value,
        "upstream_ms": at,
        "source": "poll",
        "received_ms": at,
    }


async def test_live_tiles_are_sampled_once_per_moment(redis_db, settings):
    settings.ACR_SAMPLE_SECONDS = 10
    now = services.now_ms()
    await services.store_and_publish(
        [
            duration("LW", "Sales", 1000, 1, now - 5000),
            duration("AW", "Sales", 0, 0, now - 5000, count=0),
            {**duration("X", "", 0, 0, now), "state": "initializing", "value": None},
        ]
    )
    await services.report_subscription(True, "")

    assert await services.record_samples() == 2
    assert await services.record_samples() == 2  # a retry of the same moment

    samples = {s.metric_id: s async for s in Sample.objects.all()}
    assert set(samples) == {"LW", "AW"}
    moment_ms = samples["LW"].at.timestamp() * 1000
    assert moment_ms % 10_000 == 0
    assert samples["LW"].value == pytest.approx(1000 + (moment_ms - (now - 5000)))
    assert samples["AW"].value is None  # an average over zero calls is no number, not 0


async def test_nothing_is_sampled_while_the_data_is_stale(redis_db, settings):
    now = services.now_ms()
    await services.store_and_publish([duration("LW", "Sales", 1000, 1, now)])
    assert await services.record_samples() == 0  # no word from the upstream at all yet
    assert await Sample.objects.acount() == 0


def test_pruning_deletes_only_samples_past_the_retention(settings):
    settings.ACR_HISTORY_DAYS = 7
    now = timezone.now()
    for age in (timedelta(days=8), timedelta(days=7, minutes=1), timedelta(days=6, hours=23)):
        Sample.objects.create(metric_id="A", category="", at=now - age, value=1)
    assert services.prune_samples() == 2
    assert [s.at for s in Sample.objects.all()] == [now - timedelta(days=6, hours=23)]
