"""The loopback-only control API that tests and demos use to steer the emulator."""

from __future__ import annotations

from unittest import mock

import pytest
from aiohttp.test_utils import make_mocked_request
from conftest import KEY, START_MS

from acr_emulator.control import control_stats, is_loopback
from acr_emulator.server import parse_ids


@pytest.mark.parametrize(
    ("remote", "expected"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.5", False),
        ("192.168.1.20", False),
        ("::ffff:10.0.0.5", False),
        ("", False),
        (None, False),
        ("not-an-ip", False),
    ],
)
def test_is_loopback(remote, expected):
    assert is_loopback(remote) is expected


async def test_the_control_api_refuses_a_remote_client(emulator):
    transport = mock.Mock()
    transport.get_extra_info.return_value = ("10.0.0.5", 51000)
    request = make_mocked_request("GET", "/_emulator/stats", app=emulator.app, transport=transport)
    response = await control_stats(request)
    assert response.status == 403


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["A"], ["A"]),
        (["A", "B"], ["A", "B"]),
        (["A,B"], ["A", "B"]),
        (["A, B", "C"], ["A", "B", "C"]),
        (["A", "A,B"], ["A", "B"]),
        ([",", ""], []),
        ([], []),
    ],
)
def test_parse_ids(raw, expected):
    assert parse_ids(raw) == expected


async def test_stats_count_requests_per_endpoint(emulator, http):
    await http.get(emulator.url("/realtime/metrics"), headers=emulator.auth)
    await http.get(emulator.url("/realtime/metrics"))  # a refused one counts too
    for _ in range(3):
        await http.get(emulator.values_url("CIQGRP01"), headers=emulator.auth)
    await http.get(emulator.values_url("CIQGRP01", "AVLGRP01", "CANTOD01"), headers=emulator.auth)
    await http.get(emulator.url("/agents/mapping", "/api/v1"), headers=emulator.auth)
    await http.get(f"{emulator.base}/_emulator/faults")  # the control API is not counted
    stats = (await http.get(f"{emulator.base}/_emulator/stats")).json()
    assert stats == {
        "requests": {"catalog": 2, "values": 4, "mapping": 1},
        "requests_total": 7,
        "values_ids_total": 6,
        "ws_open": 0,
        "ws_total": 0,
    }


async def test_set_value_defaults_the_time_to_now_and_returns_the_result(emulator, http):
    emulator.clock.advance(1_234)
    body = {
        "metricId": "AWTGRP01",
        "categoryValue": "Billing",
        "value": {"type": "AVERAGE_DURATION", "finishedDuration": 90_000, "count": 3},
    }
    response = await http.post(f"{emulator.base}/_emulator/values", json=body)
    assert response.status_code == 200
    assert response.json() == {
        "key": {"metricId": "AWTGRP01", "categoryValue": "Billing"},
        "value": {
            "lastUpdateTime": "2024-03-12T10:00:01.234-06:00",
            "count": 3,
            "finishedDuration": 90_000,
            "numCountingUp": 0,
            "numCountingDown": 0,
            "type": "AVERAGE_DURATION",
        },
    }


async def test_a_metric_of_an_undocumented_type_is_set_in_that_type(emulator, http):
    value = {"type": "MAX_DURATION", "finishedDuration": 5_000, "numCountingUp": 1}
    body = {"metricId": "LWCALL01", "categoryValue": "", "value": value}
    response = await http.post(f"{emulator.base}/_emulator/values", json=body)
    assert response.status_code == 200
    assert response.json()["value"]["type"] == "MAX_DURATION"
    body["value"] = {**value, "type": "DURATION"}
    response = await http.post(f"{emulator.base}/_emulator/values", json=body)
    assert response.status_code == 400


@pytest.mark.parametrize("spelling", ["", None, "Calls Answered Today"])
async def test_a_none_metric_accepts_any_spelling_of_its_category_value(emulator, http, spelling):
    body = {
        "metricId": "CANTOD01",
        "categoryValue": spelling,
        "value": {"type": "COUNT", "count": 1},
    }
    response = await http.post(f"{emulator.base}/_emulator/values", json=body)
    assert response.status_code == 200
    assert response.json()["key"]["categoryValue"] == ""


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (
            {"metricId": "NOPE0001", "categoryValue": "", "value": {"type": "COUNT", "count": 1}},
            404,
        ),
        (
            {
                "metricId": "CIQGRP01",
                "categoryValue": "Nope",
                "value": {"type": "COUNT", "count": 1},
            },
            404,
        ),
        ({"categoryValue": "Sales", "value": {"type": "COUNT", "count": 1}}, 404),
        ({"metricId": "CIQGRP01", "categoryValue": "Sales", "value": {"type": "COUNT"}}, 400),
        (
            {
                "metricId": "CIQGRP01",
                "categoryValue": "Sales",
                "value": {"type": "DURATION", "finishedDuration": 1},
            },
            400,
        ),
        ({"metricId": "CIQGRP01", "categoryValue": "Sales"}, 400),
        ([1, 2], 400),
    ],
)
async def test_set_value_rejects_bad_requests(emulator, http, body, status):
    response = await http.post(f"{emulator.base}/_emulator/values", json=body)
    assert response.status_code == status
    assert set(response.json()) == {"error"}


async def test_control_bodies_must_be_json(emulator, http):
    response = await http.post(f"{emulator.base}/_emulator/cold", content=b"{not json")
    assert response.status_code == 400


@pytest.mark.parametrize("body", [{}, {"key": ""}, {"key": 5}, {"key": None}])
async def test_auth_key_rotation_needs_a_key(emulator, http, body):
    response = await http.post(f"{emulator.base}/_emulator/auth-key", json=body)
    assert response.status_code == 400
    assert emulator.engine.auth_key == KEY


async def test_the_clock_can_advance_and_skew(emulator, http):
    response = await http.post(f"{emulator.base}/_emulator/clock", json={"advance_ms": 5_000})
    assert response.json() == {"now_ms": START_MS + 5_000, "skew_ms": 0}
    response = await http.post(f"{emulator.base}/_emulator/clock", json={"skew_ms": 120_000})
    assert response.json() == {"now_ms": START_MS + 125_000, "skew_ms": 120_000}
    values = await http.get(emulator.values_url("CANTOD01"), headers=emulator.auth)
    assert values.headers["Date"] == "Tue, 12 Mar 2024 16:02:05 GMT"


@pytest.mark.parametrize(
    "body", [{}, {"advance_ms": -1}, {"advance_ms": "5"}, {"skew_ms": 1.5}, {"advance_ms": True}]
)
async def test_bad_clock_requests_are_400(emulator, http, body):
    response = await http.post(f"{emulator.base}/_emulator/clock", json=body)
    assert response.status_code == 400


async def test_cold_makes_every_metric_initialize_again(start_emulator, http):
    emulator = await start_emulator(init_seconds=3)
    await http.get(emulator.values_url("CIQGRP01"), headers=emulator.auth)
    emulator.clock.advance(3_000)
    assert (
        await http.get(emulator.values_url("CIQGRP01"), headers=emulator.auth)
    ).status_code == 200
    assert (await http.post(f"{emulator.base}/_emulator/cold", json={})).status_code == 200
    assert (
        await http.get(emulator.values_url("CIQGRP01"), headers=emulator.auth)
    ).status_code == 206


async def test_strict_mode_can_be_switched_at_run_time(emulator, http):
    url = f"{emulator.base}/_emulator/strict"
    assert (await http.get(url)).json() == {"strict": False}
    assert (await http.post(url, json={"strict": True})).json() == {"strict": True}
    response = await http.get(
        emulator.url("/realtime/metrics/values?id=CIQGRP01&id=AVLGRP01"), headers=emulator.auth
    )
    assert {r["key"]["metricId"] for r in response.json()["results"]} == {"CIQGRP01"}
    assert (await http.post(url, json={"strict": "yes"})).status_code == 400
    assert (await http.post(url, json={})).status_code == 400
