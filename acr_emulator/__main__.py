"""``python -m acr_emulator``: run the emulator until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys

from aiohttp import web

from acr_emulator.config import EmulatorConfig
from acr_emulator.faults import FLAGS, Faults, apply_faults
from acr_emulator.server import create_app

# Persistent faults that can be switched on at start-up (see POST /_emulator/faults).
FAULT_SWITCHES = FLAGS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m acr_emulator",
        description="Emulator of the Avaya Call Reporting (Chronicall) realtime metric API.",
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1")
    add("--port", type=int, default=8081)
    add("--auth-key", default=os.environ.get("ACR_AUTH_KEY"), help="default: $ACR_AUTH_KEY")
    add("--seed", type=int, default=1)
    add("--prefix", default="/rest/api/v1")
    add("--skew-ms", type=int, default=0, help="emulator clock minus host clock")
    add("--utc-offset", default="-06:00", help="offset used in lastUpdateTime")
    add("--scenario", choices=("demo", "static"), default="demo")
    add("--init-seconds", type=float, default=3.0)
    add("--cold-after-seconds", type=float, default=600.0)
    add("--not-ready-status", type=int, choices=(206, 400), default=206)
    add("--initializing-form", choices=("id", "combo", "object"), default="id")
    add("--none-category", choices=("empty", "null", "name"), default="empty")
    add("--demo-floor", type=float, default=45.0, help="minimum inbound calls/hour (demo)")
    add(
        "--demo-busy",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="every agent on shift and a busy call rate at any hour (demo); "
        "--no-demo-busy: the daily rota and curve",
    )
    add(
        "--strict",
        action="store_true",
        help="only the documented id forms: REST ?id=A,B (a repeated id reads as its first), "
        "websocket ?id=A&id=B (A,B is one unknown id)",
    )
    add("--log-level", default="WARNING")
    faults = parser.add_argument_group("faults (also settable via POST /_emulator/faults)")
    faults.add_argument("--latency-ms", type=int, default=0)
    faults.add_argument("--http-status", type=int, help="answer REST requests with this status")
    faults.add_argument("--http-status-count", type=int, help="only the next N REST requests")
    faults.add_argument(
        "--refuse-websockets",
        type=int,
        metavar="STATUS",
        help="answer every websocket handshake with this status (a proxy blocking upgrades)",
    )
    for name in FAULT_SWITCHES:
        faults.add_argument("--" + name.replace("_", "-"), action="store_true")
    return parser


def faults_from_args(args: argparse.Namespace) -> Faults:
    body: dict[str, object] = {name: True for name in FAULT_SWITCHES if getattr(args, name)}
    if args.latency_ms:
        body["latency_ms"] = args.latency_ms
    if args.http_status is not None or args.http_status_count is not None:
        body["http_status"] = args.http_status
        body["count"] = args.http_status_count
    if args.refuse_websockets is not None:
        body["refuse_websockets"] = args.refuse_websockets
    return apply_faults(Faults(), body)[0] if body else Faults()


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    return EmulatorConfig(
        auth_key=args.auth_key,
        host=args.host,
        port=args.port,
        seed=args.seed,
        prefix=args.prefix,
        skew_ms=args.skew_ms,
        utc_offset=args.utc_offset,
        scenario=args.scenario,
        init_seconds=args.init_seconds,
        cold_after_seconds=args.cold_after_seconds,
        not_ready_status=args.not_ready_status,
        initializing_form=args.initializing_form,
        none_category=args.none_category,
        demo_floor=args.demo_floor,
        demo_busy=args.demo_busy,
        strict=args.strict,
        faults=faults_from_args(args),
    )


def tune_gc() -> None:
    """Fewer, shorter garbage-collector pauses with thousands of sockets open.

    Each websocket keeps a hundred or so long-lived objects, so with 2,000 subscribers a full
    collection walks ~200k objects (~100 ms with the loop stopped). The start-up objects
    (modules, the app) never die: freeze them out of the collector's walk. A larger
    young-generation threshold lets the per-frame garbage of a fan-out die before a
    collection promotes it, which is what makes full collections come round.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


async def serve(config: EmulatorConfig) -> None:
    runner = web.AppRunner(create_app(config), handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, config.host, config.port).start()
        print(
            f"ACR emulator listening on http://{config.host}:{config.port}{config.prefix} "
            f"(scenario={config.scenario}, seed={config.seed})",
            flush=True,
        )
        tune_gc()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.auth_key:
        parser.error("an auth key is required: pass --auth-key or set ACR_AUTH_KEY")
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s %(message)s")
    try:
        asyncio.run(serve(config))
    except OSError as exc:
        print(f"ACR emulator could not start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
