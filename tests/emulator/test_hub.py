"""Fan-out: one slow or dead subscriber never holds up the others."""

from __future__ import annotations

import asyncio

from acr_emulator.hub import TOO_SLOW, Hub


class FakeSocket:
    def __init__(self, *, stall: bool = False, fail: bool = False) -> None:
        self.sent: list[str] = []
        self.stall, self.fail = stall, fail
        self.closed_with: int | None = None

    async def send_str(self, data: str) -> None:
        if self.fail:
            raise ConnectionResetError
        if self.stall:
            await asyncio.Event().wait()
        self.sent.append(data)

    async def close(self, *, code: int = 1000, message: bytes = b"") -> bool:
        self.closed_with = code
        return True


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_stalled_subscriber_is_dropped_and_the_others_still_receive():
    hub = Hub(send_timeout=0.05)
    healthy, stalled = FakeSocket(), FakeSocket(stall=True)
    subs = [hub.add(healthy, ["A"]), hub.add(stalled, ["A"])]
    for sub in subs:
        sub.pending.clear()
    pumps = [asyncio.create_task(hub.pump(sub)) for sub in subs]
    hub.publish("A", ["one", "two"])
    await settle()
    assert healthy.sent == ["one", "two"]
    await asyncio.sleep(0.1)
    assert stalled.closed_with == TOO_SLOW
    assert hub.subscribers == {subs[0]}
    hub.publish("A", ["three"])
    await settle()
    assert healthy.sent == ["one", "two", "three"]
    for pump in pumps:
        pump.cancel()


async def test_a_subscriber_whose_queue_overflows_is_dropped():
    hub = Hub(max_queue=3)
    sock = FakeSocket()
    sub = hub.add(sock, ["A"])
    sub.pending.clear()
    hub.publish("A", ["1", "2", "3", "4"])  # nobody pumps: the queue fills up
    await settle()
    assert sub.dropped and sock.closed_with == TOO_SLOW
    assert hub.metric_ids() == set()


async def test_a_failed_send_drops_the_subscriber():
    hub = Hub()
    sock = FakeSocket(fail=True)
    sub = hub.add(sock, ["A"])
    sub.pending.clear()
    pump = asyncio.create_task(hub.pump(sub))
    hub.publish("A", ["x"])
    await settle()
    assert sub.dropped
    pump.cancel()


async def test_publish_skips_metrics_still_pending_and_other_metrics():
    hub = Hub()
    sock = FakeSocket()
    sub = hub.add(sock, ["A", "B"])
    sub.pending = {"B"}
    hub.publish("B", ["b"])
    hub.publish("C", ["c"])
    hub.publish("A", ["a"])
    assert sub.queue.qsize() == 1 and sub.queue.get_nowait() == "a"
