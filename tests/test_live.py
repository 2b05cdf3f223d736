"""The live store's write rule: what the upstream says now is the truth, except a poll's answer
that a newer record overtook while it was in flight. Real Redis."""

import pytest

from metrics import live
from tests.conftest import count_record


def counts(records: list[dict]) -> list[int]:
    return [r["value"]["count"] for r in records]


@pytest.mark.parametrize("source", ["websocket", "poll"])
async def test_an_older_timestamp_from_the_upstream_now_replaces_the_stored_value(redis_db, source):
    """A restarted, failed-over or re-pointed upstream, or one whose clock was corrected."""
    await live.write_records([count_record("A", "Sales", 5, 10_000)])
    asked = await live.redis_time_us() if source == "poll" else None
    accepted = await live.write_records([count_record("A", "Sales", 0, 4_000)], asked_us=asked)
    assert counts(accepted) == [0]


async def test_a_poll_answer_overtaken_in_flight_by_a_newer_record_is_dropped(redis_db):
    asked = await live.redis_time_us()
    await live.write_records([count_record("A", "Sales", 5, 10_000, source="websocket")])
    late = count_record("A", "Sales", 3, 9_000)
    assert await live.write_records([late], asked_us=asked) == []
    without_value = {**late, "state": "initializing", "value": None, "upstream_ms": -1}
    assert await live.write_records([without_value], asked_us=asked) == []
    # Newer by upstream time, it is news even if it was asked before.
    assert counts(
        await live.write_records([count_record("A", "Sales", 6, 11_000)], asked_us=asked)
    ) == [6]


async def test_a_repeat_is_not_stored_again(redis_db):
    record = count_record("A", "Sales", 5, 10_000)
    assert counts(await live.write_records([record])) == [5]
    assert await live.write_records([record]) == []
