"""The live state in Redis: the catalog, the latest record per (metric, category), the upstream
status, and publishing changes to the browsers' channel group.

Every accepted write gets the next number of one global sequence, so a browser can tell when it
missed a message. A write older than what is stored (by upstream timestamp) is dropped, and a
write that repeats the stored value is not published again: the poll and the websocket may both
deliver the same value.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import weakref
from typing import Any, TypedDict

import redis.asyncio as aioredis
from django.conf import settings
from redis.asyncio.lock import Lock
from redis.exceptions import NoScriptError

from metrics import fanout
from metrics.acr.values import CatalogMetric
from metrics.records import Record

PREFIX = "acr:"
CATALOG = PREFIX + "catalog"
LIVE_TS = PREFIX + "live:ts"
LIVE_VALUE = PREFIX + "live:value"
LIVE_RECORD = PREFIX + "live:record"
LIVE_SEQ = PREFIX + "live:seq"
LIVE_ARRIVED = PREFIX + "live:arrived"
SEQ = PREFIX + "seq"
RECORD_SEQ = PREFIX + "record:seq"
STATUS = PREFIX + "status"
AGENTS = PREFIX + "agents"
CLOCK_BOUNDS = PREFIX + "clock:bounds"
LEASE = PREFIX + "subscriber:lease"
REFUSED = PREFIX + "refused"
INITIALIZING = PREFIX + "initializing"
CLOCK_BOUNDS_KEPT = 40

# Groups: every record update goes to its metric's group and to ALL_GROUP (the All-metrics
# board); status and catalog events go to every socket (metrics.fanout.STATUS).
ALL_GROUP = "live.all"


def metric_group(metric_id: str) -> str:
    """A valid group name for any metric id (ids are opaque strings)."""
    return "metric." + hashlib.sha256(metric_id.encode()).hexdigest()[:24]


# Only the subscriber holding the lease may write through it (a fencing token): a subscriber
# that hung and lost its lease cannot overwrite what its successor wrote.
#
# What the upstream says now is the truth: a record replaces the stored one even when its
# upstream time is older (the upstream restarted, failed over to a standby, had its clock
# corrected, or ACR_BASE_URL now names another server), and a record without a value
# (initializing, refused) replaces a value that the upstream no longer vouches for. Two
# exceptions:
# - a repeat (the same value at the same time: the poll and the websocket both deliver it) is
#   not stored or published again;
# - a poll reply (ARGV[2]: when it was asked, in µs on Redis's clock) that was in flight while a
#   record newer by upstream time arrived, is dropped: the stored record came after the
#   question, so it is newer news than the answer. That is the race the ordering guard is
#   for, and only a poll reply is held to it: a websocket frame is the upstream's word at the
#   moment it arrives. Arrival is stamped here with Redis's TIME, the same clock the asking
#   time is read from, so the comparison holds whichever hosts the writers run on.
_WRITE_SCRIPT = """
local fence, asked, n = ARGV[1], ARGV[2], tonumber(ARGV[3])
if fence ~= '' and redis.call('GET', KEYS[6]) ~= fence then return {-1} end
local results, messages, topics = {}, {}, {}
local function add(topic, text)
  if not messages[topic] then messages[topic] = {}; topics[#topics + 1] = topic end
  local list = messages[topic]
  list[#list + 1] = text
end
for i = 0, n - 1 do
  local b = 5 + i * 5
  local field, n_ms, compared = ARGV[b], tonumber(ARGV[b + 1]), ARGV[b + 2]
  local record, topic = ARGV[b + 3], ARGV[b + 4]
  local seq, rseq = 0, 0
  local skip = false
  local old = redis.call('HGET', KEYS[1], field)
  if old then
    local o = tonumber(old)
    if n_ms == o and redis.call('HGET', KEYS[2], field) == compared then skip = true
    elseif asked ~= '' and n_ms < o then
      local arrived = tonumber(redis.call('HGET', KEYS[8], field) or '0')
      if arrived >= tonumber(asked) then skip = true end
    end
  end
  if not skip then
    local now = redis.call('TIME')
    seq = redis.call('INCR', KEYS[5])
    rseq = redis.call('HINCRBY', KEYS[7], field, 1)
    redis.call('HSET', KEYS[1], field, ARGV[b + 1])
    redis.call('HSET', KEYS[2], field, compared)
    redis.call('HSET', KEYS[3], field, record)
    redis.call('HSET', KEYS[4], field, seq)
    redis.call('HSET', KEYS[8], field, tonumber(now[1]) * 1000000 + tonumber(now[2]))
    if ARGV[4] ~= '' then
      local text = string.sub(record, 1, -2) .. ',"rseq":' .. rseq .. ',"seq":' .. seq .. '}'
      add(topic, text)
      add(ARGV[4], text)
    end
  end
  results[#results + 1] = seq
  results[#results + 1] = rseq
end
for _, topic in ipairs(topics) do
  redis.call('PUBLISH', topic, '[' .. table.concat(messages[topic], ',') .. ']')
end
return results
"""
_WRITE_SHA = hashlib.sha1(_WRITE_SCRIPT.encode()).hexdigest()  # noqa: S324 - Redis names scripts so

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = (
    weakref.WeakKeyDictionary()
)


def get_redis() -> aioredis.Redis:
    """One client per event loop: Celery tasks each run in a fresh loop, a web process in one."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        # redis-py's default pool fails past 100 connections; hundreds of screens asking for a
        # snapshot at once (after a web restart) wait for a connection instead.
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.REDIS_URL, decode_responses=True, max_connections=100, timeout=10
        )
        client = aioredis.Redis.from_pool(pool)
        _clients[loop] = client
    return client


def record_field(metric_id: str, category: str) -> str:
    return f"{metric_id}\x1f{category}"


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


# --- catalog ---------------------------------------------------------------------------------


def catalog_to_wire(catalog: list[CatalogMetric]) -> list[dict[str, Any]]:
    return [
        {
            "metric_id": m.metric_id,
            "name": m.name,
            "category_type": m.category_type,
            "categories": list(m.categories),
        }
        for m in catalog
    ]


async def store_catalog(catalog: list[CatalogMetric]) -> bool:
    """Saves the catalog; True when it differs from the one stored before."""
    wire = _dumps(catalog_to_wire(catalog))
    old = await get_redis().set(CATALOG, wire, get=True)
    return old != wire


async def read_catalog() -> list[dict[str, Any]] | None:
    raw = await get_redis().get(CATALOG)
    return json.loads(raw) if raw else None


# --- records ---------------------------------------------------------------------------------


class LeaseLost(Exception):
    """A write was fenced off: this subscriber no longer holds the lease."""


async def write_records(
    records: list[Record], fence: str = "", asked_us: int | None = None, publish: bool = False
) -> list[Record]:
    """Stores records; returns the accepted ones, each with its sequence numbers.

    `asked_us` (from redis_time_us(), taken before the request): the records answer a poll
    sent then, and lose to a newer record that arrived meanwhile (see _WRITE_SCRIPT). With
    `fence`, the writes only happen while that token holds the subscriber lease (LeaseLost
    otherwise). With `publish`, the accepted records are PUBLISHed to their metrics' groups and
    the All-metrics group (metrics.fanout) by the same script: one round trip, and the messages
    leave in the order of their sequence numbers whichever writer wrote them.
    """
    if not records:
        return []
    redis = get_redis()
    keys = [LIVE_TS, LIVE_VALUE, LIVE_RECORD, LIVE_SEQ, SEQ, LEASE, RECORD_SEQ, LIVE_ARRIVED]
    args: list[Any] = [
        fence,
        "" if asked_us is None else asked_us,
        len(records),
        fanout.topic(ALL_GROUP) if publish else "",
    ]
    for record in records:
        args += [
            record_field(record["metric_id"], record["category"]),
            record["upstream_ms"],
            _dumps({k: record.get(k) for k in ("state", "value", "error")}),
            _dumps({k: v for k, v in record.items() if k not in ("seq", "rseq")}),
            fanout.topic(metric_group(record["metric_id"])),
        ]
    try:
        # EVALSHA straight away (redis-py's Script asks SCRIPT EXISTS first, a round trip on
        # every write of the live path); Redis forgets scripts when it restarts.
        results = await redis.evalsha(_WRITE_SHA, len(keys), *keys, *args)
    except NoScriptError:
        await redis.script_load(_WRITE_SCRIPT)
        results = await redis.evalsha(_WRITE_SHA, len(keys), *keys, *args)
    if results == [-1]:
        raise LeaseLost("the subscriber lease is held by another process")
    return [
        {**record, "seq": seq, "rseq": rseq}
        for record, seq, rseq in zip(records, results[::2], results[1::2], strict=True)
        if seq
    ]


async def redis_time_us() -> int:
    """Redis's clock in µs: what a poll's asking time is compared with (see _WRITE_SCRIPT)."""
    seconds, micros = await get_redis().time()
    return seconds * 1_000_000 + micros


async def read_snapshot() -> dict[str, Any]:
    """Catalog, every record with its sequence numbers (global `seq`, and `rseq`, its own
    (metric, category)'s: a browser that sees an update skip one missed it, whatever subset of
    records it is sent), the status and the global sequence, read in one transaction so they
    cover exactly what is returned."""
    async with get_redis().pipeline(transaction=True) as pipe:
        pipe.get(CATALOG)
        pipe.hgetall(LIVE_RECORD)
        pipe.hgetall(LIVE_SEQ)
        pipe.hgetall(RECORD_SEQ)
        pipe.hgetall(STATUS)
        pipe.get(SEQ)
        pipe.hgetall(AGENTS)
        catalog, stored, seqs, rseqs, status, seq, agents = await pipe.execute()
    records = [
        {**json.loads(raw), "seq": int(seqs.get(field, 0)), "rseq": int(rseqs.get(field, 0))}
        for field, raw in stored.items()
    ]
    return {
        "metrics": json.loads(catalog) if catalog else [],
        "records": records,
        "status": status_to_wire(status),
        "seq": int(seq or 0),
        "agents": agents,  # display name -> AgentId, from the upstream's agent mapping
    }


# --- status ------------------------------------------------------------------------------------


class Status(TypedDict):
    """The upstream's status as browsers get it (times on our clock, 0: never)."""

    poll_ok_ms: int
    poll_error: str
    ws_ok_ms: int
    ws_error: str
    ws_blocked: int  # the HTTP status websockets are refused with on the way (0: not blocked)
    catalog_ok_ms: int
    upstream_offset_ms: int  # upstream clock minus ours


def status_to_wire(raw: dict[str, str]) -> Status:
    """The upstream status as browsers get it."""
    return {
        "poll_ok_ms": int(raw.get("poll_ok_ms") or 0),
        "poll_error": raw.get("poll_error", ""),
        "ws_ok_ms": int(raw.get("ws_ok_ms") or 0),
        "ws_error": raw.get("ws_error", ""),
        "ws_blocked": int(raw.get("ws_blocked") or 0),
        "catalog_ok_ms": int(raw.get("catalog_ok_ms") or 0),
        "upstream_offset_ms": int(raw.get("upstream_offset_ms") or 0),
    }


async def read_status() -> dict[str, Any]:
    """The status with what only the server needs: a fingerprint of the key the upstream refused
    and when (even a fingerprint of the key never goes to a browser)."""
    raw = await get_redis().hgetall(STATUS)
    return {
        **status_to_wire(raw),
        "failed_key": raw.get("failed_key", ""),
        "failed_ms": int(raw.get("failed_ms") or 0),
    }


async def update_status(**fields: str | int) -> Status:
    redis = get_redis()
    await redis.hset(STATUS, mapping={k: str(v) for k, v in fields.items()})
    return status_to_wire(await redis.hgetall(STATUS))


# --- publishing ------------------------------------------------------------------------------


async def publish(event: dict[str, Any]) -> None:
    """Sends a status or catalog event ({"type": "status.update" | "catalog.update"}) to every
    socket, through metrics.fanout (a status comes with every poll)."""
    await fanout.publish_event(get_redis(), fanout.STATUS, event)


def is_record_group(group: str) -> bool:
    """Groups whose messages are record updates (carried by metrics.fanout)."""
    return group == ALL_GROUP or group.startswith("metric.")


async def close_redis() -> None:
    """Closes this loop's client; for callers that run a short-lived loop (Celery tasks)."""
    client = _clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()


# --- upstream clock --------------------------------------------------------------------------


async def add_clock_bounds(
    bounds: list[tuple[float, float, int]],
) -> list[tuple[float, float, int]]:
    """Keeps (low, high, observed_ms) bounds on the upstream clock offset; returns the kept
    ones, newest first."""
    redis = get_redis()
    async with redis.pipeline(transaction=True) as pipe:
        for bound in bounds:
            pipe.lpush(CLOCK_BOUNDS, json.dumps(bound))
        pipe.ltrim(CLOCK_BOUNDS, 0, CLOCK_BOUNDS_KEPT - 1)
        pipe.lrange(CLOCK_BOUNDS, 0, -1)
        *_, kept = await pipe.execute()
    return [tuple(json.loads(raw)) for raw in kept]


# --- the subscriber lease ----------------------------------------------------------------------


def subscriber_lease(ttl_ms: int) -> Lock:
    """The lease that makes one subscriber active: redis-py's Lock (renewed and released only
    by its holder). The token it is acquired with is also the fencing token of that
    subscriber's writes (write_records' `fence`), checked by the write script on the same key."""
    return get_redis().lock(LEASE, timeout=ttl_ms / 1000, blocking=False, thread_local=False)


async def lease_held() -> bool:
    """True when some subscriber holds the lease (one is active)."""
    return bool(await get_redis().exists(LEASE))


async def read_for_widget(fields: list[str]) -> tuple[list[dict[str, Any] | None], dict[str, Any]]:
    """The records at `fields` and the status, in one round trip."""
    async with get_redis().pipeline(transaction=False) as pipe:
        if fields:
            pipe.hmget(LIVE_RECORD, fields)
        pipe.hgetall(STATUS)
        *raw, status = await pipe.execute()
    found = [json.loads(r) if r else None for r in raw[0]] if fields else []
    return found, status_to_wire(status)


async def update_refused(refused: dict[str, str], answered: list[str]) -> dict[str, str]:
    """Keeps the catalog's metrics the upstream refuses (403/404: another service user's, or
    gone), with why, and forgets those it answered again; returns the refused ones."""
    async with get_redis().pipeline(transaction=True) as pipe:
        if answered:
            pipe.hdel(REFUSED, *answered)
        if refused:
            pipe.hset(REFUSED, mapping=refused)
        pipe.hgetall(REFUSED)
        *_, now_refused = await pipe.execute()
    return now_refused


async def update_initializing(
    initializing: list[str], answered: list[str]
) -> tuple[list[str], list[str]]:
    """Keeps which metrics the upstream says it is still initializing (206); returns (started,
    ended): those it newly says so of, and those of `answered` it no longer does. Per member,
    so that two polls at once never both report the same change."""
    async with get_redis().pipeline(transaction=False) as pipe:
        for metric_id in initializing:
            pipe.sadd(INITIALIZING, metric_id)
        for metric_id in answered:
            pipe.srem(INITIALIZING, metric_id)
        changed = await pipe.execute()
    started = [i for i, c in zip(initializing, changed, strict=False) if c]
    ended = [i for i, c in zip(answered, changed[len(initializing) :], strict=False) if c]
    return started, ended


async def read_refused() -> dict[str, str]:
    return await get_redis().hgetall(REFUSED)


async def store_agents(mapping: dict[str, str]) -> None:
    """Keeps the agent mapping, by display name (the AGENT category value)."""
    async with get_redis().pipeline(transaction=True) as pipe:
        pipe.delete(AGENTS)
        if mapping:
            pipe.hset(AGENTS, mapping={name: agent_id for agent_id, name in mapping.items()})
        await pipe.execute()
