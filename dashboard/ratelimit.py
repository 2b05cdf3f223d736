"""Rate limits shared by every web process: a fixed window per key, counted in Redis.

One round trip per hit (INCR and EXPIRE, pipelined); a key lives no longer than its window, so
Redis holds the current window's clients only. Windows follow the wall clock, the same in every
process.
"""

from __future__ import annotations

from metrics import live

PREFIX = live.PREFIX + "rate:"

# Keys this process found over their limit: refused without a round trip until their window
# ends (a count only grows within its window, so this is exact). A flood costs Redis nothing.
_over: set[str] = set()
OVER_KEPT = 10_000  # then forgotten at once (keys of past windows never match again anyway)


async def hit(name: str, *, limit: int, window: int, now_ms: int) -> bool:
    """Counts a hit for `name`; True while it has had at most `limit` in the current window of
    `window` seconds (across every process)."""
    key = f"{PREFIX}{now_ms // (window * 1000)}:{name}"
    if key in _over:
        return False
    async with live.get_redis().pipeline(transaction=False) as pipe:
        pipe.incr(key)
        pipe.expire(key, window)
        count, _ = await pipe.execute()
    if count > limit:
        if len(_over) >= OVER_KEPT:
            _over.clear()
        _over.add(key)
    return count <= limit
