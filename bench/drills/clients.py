"""A process holding many TVs (observe.BoardClient: board.js's reconnect policy) for the web
server restart drill. It prints one JSON line per event, {"c": client, "e": event, "t": wall time},
and stops when its stdin closes (or after --limit seconds).

    python -m bench.drills.clients --ws WS_URL --page PAGE_URL --first 0 --count 250
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import httpx

from bench.drills import observe
from bench.drills.observe import BoardClient
from bench.drills.stack import MARKER

BATCH = 25  # opened together, then wait: don't flood the accept queue while setting up


def watch_marker(client: int, message: dict, value: int) -> None:
    """Reports the arrival of the marker value the driver posts after the restart."""
    if message.get("type") == "records" and any(
        (record.get("value") or {}).get("count") == value
        and (record["metric_id"], record["category"]) == MARKER
        for record in message["records"]
    ):
        emit(client, "marker")


def emit(client: int, event: str) -> None:
    sys.stdout.write(json.dumps({"c": client, "e": event, "t": time.time()}) + "\n")


async def main(args: argparse.Namespace) -> None:
    observe.BACKOFF_CAP_MS = args.cap_ms  # a what-if; board.js's cap is the default
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)  # like browsers
    async with httpx.AsyncClient(limits=limits) as http:
        clients: list[BoardClient] = []
        tasks = []
        for n in range(args.count):
            index = args.first + n
            client = BoardClient(
                args.ws,
                args.page,
                http,
                on_event=lambda kind, i=index: emit(i, kind),
                on_message=lambda client, message, i=index: watch_marker(i, message, args.marker),
            )
            clients.append(client)
            tasks.append(asyncio.create_task(client.run()))
            if len(clients) % BATCH == 0:
                batch = clients[-BATCH:]
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and not all(c.snapshot_at for c in batch):
                    await asyncio.sleep(0.05)
                sys.stdout.flush()
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        flusher = asyncio.create_task(flush_forever())
        try:
            await asyncio.wait_for(reader.read(), args.limit)  # until stdin closes
        except TimeoutError:
            pass
        flusher.cancel()
        for client in clients:
            client.stopped = True
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        sys.stdout.flush()


async def flush_forever() -> None:
    while True:
        sys.stdout.flush()
        await asyncio.sleep(0.2)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ws", required=True)
    parser.add_argument("--page", required=True)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--count", type=int, default=250)
    parser.add_argument("--limit", type=float, default=600)
    parser.add_argument("--marker", type=int, default=12, help="marker count to report")
    parser.add_argument("--cap-ms", type=int, default=observe.BACKOFF_CAP_MS)
    asyncio.run(main(parser.parse_args()))
