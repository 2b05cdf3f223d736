"""What metrics.ingest tells an operator about value types no document describes."""

import logging

import pytest

from metrics import ingest
from metrics.acr.values import DurationValue, MetricValue, UnsupportedValue
from metrics.records import value_records

RAW = '{"type":"SERVICE_LEVEL","percent":93.5,"lastUpdateTime":5}'


@pytest.fixture
def log(caplog, monkeypatch):
    monkeypatch.setattr(ingest, "_undocumented_seen", set())
    caplog.set_level(logging.INFO, logger="metrics.ingest")
    return caplog


def records_of(*values):
    items = [MetricValue("M1", "Sales", value) for value in values]
    return value_records(items, {}, source="poll", now_ms=10)


def test_a_type_with_no_readable_number_is_logged_once_with_its_raw_json(log):
    records = records_of(UnsupportedValue("SERVICE_LEVEL", 5, raw=RAW))
    assert records[0]["error"] == "unsupported value type SERVICE_LEVEL"

    ingest._log_undocumented(records)
    ingest._log_undocumented(records)

    warnings = [r.getMessage() for r in log.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "M1" in warnings[0] and "SERVICE_LEVEL" in warnings[0] and RAW in warnings[0]


def test_a_type_read_by_its_fields_is_told_once_and_is_no_error(log):
    records = records_of(DurationValue(45000, 1, 0, 5, upstream_type="MAX_DURATION"))
    assert records[0]["state"] == "live" and records[0]["error"] == ""

    ingest._log_undocumented(records)
    ingest._log_undocumented(records)

    told = [r.getMessage() for r in log.records if "MAX_DURATION" in r.getMessage()]
    assert len(told) == 1 and "DURATION" in told[0].replace("MAX_DURATION", "")
    assert not [r for r in log.records if r.levelno >= logging.WARNING]
