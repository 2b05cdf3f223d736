"""Drill: websockets to the upstream are refused on the way for the whole run (403).

The emulator starts with `--refuse-websockets 403` (a proxy that blocks upgrades: every
handshake answered 403, REST answers) and `--init-seconds 6` (a metric asked for the first time
is initializing for 6 s). Nothing is pushed: the REST polls (every ACR_POLL_SECONDS, the
documented `?id=A,B,C` form, the emulator strict) carry every tile.

What a user must see: every tile becomes live and stays right; a value changed upstream shows
within two poll periods; when the emulator reports the metrics initializing (`/_emulator/cold`
mid-run) the tiles say "initializing", never "stale"; `/health/` says degraded (not down) with
`websocket_blocked`, and the status page says the push channel is blocked.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import re
import time
from typing import Any

from bench.drills import runner
from bench.drills.observe import Truth, Watch, stop_watching, watch_board
from bench.drills.report import Result
from bench.drills.stack import BOARD_TILES, MARKER, Stack, wait_for

Key = tuple[str, str]
POLL_S = 5.0  # ACR_POLL_SECONDS of the stack
STATUS = 403
INIT_S = 6
CHANGE_TARGET_S = 2 * POLL_S
CHANGE_EVERY_S = 7.0  # not a multiple of the poll interval: changes land anywhere in it
CHANGES: list[tuple[Key, int]] = [
    (MARKER, 12),
    (("CANTOD01", ""), 500),
    (("AVLGRP01", "Billing"), 4),
    (MARKER, 13),
]


def label(key: Key) -> str:
    return f"{key[0]}/{key[1] or '-'}"


def all_right(watch: Watch) -> bool:
    """Every tile live and right, and no banner: with every tile right, a push channel blocked
    on the way is the status page's business, not the wall's."""
    return watch.all_live_and_true()


async def health_json(stack: Stack) -> tuple[int, dict[str, Any]]:
    response = await stack.http.get(f"{stack.base_url}/health/", timeout=5)
    return response.status_code, response.json()


async def status_page_text(stack: Stack) -> tuple[int, str]:
    """The status page as staff read it: its push-channel paragraph, as text."""
    response = await stack.staff_get("/status/")
    found = re.search(r'<p class="push-blocked">(.*?)</p>', response.text, re.S)
    text = html.unescape(re.sub(r"<[^>]+>", "", found.group(1))) if found else ""
    return response.status_code, " ".join(text.split())


async def change_values(stack: Stack, watch: Watch, truth: Truth) -> list[tuple[str, float | None]]:
    """Each change upstream, and how long until the TV shows it live."""
    took = []
    for key, value in CHANGES:
        at = time.monotonic()
        await stack.emulator.set_count(key, value)
        truth.set(key, value)
        watch.mark(f"upstream: {label(key)} = {value}")
        shown = await wait_for(
            lambda k=key, v=value: watch.state(k) == ("live", v), CHANGE_TARGET_S + 10, step=0.05
        )
        took.append((f"{label(key)}={value}", shown))
        await asyncio.sleep(max(0.0, at + CHANGE_EVERY_S - time.monotonic()))
    return took


async def drill(args: argparse.Namespace) -> list[Result]:
    async with Stack("websocket_blocked") as stack:
        await stack.start(
            emulator_args=("--refuse-websockets", str(STATUS), "--init-seconds", str(INIT_S))
        )
        truth = Truth(BOARD_TILES)
        client, watch, task = await watch_board(stack, truth, list(BOARD_TILES), texts=True)
        up_at = time.monotonic()
        watch.mark("stack up (web listening), websockets refused since the emulator started")
        try:
            first_live = await wait_for(lambda: all_right(watch), 90, step=0.05)
            if first_live is None:
                raise SystemExit(f"the board never became all live: see {stack.dir}")
            live_at = time.monotonic()
            await asyncio.sleep(2)
            banner = watch.banner()
            health = await health_json(stack)
            status_page = await status_page_text(stack)
            changes = await change_values(stack, watch, truth)

            cold_at = time.monotonic()
            watch.mark("/_emulator/cold: every metric initializing again")
            await stack.emulator.control("cold", {})
            initializing = await wait_for(
                lambda: any(watch.state(k)[0] == "initializing" for k in BOARD_TILES),
                2 * POLL_S + 5,
                step=0.05,
            )
            health_initializing = await health_json(stack) if initializing is not None else None
            live_again = await wait_for(lambda: all_right(watch), 60, step=0.05)
            live_again = None if live_again is None else time.monotonic() - cold_at
            await asyncio.sleep(2 * POLL_S)  # it stays right
            final = all_right(watch)
            stats = await stack.emulator.stats()
            stats["handshakes_refused"] = stack.log("subscriber").count("upstream refused")
        finally:
            await stop_watching(client, watch, task)
        times = {
            "up": up_at,
            "live": live_at,
            "first_live": first_live,
            "cold": cold_at,
            "initializing": initializing,
            "live_again": live_again,
            "banner": banner,
        }
        return [
            judge(
                stack, watch, times, health, health_initializing, status_page, changes, final, stats
            )
        ]


def judge(
    stack: Stack,
    watch: Watch,
    times: dict[str, Any],
    health: tuple[int, dict[str, Any]],
    health_initializing: tuple[int, dict[str, Any]] | None,
    status_page: tuple[int, str],
    changes: list[tuple[str, float | None]],
    final: bool,
    stats: dict[str, Any],
) -> Result:
    live_at, cold_at = times["live"], times["cold"]
    tiles = [f"tile {label(k)}" for k in BOARD_TILES]
    entries = [(t, e) for t, e in watch.timeline if t >= live_at]
    stale = [e for t, e in entries if any(e.startswith(f"{n}: stale") for n in tiles)]
    said_initializing = {
        n for t, e in entries if t >= cold_at for n in tiles if e.startswith(f"{n}: initializing")
    }
    down = [
        e for t, e in entries if e.startswith("/health/: ") and not e.startswith("/health/: 200")
    ]
    wrong = [w for w in watch.wrong if w[0] >= live_at]
    code, report = health
    upstream = report.get("upstream", {})
    page_code, page_text = status_page
    slowest = max((s for _, s in changes if s is not None), default=None)
    checks = {
        "every tile live and right": times["first_live"] is not None,
        f"each change shown within {CHANGE_TARGET_S:g} s (two polls)": all(
            s is not None and s <= CHANGE_TARGET_S for _, s in changes
        ),
        "initializing shown on every tile after /_emulator/cold": len(said_initializing)
        == len(tiles),
        "never stale once live": not stale,
        "live and right again after initializing": times["live_again"] is not None,
        "still live and right at the end": final,
        "no wrong number": not wrong,
        "/health/ 200 degraded, websocket_blocked 403": code == 200
        and report.get("status") == "degraded"
        and upstream.get("websocket_blocked") == STATUS,
        "/health/ never down once live": not down,
        "status page: the push channel is blocked": page_code == 200
        and page_text.startswith("The push channel is blocked"),
        "no websocket ever opened upstream": stats["ws_total"] == 0,
    }
    if health_initializing is not None:
        h_code, h_report = health_initializing
        checks["/health/ degraded (not down) while initializing"] = (
            h_code == 200 and h_report.get("status") == "degraded"
        )
    shown = ", ".join(
        f"{what} {s:.1f} s" if s is not None else f"{what} never" for what, s in changes
    )
    initializing = times["initializing"]
    saw = (
        f"every tile live and right {times['first_live']:.1f} s after the stack was up; "
        f"changes shown after {shown}; "
        + (
            f"after /_emulator/cold: 'initializing' at +{initializing:.1f} s on "
            f"{len(said_initializing)}/{len(tiles)} tiles, all live and right again at "
            f"+{times['live_again']:.1f} s"
            if initializing is not None and times["live_again"] is not None
            else "after /_emulator/cold: no initializing seen"
        )
        + f"; {'stale: ' + '; '.join(stale[:2]) if stale else 'never stale'}"
        + f"; TV banner while live: '{times['banner']}'"
        + f"; /health/ {code} {report.get('status')}, websocket_blocked "
        f"{upstream.get('websocket_blocked')}"
        + f"; status page: '{page_text[:90]}...'"
        + f"; {stats['handshakes_refused']} handshakes refused (subscriber log), "
        f"{stats['ws_total']} opened"
    )
    details = [f"{'ok' if ok else 'NOT MET'}: {check}" for check, ok in checks.items()]
    details += [f"wrong: {text}" for _, text in wrong[:3]]
    details.append(f"/health/ upstream: {upstream}")
    details.append(f"status page ({page_code}): {page_text}")
    details.append(f"emulator: {stats}")
    details.append(f"logs: {stack.dir}")
    details.append("timeline (s from the stack being up):\n" + watch.transcript(times["up"]))
    return Result(
        drill="websocket_blocked",
        injected=f"every websocket handshake answered {STATUS} for the whole run "
        f"(`--refuse-websockets {STATUS}`), REST answering; 4 values changed upstream; "
        f"`/_emulator/cold` mid-run (initializing {INIT_S} s)",
        saw=saw,
        recovery=(
            f"changes on the TV in <= {slowest:.1f} s"
            if slowest is not None
            else "a change never shown"
        ),
        target=f"every tile live and right by polling; each change <= {CHANGE_TARGET_S:g} s; "
        "initializing (not stale); /health/ degraded with websocket_blocked; status page says "
        "the push channel is blocked",
        passed=all(checks.values()),
        details=details,
        command=".venv/bin/python -m bench.drills.websocket_blocked",
    )


if __name__ == "__main__":
    runner.main(drill, __doc__.splitlines()[0], limit=240)
