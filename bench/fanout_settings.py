"""Test settings with the channel layer's Redis socket timeout lifted (bench/fanout.py
--fix-socket-timeout).

redis-py 8 reads with a 5 s socket timeout by default, the same as channels_redis's blocking
BZPOPMIN: a socket with nothing to receive for 5 s can crash with redis TimeoutError
(django/channels_redis#422, redis/redis-py#4091). This shows what the fan-out path does once
that is fixed, without changing dashboard/settings.py.
"""

from dashboard.test_settings import *  # noqa: F403
from dashboard.test_settings import CHANNEL_LAYERS, REDIS_URL

CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [{"address": REDIS_URL, "socket_timeout": None}]
