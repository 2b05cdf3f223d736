"""Alert webhooks: where one may be sent, and sending it.

A webhook URL is typed by a supervisor and POSTed by the worker, inside the site's network: it
must not reach the worker's own loopback, the cloud metadata service (169.254.169.254) or the
private network (a blind SSRF). The host is resolved and every address checked, both when the
rule is saved (a clear error) and when it is sent (DNS may have changed since); the request then
goes to the checked address itself, so a second lookup cannot switch it (DNS rebinding).

Sending is never done by check_alerts: it enqueues one send_webhooks task per check, which sends
them all at once within TOTAL_SECONDS, and a rule has at most one send queued or in flight. So a
receiver that never answers costs one short task, never a check or a poll.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket

import httpx
from django.conf import settings

from metrics import live

log = logging.getLogger(__name__)

CONNECT_SECONDS, TOTAL_SECONDS = 3.0, 5.0
EXPIRES_SECONDS = 60  # a send not started by then is dropped: the alert is old news
PENDING = f"{live.PREFIX}webhook:pending:"  # + rule id: a send is queued or in flight


class Refused(ValueError):
    """A webhook URL that may not be used; the message says why, for the person who typed it."""


def refusal(address: str, *, allow_private: bool) -> str | None:
    """Why the worker may not connect to this IP address, or None when it may."""
    ip = ipaddress.ip_address(address.split("%")[0])  # an IPv6 zone (fe80::1%eth0) aside
    if ip.version == 6:  # an IPv4 address in IPv6 clothes is judged as itself
        ip = ip.ipv4_mapped or ip.sixtofour or ip
    if ip.is_link_local:
        return f"{address} is a link-local address (such as a cloud metadata service)"
    if not ip.is_loopback and (ip.is_unspecified or ip.is_multicast or ip.is_reserved):
        return f"{address} is not a host's address"
    if not ip.is_global and not allow_private:
        return (
            f"{address} is a loopback or private address (an administrator can allow internal "
            "receivers with WEBHOOK_ALLOW_PRIVATE=1)"
        )
    return None


def _host_and_port(url: str) -> tuple[str, int]:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise Refused(f"Not a URL: {exc}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise Refused("A webhook is an http:// or https:// URL.")
    return parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80)


def _checked(host: str, infos: list) -> str:
    """The address to connect to, when every address the host resolved to may be used."""
    allow_private = settings.WEBHOOK_ALLOW_PRIVATE
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise Refused(f"{host} has no address.")
    for address in addresses:  # all of them: a name may answer with a public and a private one
        reason = refusal(address, allow_private=allow_private)
        if reason:
            raise Refused(f"Webhooks may not go to {host}: {reason}.")
    return addresses[0]


def check_url(url: str) -> None:
    """Raises Refused when a rule may not use this URL (resolving its host, as the form does)."""
    host, port = _host_and_port(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise Refused(f"{host} cannot be resolved ({exc.strerror or exc}).") from exc
    _checked(host, infos)


async def resolve(url: str) -> str:
    """The checked address to send to (Refused when there is none)."""
    host, port = _host_and_port(url)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise Refused(f"{host} cannot be resolved") from exc
    return _checked(host, infos)


async def claim(rule_id: int) -> bool:
    """Whether a send may be queued for this rule: not while its last one is pending."""
    return bool(await live.get_redis().set(f"{PENDING}{rule_id}", 1, nx=True, ex=EXPIRES_SECONDS))


def enqueue(jobs: list[dict]) -> None:
    from dashboard.tasks import send_webhooks  # tasks imports alerts, which imports this

    send_webhooks.apply_async(args=[jobs], expires=EXPIRES_SECONDS)


async def send_all(jobs: list[dict]) -> None:
    """Sends every job ({"rule", "url", "body"}) at once; each gets TOTAL_SECONDS at most."""
    if not jobs:
        return
    try:
        await asyncio.gather(*(send(job) for job in jobs))
    finally:
        await live.get_redis().delete(*(f"{PENDING}{job['rule']}" for job in jobs))


async def send(job: dict) -> None:
    try:
        async with asyncio.timeout(TOTAL_SECONDS):
            address = await resolve(job["url"])
            status = await _post(job["url"], address, job["body"])
    except Refused as exc:
        log.warning("alert webhook for rule %s refused: %s", job["rule"], exc)
    except (httpx.HTTPError, TimeoutError) as exc:
        log.warning("alert webhook for rule %s failed: %s", job["rule"], type(exc).__name__)
    else:
        if status >= 400:
            log.warning("alert webhook for rule %s answered %s", job["rule"], status)


async def _post(url: str, address: str, body: dict) -> int:
    """POSTs to `address` itself, naming the URL's host in Host (and in TLS, where the
    certificate is checked against it). No redirects: a 3xx could point anywhere."""
    target = httpx.URL(url)
    timeout = httpx.Timeout(TOTAL_SECONDS, connect=CONNECT_SECONDS)
    # trust_env off: a proxy from the environment would connect to the name, not the address.
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as http:
        request = http.build_request(
            "POST",
            target.copy_with(host=address),
            json=body,
            headers={"Host": target.netloc.decode("ascii")},
            extensions={"sni_hostname": target.host},
        )
        response = await http.send(request, stream=True)  # the body is never read
        await response.aclose()
        return response.status_code
