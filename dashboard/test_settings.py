"""Settings for the test suite and the processes it starts: a Redis database of its own and a
file SQLite database that the web and Celery subprocesses can share with pytest."""

import os
from pathlib import Path

_base = Path(__file__).resolve().parent.parent
os.environ.setdefault("REDIS_URL", os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production")
os.environ.setdefault("DJANGO_DEBUG", "0")
os.environ.setdefault("SECURE_HTTPS", "0")

from dashboard.settings import *  # noqa: E402,F403
from dashboard.settings import DATABASES  # noqa: E402

DATABASES["default"].setdefault("TEST", {})
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # One file per Redis database, so that two runs kept apart by TEST_REDIS_URL share nothing.
    _redis_db = os.environ["REDIS_URL"].rstrip("/").rsplit("/", 1)[-1]
    DATABASES["default"]["TEST"]["NAME"] = str(_base / ".run" / f"test-db-{_redis_db}.sqlite3")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
