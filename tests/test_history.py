"""History samples: written in batches from the live state, never twice, pruned by age."""

from datetime import timedelta

import pytest
from django.utils import timezone

from metrics import history, ingest
from metrics.acr import clock
from metrics.models import Sample, SampleMinute

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


async def test_live_records_are_sampled_once_per_moment(redis_db, settings):
    settings.ACR_SAMPLE_SECONDS = 10
    now = clock.now_ms()
    await ingest.store_and_publish(
        [
            # 20 s settled: positive at any sampling moment of the last 10 s
            duration("LW", "Sales", 20_000, 1, now - 5000),
            duration("AW", "Sales", 0, 0, now - 5000, count=0),
            {**duration("X", "", 0, 0, now), "state": "initializing", "value": None},
        ]
    )
    await ingest.report_subscription(True, "")

    assert await history.record_samples() == 2
    assert await history.record_samples() == 2  # a retry of the same moment

    samples = {s.metric_id: s async for s in Sample.objects.all()}
    assert set(samples) == {"LW", "AW"}
    moment_ms = samples["LW"].at.timestamp() * 1000
    assert moment_ms % 10_000 == 0
    assert samples["LW"].value == pytest.approx(20_000 + (moment_ms - (now - 5000)))
    assert samples["AW"].value is None  # an average over zero calls is no number, not 0


async def test_nothing_is_sampled_while_the_data_is_stale(redis_db, settings):
    now = clock.now_ms()
    await ingest.store_and_publish([duration("LW", "Sales", 1000, 1, now)])
    assert await history.record_samples() == 0  # no word from the upstream at all yet
    assert await Sample.objects.acount() == 0


def test_pruning_deletes_only_samples_past_the_retention(settings):
    settings.ACR_HISTORY_DAYS = 7
    now = timezone.now()
    for age in (timedelta(days=8), timedelta(days=7, minutes=1), timedelta(days=6, hours=23)):
        Sample.objects.create(metric_id="A", category="", at=now - age, value=1)
    assert history.prune_samples() == 2
    assert [s.at for s in Sample.objects.all()] == [now - timedelta(days=6, hours=23)]


# --- per-minute rollups ------------------------------------------------------------------------

MINUTE = 60_000


def write_samples(start, seconds, every, value_of, categories=("Sales", "Support")):
    Sample.objects.bulk_create(
        (
            Sample.of("LW", category, start + timedelta(seconds=s), value_of(s, category))
            for s in range(0, seconds, every)
            for category in categories
        ),
        batch_size=5000,
    )


def roll_up_everything(now_ms):
    """Calls roll_up as beat would, until it has caught up (it re-rolls its newest minutes)."""
    before = -1
    while history.rolled_up_until() != before:
        before = history.rolled_up_until()
        history.roll_up(now_ms)


def test_a_long_range_reads_rollups_and_the_newest_samples_alike():
    """The chart of the last 6 h is the same whether its minutes come from the rollup, from the
    samples, or from both (the newest minutes are not rolled up yet)."""
    end = timezone.now().replace(microsecond=0)
    start = end - timedelta(hours=6)
    write_samples(start, 6 * 3600, 7, lambda s, c: (s * 13 + len(c)) % 997)
    everyone = None  # every category
    from_samples = history.series("LW", everyone, start, end)

    roll_up_everything(int((end - timedelta(minutes=20)).timestamp() * 1000))
    assert history.rolled_up_until() < end.timestamp() * 1000 - 19 * MINUTE
    assert history.series("LW", everyone, start, end) == from_samples  # rollup + samples

    roll_up_everything(int(end.timestamp() * 1000) + MINUTE)
    assert history.series("LW", everyone, start, end) == from_samples  # rollup only
    assert len(from_samples) == 2 and all(len(s["t"]) <= 2 * history.BUCKETS for s in from_samples)
    assert max(max(s["v"]) for s in from_samples) == 996  # peaks survive


def test_a_sample_written_a_little_late_still_reaches_its_minute():
    start = timezone.now().replace(second=0, microsecond=0) - timedelta(hours=1)
    write_samples(start, 3600, 10, lambda s, c: 1.0, categories=("Sales",))
    roll_up_everything(int((start + timedelta(hours=1)).timestamp() * 1000))
    late_at = start + timedelta(minutes=58, seconds=5)
    Sample.objects.create(metric_id="LW", category="Sales", at=late_at, value=50.0)
    roll_up_everything(int((start + timedelta(hours=1)).timestamp() * 1000))
    minute = SampleMinute.objects.get(minute_ms=int(late_at.timestamp() * 1000) - 5000)
    assert (minute.low, minute.high) == (1.0, 50.0)


def test_a_gap_longer_than_one_step_does_not_stall_the_rollup():
    now = timezone.now().replace(second=0, microsecond=0)
    write_samples(now - timedelta(days=3), 600, 10, lambda s, c: 1.0, categories=("Sales",))
    write_samples(now - timedelta(hours=1), 600, 10, lambda s, c: 2.0, categories=("Sales",))
    roll_up_everything(int(now.timestamp() * 1000))
    assert sorted(set(SampleMinute.objects.values_list("high", flat=True))) == [1.0, 2.0]
    assert SampleMinute.objects.count() == 20


def test_pruning_deletes_rollups_past_the_retention_too(settings):
    settings.ACR_HISTORY_DAYS = 7
    now = timezone.now().replace(second=0, microsecond=0)
    write_samples(now - timedelta(days=8), 120, 10, lambda s, c: 1.0, categories=("Sales",))
    write_samples(now - timedelta(days=6), 120, 10, lambda s, c: 1.0, categories=("Sales",))
    roll_up_everything(int(now.timestamp() * 1000))
    assert SampleMinute.objects.count() == 4
    history.prune_samples()
    kept = int((now - timedelta(days=6)).timestamp() * 1000)
    assert sorted(SampleMinute.objects.values_list("minute_ms", flat=True)) == [kept, kept + MINUTE]
