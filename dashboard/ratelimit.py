"""Rate limits shared by every web process: a fixed window per key, counted in Redis.

One round trip per hit (INCR and EXPIRE, pipelined); a key lives no longer than its window, so
Redis holds the current window's clients only. Windows follow the wall clock, the same in every
process.
"""

from __future__ import annotations

from metrics import live

PREFIX = live.PREFIX + "rate:"


async def hit(name: str, *, limit: int, window: int, now_ms: int) -> bool:
    """Counts a hit for `name`; True while it has had at most `limit` in the current window of
    `window` seconds (across every process)."""
    key = f"{PREFIX}{now_ms // (window * 1000)}:{name}"
    async with live.get_redis().pipeline(transaction=False) as pipe:
        pipe.incr(key)
        pipe.expire(key, window)
        count, _ = await pipe.execute()
    return count <= limit
