"""REST client for the upstream realtime API: one function per documented endpoint.

Errors are typed: `UpstreamUnavailable` is worth retrying, the others need a person. No error
message ever contains the auth key (it only travels in the Authorization header).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx

from metrics import observability

from .clock import Bounds, date_header_bounds, now_ms
from .values import (
    CatalogMetric,
    PayloadError,
    ValuesResponse,
    parse_catalog,
    parse_values_response,
)

log = logging.getLogger(__name__)

# Keep every values URL well under the 2,000 characters proxies commonly allow.
MAX_QUERY_CHARS = 1500


class UpstreamError(Exception):
    """Base of every upstream failure; the message is safe to show an operator."""


class UpstreamUnavailable(UpstreamError):
    """Network trouble, a timeout or a 5xx: try again later."""


class UpstreamAuthError(UpstreamError):
    """401: the auth key is wrong, expired or rotated."""


class MetricRejected(UpstreamError):
    """403 (not assigned to this service user) or 404 (no such metric)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class BadResponse(UpstreamError):
    """The upstream answered with something we cannot read."""


@dataclass
class ValuesBatch:
    response: ValuesResponse
    rejected: dict[str, str] = field(default_factory=dict)  # metric id -> reason


def make_client(
    base_url: str,
    prefix: str,
    auth_key: str,
    timeout: float,
    clock_bounds: list[Bounds] | None = None,
) -> httpx.AsyncClient:
    """An HTTP client for the upstream. When `clock_bounds` is given, every response's `Date`
    header is turned into bounds on the upstream's clock offset and appended to it."""

    async def stamp(request: httpx.Request) -> None:
        request.extensions["sent_ms"] = now_ms()

    async def observe(response: httpx.Response) -> None:
        sent_ms = response.request.extensions.get("sent_ms")
        date = response.headers.get("date")
        if clock_bounds is not None and sent_ms is not None and date:
            bounds = date_header_bounds(date, sent_ms, now_ms())
            if bounds is not None:
                clock_bounds.append(bounds)

    return httpx.AsyncClient(
        base_url=base_url + prefix,
        headers={"Authorization": f"Bearer {auth_key}", "Accept": "application/json"},
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        event_hooks={"request": [stamp], "response": [observe]},
    )


async def _request(client: httpx.AsyncClient, path: str, endpoint: str) -> tuple[int, object]:
    """GET path; returns (status, parsed JSON or None). Raises for transport errors and 5xx.
    Its latency and outcome are counted under `endpoint` (catalog, values, agents)."""
    started = time.monotonic()
    try:
        response = await client.get(path)
    except httpx.TimeoutException as exc:
        observability.observe_upstream(endpoint, "timeout", time.monotonic() - started)
        raise UpstreamUnavailable(f"upstream timed out on {path.split('?')[0]}") from exc
    except httpx.HTTPError as exc:
        observability.observe_upstream(endpoint, "unreachable", time.monotonic() - started)
        raise UpstreamUnavailable(f"upstream unreachable: {type(exc).__name__}") from exc
    status = observability.status_label(response.status_code)
    observability.observe_upstream(endpoint, status, time.monotonic() - started)
    if response.status_code == 401:
        raise UpstreamAuthError("upstream refused the auth key (401): check ACR_AUTH_KEY")
    if response.status_code >= 500:
        raise UpstreamUnavailable(f"upstream error {response.status_code}")
    try:
        body = json.loads(response.content) if response.content else None
    except ValueError:
        body = None
        if response.status_code in (200, 206):
            raise BadResponse(f"upstream sent malformed JSON ({response.status_code})") from None
    return response.status_code, body


async def fetch_catalog(client: httpx.AsyncClient) -> list[CatalogMetric]:
    """GET /realtime/metrics: the API-enabled metrics visible to this service user."""
    status, body = await _request(client, "/realtime/metrics", "catalog")
    if status != 200:
        raise BadResponse(f"metric catalog answered {status}")
    try:
        return parse_catalog(body)
    except PayloadError as exc:
        raise BadResponse(f"metric catalog unreadable: {exc}") from exc


def values_query(ids: list[str]) -> str:
    """`id=A,B,C`: ONE id parameter holding a comma-separated list, the form 4.2 documents ("Either
    one metric ID, or a comma-separated list of metric IDs"); a server that reads one `id` (a
    servlet's getParameter) would answer only the first of `id=A&id=B`.

    The commas go unencoded: a comma is legal in a query (an RFC 3986 sub-delimiter) and reaches
    the server's code as a comma whether it splits the decoded parameter (getParameter decodes
    first, so `%2C` would work there too) or the raw query string (where `%2C` would not). Each id
    is percent-encoded; an id that itself holds a comma cannot be sent in this form at all.
    """
    return "id=" + ",".join(quote(metric_id, safe="") for metric_id in ids)


def split_ids(ids: list[str], max_chars: int = MAX_QUERY_CHARS) -> list[list[str]]:
    """Batches of ids whose values_query stays under max_chars (an id too long for that on its
    own goes alone)."""
    batches: list[list[str]] = []
    current: list[str] = []
    length = 0  # of values_query(current)
    for metric_id in ids:
        part = len(quote(metric_id, safe=""))
        if current and length + 1 + part > max_chars:
            batches.append(current)
            current = []
        length = length + 1 + part if current else len("id=") + part
        current.append(metric_id)
    if current:
        batches.append(current)
    return batches


async def _fetch_values_once(
    client: httpx.AsyncClient, ids: list[str], known_ids: set[str]
) -> ValuesResponse:
    status, body = await _request(client, "/realtime/metrics/values?" + values_query(ids), "values")
    # 206 is documented for "some still initializing"; an older text says 400 with the same
    # body. A 400 whose body has no `initializing` list is a real client error.
    if status in (200, 206) or (
        status == 400 and isinstance(body, dict) and isinstance(body.get("initializing"), list)
    ):
        try:
            return parse_values_response(body, known_ids)
        except PayloadError as exc:
            raise BadResponse(f"values response unreadable: {exc}") from exc
    if status in (403, 404):
        reason = "not assigned to this service user" if status == 403 else "does not exist"
        raise MetricRejected(f"metric {reason} ({status})", status)
    raise BadResponse(f"values request answered {status}")


async def fetch_values(
    client: httpx.AsyncClient, ids: list[str], known_ids: set[str]
) -> ValuesBatch:
    """GET /realtime/metrics/values?id=A,B,…: values of ready metrics and the initializing ones.

    One refused id (403/404) fails its whole request, so a refused batch is split in halves until
    the refused ids are isolated; the others still get their values.
    """
    batch = ValuesBatch(ValuesResponse(results=[], initializing=[], errors=[]))
    pending = split_ids(ids)
    while pending:
        group = pending.pop()
        try:
            part = await _fetch_values_once(client, group, known_ids)
        except MetricRejected as exc:
            if len(group) == 1:
                batch.rejected[group[0]] = str(exc)
            else:
                middle = len(group) // 2
                pending += [group[:middle], group[middle:]]
            continue
        batch.response.results.extend(part.results)
        batch.response.initializing.extend(part.initializing)
        batch.response.errors.extend(part.errors)
    return batch


async def fetch_agent_mapping(client: httpx.AsyncClient) -> dict[str, str]:
    """GET /agents/mapping: AgentId -> display name ("Name(ext)", as in AGENT categories)."""
    status, body = await _request(client, "/agents/mapping", "agents")
    if status == 403:
        raise MetricRejected("the service user may not read the agent mapping (403)", 403)
    if status != 200 or not isinstance(body, dict):
        raise BadResponse(f"agent mapping answered {status}")
    return {str(k): v for k, v in body.items() if isinstance(v, str)}
