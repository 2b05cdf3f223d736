"""The documented REST routes, over real HTTP, against the static scenario."""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime

import pytest
from conftest import ALT_PREFIX, KEY, PREFIX, START_MS

from acr_emulator.catalog import AGENTS

WIRE_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$")
GROUP_IDS = ["CIQGRP01", "LWCGRP01", "AWTGRP01", "AVLGRP01", "CABGRP01"]


def keys_of(body):
    return [(r["key"]["metricId"], r["key"]["categoryValue"]) for r in body["results"]]


# --- catalog --------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", [PREFIX, ALT_PREFIX])
async def test_it_lists_the_assigned_metrics_under_both_prefixes(emulator, http, prefix):
    response = await http.get(emulator.url("/realtime/metrics", prefix), headers=emulator.auth)
    assert response.status_code == 200
    metrics = {m["metricId"]: m for m in response.json()}
    assert set(metrics) >= {*GROUP_IDS, "ATTAGT01", "CANTOD01", "CBDDIR01", "CBACOD01"}
    assert "HIDDEN01" not in metrics
    assert metrics["CIQGRP01"] == {
        "metricId": "CIQGRP01",
        "metricName": "Calls in Queue",
        "categoryType": "GROUP",
        "categorySelection": ["Sales", "Support", "Billing"],
    }
    assert metrics["CANTOD01"]["categoryType"] == "NONE"
    assert metrics["CANTOD01"]["categorySelection"] == []
    assert metrics["CBDDIR01"]["categorySelection"] == ["Inbound", "Outbound", "Internal"]
    assert len(metrics["ATTAGT01"]["categorySelection"]) == 8
    assert all(re.fullmatch(r"[0-9A-Z]{8}", metric_id) for metric_id in metrics)


async def test_a_custom_prefix_is_served_alongside_both_documented_ones(start_emulator, http):
    emulator = await start_emulator(prefix="/chronicall/rest/api/v1/")
    for prefix in ("/chronicall/rest/api/v1", PREFIX, ALT_PREFIX):
        response = await http.get(emulator.url("/realtime/metrics", prefix), headers=emulator.auth)
        assert response.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-key"},
        {"Authorization": f"Basic {KEY}"},
        {"Authorization": KEY},
        {"Authorization": "Bearer  x"},
        {"Authorization": f"Bearer {KEY}x"},
    ],
)
@pytest.mark.parametrize("path", ["/realtime/metrics", "/realtime/metrics/values?id=CIQGRP01"])
async def test_a_bad_authorization_header_gets_401_without_echoing_the_key(
    emulator, http, headers, path
):
    response = await http.get(emulator.url(path), headers=headers)
    assert response.status_code == 401
    assert set(response.json()) == {"error"}
    assert KEY not in response.text
    assert "wrong-key" not in response.text


# --- values ---------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", [PREFIX, ALT_PREFIX])
async def test_it_returns_one_result_per_category_value(emulator, http, prefix):
    url = emulator.values_url("CIQGRP01", "CANTOD01", prefix=prefix)
    response = await http.get(url, headers=emulator.auth)
    assert response.status_code == 200
    body = response.json()
    assert body["initializing"] == []
    assert keys_of(body) == [
        ("CIQGRP01", "Sales"),
        ("CIQGRP01", "Support"),
        ("CIQGRP01", "Billing"),
        ("CANTOD01", ""),
    ]


@pytest.mark.parametrize(
    "query",
    [
        "id=CIQGRP01&id=AVLGRP01",
        "id=CIQGRP01,AVLGRP01",
        "id=CIQGRP01%2CAVLGRP01",
        "id=CIQGRP01&id=AVLGRP01,CIQGRP01",
        "id=CIQGRP01,&id=AVLGRP01",
    ],
)
async def test_ids_may_be_repeated_comma_separated_or_mixed(emulator, http, query):
    response = await http.get(
        emulator.url(f"/realtime/metrics/values?{query}"), headers=emulator.auth
    )
    assert response.status_code == 200
    assert [m for m, _ in keys_of(response.json())] == ["CIQGRP01"] * 3 + ["AVLGRP01"] * 3


@pytest.mark.parametrize("query", ["", "?id=", "?id=,", "?id=%20", "?ids=CIQGRP01", "?id=&id="])
async def test_a_missing_or_empty_id_is_a_400(emulator, http, query):
    response = await http.get(
        emulator.url(f"/realtime/metrics/values{query}"), headers=emulator.auth
    )
    assert response.status_code == 400
    assert set(response.json()) == {"error"}


@pytest.mark.parametrize(
    ("ids", "status"),
    [
        (["NOPE0001"], 404),
        (["CIQGRP01", "NOPE0001"], 404),
        (["HIDDEN01", "NOPE0001"], 404),
        (["HIDDEN01"], 403),
        (["CIQGRP01", "HIDDEN01"], 403),
        (["ciqgrp01"], 404),
    ],
)
async def test_unknown_ids_are_404_and_unassigned_ids_403(emulator, http, ids, status):
    response = await http.get(emulator.values_url(*ids), headers=emulator.auth)
    assert response.status_code == status
    assert set(response.json()) == {"error"}


async def test_static_values_have_the_documented_fields(emulator, http):
    url = emulator.values_url("CIQGRP01", "LWCGRP01", "AWTGRP01", "ATTAGT01")
    body = (await http.get(url, headers=emulator.auth)).json()
    values = {
        (r["key"]["metricId"], r["key"]["categoryValue"]): r["value"] for r in body["results"]
    }
    stamp = "2024-03-12T10:00:00.000-06:00"
    assert values[("CIQGRP01", "Sales")] == {"lastUpdateTime": stamp, "count": 3, "type": "COUNT"}
    assert values[("LWCGRP01", "Sales")] == {
        "lastUpdateTime": stamp,
        "finishedDuration": 45_000,
        "numCountingUp": 1,
        "numCountingDown": 0,
        "type": "DURATION",
    }
    assert values[("LWCGRP01", "Billing")]["numCountingUp"] == 0
    assert values[("AWTGRP01", "Sales")] == {
        "lastUpdateTime": stamp,
        "count": 120,
        "finishedDuration": 2_400_000,
        "numCountingUp": 3,
        "numCountingDown": 0,
        "type": "AVERAGE_DURATION",
    }
    assert ("ATTAGT01", "Ana García(201)") in values
    assert all(WIRE_TS.match(v["lastUpdateTime"]) for v in values.values())


async def test_a_longest_wait_comes_as_an_undocumented_type_with_the_duration_fields(
    emulator, http
):
    # The docs speak of "several different types" of values and name three; a real server may
    # well send e.g. MAX_DURATION (spec 6.5), so one metric does, with the DURATION fields.
    listing = (await http.get(emulator.url("/realtime/metrics"), headers=emulator.auth)).json()
    assert {"metricId": "LWCALL01", "categoryType": "NONE", "categorySelection": []}.items() <= (
        next(m for m in listing if m["metricId"] == "LWCALL01").items()
    )
    body = (await http.get(emulator.values_url("LWCALL01"), headers=emulator.auth)).json()
    assert body["results"] == [
        {
            "key": {"metricId": "LWCALL01", "categoryValue": ""},
            "value": {
                "lastUpdateTime": "2024-03-12T10:00:00.000-06:00",
                "finishedDuration": 45_000,
                "numCountingUp": 1,
                "numCountingDown": 0,
                "type": "MAX_DURATION",
            },
        }
    ]


async def test_last_update_time_uses_the_configured_offset(start_emulator, http):
    emulator = await start_emulator(utc_offset="+05:30")
    body = (await http.get(emulator.values_url("CANTOD01"), headers=emulator.auth)).json()
    assert body["results"][0]["value"]["lastUpdateTime"] == "2024-03-12T21:30:00.000+05:30"


@pytest.mark.parametrize(
    ("form", "expected"), [("empty", ""), ("null", None), ("name", "Calls Answered Today")]
)
async def test_the_none_category_value_spelling_is_configurable(
    start_emulator, http, form, expected
):
    emulator = await start_emulator(none_category=form)
    body = (await http.get(emulator.values_url("CANTOD01"), headers=emulator.auth)).json()
    assert body["results"][0]["key"] == {"metricId": "CANTOD01", "categoryValue": expected}


# --- initializing ---------------------------------------------------------------------------


async def test_a_cold_metric_initializes_then_becomes_ready(start_emulator, http):
    emulator = await start_emulator(init_seconds=3)
    url = emulator.values_url("CIQGRP01")
    first = await http.get(url, headers=emulator.auth)
    assert first.status_code == 206
    assert first.json() == {"results": [], "initializing": ["CIQGRP01"]}
    emulator.clock.advance(2_999)
    assert (await http.get(url, headers=emulator.auth)).status_code == 206
    emulator.clock.advance(1)
    ready = await http.get(url, headers=emulator.auth)
    assert ready.status_code == 200
    assert len(ready.json()["results"]) == 3


async def test_a_partly_ready_request_returns_the_ready_values(start_emulator, http):
    emulator = await start_emulator(init_seconds=3)
    await http.get(emulator.values_url("CIQGRP01"), headers=emulator.auth)
    emulator.clock.advance(3_000)
    response = await http.get(emulator.values_url("CIQGRP01", "CANTOD01"), headers=emulator.auth)
    assert response.status_code == 206
    body = response.json()
    assert [m for m, _ in keys_of(body)] == ["CIQGRP01"] * 3
    assert body["initializing"] == ["CANTOD01"]


async def test_not_ready_status_400_returns_the_same_body(start_emulator, http):
    emulator = await start_emulator(init_seconds=3, not_ready_status=400)
    response = await http.get(emulator.values_url("CIQGRP01"), headers=emulator.auth)
    assert response.status_code == 400
    assert response.json() == {"results": [], "initializing": ["CIQGRP01"]}


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ("id", ["CIQGRP01", "CANTOD01"]),
        ("combo", ["CIQGRP01:Sales", "CIQGRP01:Support", "CIQGRP01:Billing", "CANTOD01"]),
        (
            "object",
            [
                {"metricId": "CIQGRP01", "categoryValue": "Sales"},
                {"metricId": "CIQGRP01", "categoryValue": "Support"},
                {"metricId": "CIQGRP01", "categoryValue": "Billing"},
                {"metricId": "CANTOD01", "categoryValue": ""},
            ],
        ),
    ],
)
async def test_initializing_elements_take_the_configured_form(start_emulator, http, form, expected):
    emulator = await start_emulator(init_seconds=3, initializing_form=form)
    response = await http.get(emulator.values_url("CIQGRP01", "CANTOD01"), headers=emulator.auth)
    assert response.status_code == 206
    assert response.json() == {"results": [], "initializing": expected}


async def test_a_metric_goes_cold_when_not_requested_for_a_while(start_emulator, http):
    emulator = await start_emulator(init_seconds=3, cold_after_seconds=600)
    url = emulator.values_url("CIQGRP01")
    await http.get(url, headers=emulator.auth)
    emulator.clock.advance(3_000)
    assert (await http.get(url, headers=emulator.auth)).status_code == 200
    emulator.clock.advance(600_000)  # exactly cold_after since the last request: still warm
    assert (await http.get(url, headers=emulator.auth)).status_code == 200
    emulator.clock.advance(600_001)
    assert (await http.get(url, headers=emulator.auth)).status_code == 206
    emulator.clock.advance(3_000)
    assert (await http.get(url, headers=emulator.auth)).status_code == 200


# --- Date header and agents -----------------------------------------------------------------


@pytest.mark.parametrize("skew_ms", [0, 120_000, -45_000])
async def test_the_date_header_follows_the_emulator_clock(start_emulator, http, skew_ms):
    emulator = await start_emulator(skew_ms=skew_ms)
    for path in ("/realtime/metrics", "/realtime/metrics/values?id=CIQGRP01", "/agents/mapping"):
        for headers in (emulator.auth, {}):
            response = await http.get(emulator.url(path), headers=headers)
            date = parsedate_to_datetime(response.headers["Date"])
            assert date.timestamp() * 1000 == (START_MS + skew_ms) // 1000 * 1000


async def test_skew_moves_last_update_time_too(start_emulator, http):
    emulator = await start_emulator(skew_ms=120_000)
    body = (await http.get(emulator.values_url("CANTOD01"), headers=emulator.auth)).json()
    assert body["results"][0]["value"]["lastUpdateTime"] == "2024-03-12T10:02:00.000-06:00"


@pytest.mark.parametrize("prefix", [PREFIX, ALT_PREFIX])
async def test_the_agent_mapping_joins_agent_category_values(emulator, http, prefix):
    response = await http.get(emulator.url("/agents/mapping", prefix), headers=emulator.auth)
    assert response.status_code == 200
    mapping = response.json()
    assert mapping["agarcia"] == "Ana García(201)"
    assert sorted(mapping.values()) == sorted(a.display for a in AGENTS)
    assert all(re.fullmatch(r".+\(\d+\)", name) for name in mapping.values())
    assert (await http.get(emulator.url("/agents/mapping", prefix))).status_code == 401


# --- strict: only the documented forms -------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # 4.2 documents one id parameter holding "a comma-separated list of metric IDs".
        ("id=CIQGRP01,AVLGRP01", ["CIQGRP01", "AVLGRP01"]),
        ("id=CIQGRP01%2CAVLGRP01", ["CIQGRP01", "AVLGRP01"]),
        # A repeated id reads as its first, as a servlet's getParameter("id") would.
        ("id=CIQGRP01&id=AVLGRP01", ["CIQGRP01"]),
        ("id=CIQGRP01&id=NOPE0001", ["CIQGRP01"]),
    ],
)
async def test_strict_values_read_one_id_parameter_with_a_comma_list(
    start_emulator, http, query, expected
):
    emulator = await start_emulator(strict=True)
    response = await http.get(
        emulator.url(f"/realtime/metrics/values?{query}"), headers=emulator.auth
    )
    assert response.status_code == 200
    assert list(dict.fromkeys(m for m, _ in keys_of(response.json()))) == expected
    assert emulator.engine.stats()["values_ids_total"] == len(expected)


async def test_strict_values_still_refuse_an_unknown_id_in_the_list(start_emulator, http):
    emulator = await start_emulator(strict=True)
    response = await http.get(
        emulator.url("/realtime/metrics/values?id=CIQGRP01,NOPE0001"), headers=emulator.auth
    )
    assert response.status_code == 404
