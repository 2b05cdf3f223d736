"""Pairing a TV by a short code: the code's rules (pure) and its short life in Redis.

A TV opens /tv/ and is given a code, bound to a random secret kept in an HttpOnly cookie of
that browser. A person who may send a board enters the code ("send to a screen"); a display
link is made and its token is stored with the code. Only the browser holding the secret takes
the token, once. Codes live PAIRING_TTL_SECONDS and are single use.
"""

from __future__ import annotations

import hashlib
import json
import secrets

from dashboard import ratelimit
from metrics import live
from metrics.acr import clock

# No letter or digit that reads as another on a TV across a room: no B/8, G/6, S/5, Z/2, Q, L.
# O and I are not shown either: a typed O means 0, a typed I or L means 1 (CONFUSABLE).
ALPHABET = "ACDEFHJKMNPRTUVWXY013479"
LENGTH = 6  # 24**6: 191 million codes
CONFUSABLE = str.maketrans({"O": "0", "Q": "0", "I": "1", "L": "1"})
SEPARATORS = str.maketrans("", "", " -_.\t")
TTL_SECONDS = 600
# New codes per client address per window (a flood of waiting codes would make a mistyped
# code likelier to reach a stranger's screen), and claims per user (guessing codes).
CREATE_LIMIT, CLAIM_LIMIT, LIMIT_WINDOW_SECONDS = 30, 10, 600
KEY = live.PREFIX + "pair:"
COOKIE = "tv_pairing"


class BadCode(ValueError):
    """A code that cannot be one we hand out (its message says why, to the person typing)."""


def generate_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def normalise_code(text: str) -> str:
    """The code someone typed, as we store it: case, spaces and dashes ignored, O read as 0 and
    I or L as 1."""
    code = text.upper().translate(SEPARATORS).translate(CONFUSABLE)
    if not code:
        raise BadCode("Enter the code shown on the screen.")
    wrong = sorted({c for c in code if c not in ALPHABET})
    if wrong:
        raise BadCode(f"A code has no {' '.join(wrong)}: check the code on the screen.")
    if len(code) != LENGTH:
        raise BadCode(f"A code has {LENGTH} characters; this has {len(code)}.")
    return code


def format_code(code: str) -> str:
    """ "ABC-123": two groups of three are easier to read across a room and to type."""
    half = len(code) // 2
    return f"{code[:half]}-{code[half:]}"


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def cookie_value(code: str, secret: str) -> str:
    return f"{code}:{secret}"


def parse_cookie(value: str | None) -> tuple[str, str] | None:
    """(code, secret) from the TV's cookie, or None for anything else."""
    code, _, secret = (value or "").partition(":")
    if len(code) != LENGTH or not set(code) <= set(ALPHABET) or not 20 <= len(secret) <= 100:
        return None
    return code, secret


# --- the codes in Redis: one JSON value per code, {"secret", "state", "token"} -----------------
# state: "waiting" for a claim, "claimed" (the token waits for its TV), "used" (handed over).

# Claims a waiting code for a token; answers "ok", "used" or "unknown" (none, or expired).
_CLAIM = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 'unknown' end
local entry = cjson.decode(raw)
if entry.state ~= 'waiting' then return 'used' end
entry.state = 'claimed'
entry.token = ARGV[1]
redis.call('SET', KEYS[1], cjson.encode(entry), 'KEEPTTL')
return 'ok'
"""

# Hands the token to the browser with the secret, once; answers the token or false.
_TAKE = """
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local entry = cjson.decode(raw)
if entry.secret ~= ARGV[1] or entry.state ~= 'claimed' then return false end
local token = entry.token
entry.state = 'used'
entry.token = nil
redis.call('SET', KEYS[1], cjson.encode(entry), 'KEEPTTL')
return token
"""


async def create(secret: str) -> str:
    """A new waiting code bound to `secret` (a fresh one if it happens to be taken)."""
    entry = json.dumps({"secret": secret_hash(secret), "state": "waiting"})
    redis = live.get_redis()
    while True:
        code = generate_code()
        if await redis.set(KEY + code, entry, ex=TTL_SECONDS, nx=True):
            return code


async def status(code: str, secret: str) -> tuple[str, int]:
    """("waiting" | "claimed" | "used" | "expired", seconds left) for the TV that holds
    `secret`; to anyone else a code is "expired"."""
    redis = live.get_redis()
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(KEY + code)
        pipe.ttl(KEY + code)
        raw, ttl = await pipe.execute()
    entry = json.loads(raw) if raw else None
    if entry is None or entry["secret"] != secret_hash(secret):
        return "expired", 0
    return entry["state"], max(ttl, 0)


async def claim(code: str, token: str) -> str:
    """Stores a display link's token with a waiting code: "ok", "used" or "unknown"."""
    return await live.get_redis().eval(_CLAIM, 1, KEY + code, token)


async def is_waiting(code: str) -> str:
    """ "waiting", "used" (claimed or used) or "unknown": whether a claim could succeed."""
    raw = await live.get_redis().get(KEY + code)
    if raw is None:
        return "unknown"
    return "waiting" if json.loads(raw)["state"] == "waiting" else "used"


async def take(code: str, secret: str) -> str | None:
    """The token of a claimed code, for the browser holding its secret, once."""
    token = await live.get_redis().eval(_TAKE, 1, KEY + code, secret_hash(secret))
    return token or None


async def may_create(client: str) -> bool:
    """Counts a new code for a client address; False past CREATE_LIMIT in the window."""
    return await ratelimit.hit(
        "pair:create:" + client,
        limit=CREATE_LIMIT,
        window=LIMIT_WINDOW_SECONDS,
        now_ms=clock.now_ms(),
    )


async def may_claim(user_id: int) -> bool:
    """Counts a code entered by a user; False past CLAIM_LIMIT in the window."""
    return await ratelimit.hit(
        f"pair:claim:{user_id}",
        limit=CLAIM_LIMIT,
        window=LIMIT_WINDOW_SECONDS,
        now_ms=clock.now_ms(),
    )
