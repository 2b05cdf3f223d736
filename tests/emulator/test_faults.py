"""Injected faults on the REST side, and the control endpoint that switches them."""

from __future__ import annotations

import json
import re
import time
from unittest import mock

import httpx
import pytest
from aiohttp.test_utils import make_mocked_request
from conftest import START_MS

from acr_emulator.__main__ import build_parser, config_from_args
from acr_emulator.control import control_faults
from acr_emulator.faults import Faults, apply_faults
from acr_emulator.naming import HOSTILE_METRIC_NAMES, HOSTILE_VALUES
from acr_emulator.valuemodel import parse_timestamp


async def set_faults(http, emulator, body: dict) -> dict:
    response = await http.post(f"{emulator.base}/_emulator/faults", json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def get_faults(http, emulator) -> dict:
    return (await http.get(f"{emulator.base}/_emulator/faults")).json()


# --- the fault state (pure) -------------------------------------------------------------------


def test_an_empty_body_or_clear_resets_everything_and_other_bodies_merge():
    state, _ = apply_faults(Faults(), {"latency_ms": 50, "refuse": True})
    state, _ = apply_faults(state, {"refuse": False, "no_millis": True})
    assert state.active() == {"latency_ms": 50, "no_millis": True}
    assert apply_faults(state, {})[0] == Faults()
    assert apply_faults(state, {"clear": True})[0] == Faults()
    assert apply_faults(state, {"clear": True, "unknown_type": True})[0].active() == {
        "unknown_type": True
    }


def test_an_injected_status_with_a_count_runs_out():
    state, _ = apply_faults(Faults(), {"http_status": 502, "count": 2})
    first, state = state.consume_status()
    second, state = state.consume_status()
    third, state = state.consume_status()
    assert (first, second, third) == (502, 502, None)
    assert state == Faults()


@pytest.mark.parametrize(
    "body",
    [
        {"latency": 5},
        {"latency_ms": -1},
        {"latency_ms": "100"},
        {"refuse": "yes"},
        {"http_status": 200},
        {"http_status": 600},
        {"http_status": 503, "count": 0},
        {"count": 3},
        {"malformed_frame": ""},
        {"malformed_frame": 5},
        {"clear": 1},
        {"drop_websockets": 1},
    ],
)
def test_invalid_fault_bodies_are_rejected(body):
    with pytest.raises(ValueError):
        apply_faults(Faults(), body)


def test_fault_flags_on_the_command_line():
    args = build_parser().parse_args(
        ["--auth-key", "k", "--latency-ms", "250", "--http-status", "503"]
        + ["--http-status-count", "4", "--hostile-names", "--z-timestamps", "--demo-floor", "90"]
    )
    config = config_from_args(args)
    assert config.demo_floor == 90
    assert config.faults.active() == {
        "latency_ms": 250,
        "http_status": 503,
        "count": 4,
        "hostile_names": True,
        "z_timestamps": True,
    }


# --- the control endpoint ---------------------------------------------------------------------


async def test_the_faults_endpoint_shows_sets_and_clears(emulator, http):
    assert await get_faults(http, emulator) == {}
    body = {"latency_ms": 10, "http_status": 503, "drop_websockets": True}
    assert await set_faults(http, emulator, body) == {"latency_ms": 10, "http_status": 503}
    assert await get_faults(http, emulator) == {"latency_ms": 10, "http_status": 503}
    assert await set_faults(http, emulator, {}) == {}
    assert await get_faults(http, emulator) == {}


async def test_a_bad_faults_body_is_a_400_and_changes_nothing(emulator, http):
    await set_faults(http, emulator, {"no_millis": True})
    response = await http.post(f"{emulator.base}/_emulator/faults", json={"refuse": "on"})
    assert response.status_code == 400
    assert await get_faults(http, emulator) == {"no_millis": True}


async def test_the_faults_endpoint_refuses_a_remote_client(emulator):
    transport = mock.Mock()
    transport.get_extra_info.return_value = ("192.168.1.20", 51000)
    request = make_mocked_request("GET", "/_emulator/faults", app=emulator.app, transport=transport)
    assert (await control_faults(request)).status == 403


# --- REST faults ------------------------------------------------------------------------------


async def test_latency_delays_every_rest_answer_until_cleared(emulator, http):
    await set_faults(http, emulator, {"latency_ms": 300})
    for path in ("/realtime/metrics", "/realtime/metrics/values?id=CIQGRP01", "/agents/mapping"):
        started = time.monotonic()
        response = await http.get(emulator.url(path), headers=emulator.auth)
        assert response.status_code == 200
        assert time.monotonic() - started >= 0.3
    await set_faults(http, emulator, {"latency_ms": 0})
    started = time.monotonic()
    await http.get(emulator.values_url("CIQGRP01"), headers=emulator.auth)
    assert time.monotonic() - started < 0.25


async def test_an_injected_status_answers_the_next_count_requests(emulator, http):
    await set_faults(http, emulator, {"http_status": 503, "count": 2})
    catalog = await http.get(emulator.url("/realtime/metrics"), headers=emulator.auth)
    assert catalog.status_code == 503 and set(catalog.json()) == {"error"}
    assert await get_faults(http, emulator) == {"http_status": 503, "count": 1}
    values = await http.get(emulator.values_url("CIQGRP01"), headers=emulator.auth)
    assert values.status_code == 503
    assert await get_faults(http, emulator) == {}
    again = await http.get(emulator.values_url("CIQGRP01"), headers=emulator.auth)
    assert again.status_code == 200
    stats = (await http.get(f"{emulator.base}/_emulator/stats")).json()
    assert stats["requests"] == {"catalog": 1, "values": 2, "mapping": 0}


async def test_an_injected_status_without_count_lasts_until_cleared(emulator, http):
    await set_faults(http, emulator, {"http_status": 500})
    for _ in range(5):
        response = await http.get(emulator.url("/agents/mapping"), headers=emulator.auth)
        assert response.status_code == 500
    await set_faults(http, emulator, {"http_status": None})
    response = await http.get(emulator.url("/agents/mapping"), headers=emulator.auth)
    assert response.status_code == 200


async def test_refuse_closes_the_connection_without_an_answer(emulator, http):
    await set_faults(http, emulator, {"refuse": True})
    for path in ("/realtime/metrics", "/realtime/metrics/values?id=CIQGRP01"):
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            await http.get(emulator.url(path), headers=emulator.auth)
    # The process is still up: the control API answers and can bring the upstream back.
    stats = (await http.get(f"{emulator.base}/_emulator/stats")).json()
    assert stats["requests"]["values"] == 1
    await set_faults(http, emulator, {"clear": True})
    response = await http.get(emulator.values_url("CIQGRP01"), headers=emulator.auth)
    assert response.status_code == 200


async def test_malformed_values_are_invalid_json_with_status_200(emulator, http):
    await set_faults(http, emulator, {"malformed_values": True})
    response = await http.get(emulator.values_url("CIQGRP01", "CANTOD01"), headers=emulator.auth)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)
    catalog = await http.get(emulator.url("/realtime/metrics"), headers=emulator.auth)
    assert catalog.json()  # only the values endpoint is broken
    await set_faults(http, emulator, {"malformed_values": False})
    response = await http.get(emulator.values_url("CIQGRP01"), headers=emulator.auth)
    assert len(response.json()["results"]) == 3


async def test_unknown_type_switches_one_metric_to_an_undocumented_type(emulator, http):
    await set_faults(http, emulator, {"unknown_type": True})
    body = (
        await http.get(emulator.values_url("AVLGRP01", "CIQGRP01"), headers=emulator.auth)
    ).json()
    by_metric = {}
    for result in body["results"]:
        by_metric.setdefault(result["key"]["metricId"], []).append(result["value"])
    assert by_metric["AVLGRP01"][0] == {
        "lastUpdateTime": "2024-03-12T10:00:00.000-06:00",
        "maxDuration": 1234 + 60_000,
        "type": "MAX_DURATION",
    }
    assert {v["type"] for v in by_metric["CIQGRP01"]} == {"COUNT"}
    await set_faults(http, emulator, {})
    body = (await http.get(emulator.values_url("AVLGRP01"), headers=emulator.auth)).json()
    assert {r["value"]["type"] for r in body["results"]} == {"COUNT"}


@pytest.mark.parametrize(
    ("faults", "pattern"),
    [
        ({}, r"^2024-03-12T10:00:00\.000-06:00$"),
        ({"z_timestamps": True}, r"^2024-03-12T16:00:00\.000Z$"),
        ({"no_millis": True}, r"^2024-03-12T10:00:00-06:00$"),
        ({"z_timestamps": True, "no_millis": True}, r"^2024-03-12T16:00:00Z$"),
    ],
)
async def test_timestamp_spellings(emulator, http, faults, pattern):
    await set_faults(http, emulator, faults)
    body = (await http.get(emulator.values_url("CANTOD01"), headers=emulator.auth)).json()
    stamp = body["results"][0]["value"]["lastUpdateTime"]
    assert re.match(pattern, stamp)
    assert parse_timestamp(stamp) == START_MS


async def test_hostile_names_keep_the_metric_ids(emulator, http):
    plain = (await http.get(emulator.url("/realtime/metrics"), headers=emulator.auth)).json()
    await set_faults(http, emulator, {"hostile_names": True})
    hostile = (await http.get(emulator.url("/realtime/metrics"), headers=emulator.auth)).json()
    assert [m["metricId"] for m in hostile] == [m["metricId"] for m in plain]
    by_id = {m["metricId"]: m for m in hostile}
    assert by_id["CIQGRP01"]["metricName"] == '<img src=x onerror=alert(1)> "Queue" 🚀'
    assert by_id["CIQGRP01"]["categorySelection"][0] == "مبيعات <b>"
    for metric in hostile:
        assert metric["metricName"] == HOSTILE_METRIC_NAMES[metric["metricId"]]
        assert all(cv in HOSTILE_VALUES.values() for cv in metric["categorySelection"])
    mapping = (await http.get(emulator.url("/agents/mapping"), headers=emulator.auth)).json()
    assert sorted(mapping.values()) == sorted(by_id["ATTAGT01"]["categorySelection"])
    values = (await http.get(emulator.values_url("CIQGRP01"), headers=emulator.auth)).json()
    assert [r["key"]["categoryValue"] for r in values["results"]] == by_id["CIQGRP01"][
        "categorySelection"
    ]


async def test_a_value_can_be_set_through_its_hostile_category_spelling(start_emulator, http):
    emulator = await start_emulator(faults=Faults(hostile_names=True))
    body = {
        "metricId": "CIQGRP01",
        "categoryValue": "مبيعات <b>",
        "value": {"type": "COUNT", "count": 4},
    }
    response = await http.post(f"{emulator.base}/_emulator/values", json=body)
    assert response.status_code == 200
    assert response.json()["key"] == {"metricId": "CIQGRP01", "categoryValue": "مبيعات <b>"}
    assert await get_faults(http, emulator) == {"hostile_names": True}
