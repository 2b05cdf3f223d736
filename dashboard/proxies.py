"""Who the client is behind reverse proxies: one rule for the login throttle, the widget's rate
limit and the single sign-on header's check.

The web server keeps proxy headers off (dashboard/web.py), so the peer address is the direct
client. X-Forwarded-For is believed only when that peer is in TRUSTED_PROXIES, and then the
client is the right-most address in it that is not a trusted proxy: every hop appends the
address it saw, so the entries left of the first untrusted one are whatever the client wrote.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=4)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def in_networks(address: str | None, entries: list[str]) -> bool:
    """True when `address` is one of `entries` (addresses or networks); False for junk."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(ip in network for network in _networks(tuple(entries)))


def is_trusted(address: str | None) -> bool:
    """True when `address` is one of TRUSTED_PROXIES (an address or a network)."""
    return in_networks(address, settings.TRUSTED_PROXIES)


def client_address(peer: str, forwarded_for: str | None) -> str:
    """The client's address: the peer itself, or behind trusted proxies the right-most address
    of X-Forwarded-For that is not a trusted proxy (the left-most one when all of them are)."""
    if not forwarded_for or not is_trusted(peer):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            return _valid(hop, peer)
    return _valid(hops[0], peer) if hops else peer


def _valid(hop: str, peer: str) -> str:
    """A hop that is not an address (a proxy passed junk through) counts as the peer."""
    try:
        return str(ipaddress.ip_address(hop))
    except ValueError:
        return peer


def request_client(request: HttpRequest) -> str:
    """The client address of a Django request (django-axes' AXES_CLIENT_IP_CALLABLE)."""
    return client_address(
        request.META.get("REMOTE_ADDR", ""), request.META.get("HTTP_X_FORWARDED_FOR")
    )
