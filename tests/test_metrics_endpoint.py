"""/metrics over HTTP from the real web server, with every process of the system running: what a
Prometheus server scrapes during a browser session, who may scrape it, and that the Grafana
dashboard and the alert rules name only metrics that are really there."""

from __future__ import annotations

import json
import re

import httpx
import pytest
import yaml
from playwright.sync_api import expect
from prometheus_client.parser import text_string_to_metric_families

from metrics.models import Board, Metric, Tile
from tests.conftest import (
    ROOT,
    WEB_ENV,
    free_port,
    log_in,
    stack_env,
    start_emulator,
    start_stack,
    start_web,
    wait_for_port,
    wait_until,
)

pytestmark = pytest.mark.django_db(transaction=True)

METRIC_NAME = re.compile(r"\bacrdash_[a-z0-9_]+\b")


def scrape(base_url: str, **headers: str) -> httpx.Response:
    return httpx.get(base_url + "/metrics", headers=headers, timeout=10)


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample of a scrape by its name (acrdash_x_total, acrdash_y_bucket, ...)."""
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def value(scraped: dict, name: str, **labels: str) -> float:
    """The sum of the samples of `name` that carry `labels` (0 when there are none)."""
    return sum(v for have, v in scraped.get(name, []) if labels.items() <= have.items())


def system_metrics(base_url: str) -> dict:
    response = scrape(base_url)
    assert response.status_code == 200, response.text
    return samples(response.text)


@pytest.fixture
def queue_board():
    """A board with one tile: the Sales queue. (Made before Playwright holds the thread.)"""
    queue, _ = Metric.objects.update_or_create(
        metric_id="CIQGRP01",
        defaults={"name": "Calls in Queue", "category_type": "GROUP", "categories": ["Sales"]},
    )
    board = Board.objects.create(name="Queue", slug="queue", title="Queue", columns=1)
    Tile.objects.create(board=board, order=1, metric=queue, category="Sales", title="Sales")
    return board


def test_a_scrape_during_a_browser_session_finds_the_screens_and_a_fanout_delay(
    processes, redis_db, settings, tmp_path, queue_board, staff_user, page
):
    # Every process writes to one folder, as make run and compose run them.
    base_url, emulator = start_stack(
        processes, settings.REDIS_URL, env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")}
    )
    log_in(page, base_url, path="/boards/queue/")
    tile = page.locator('[data-metric-id="CIQGRP01"][data-category="Sales"]')
    expect(tile).to_have_attribute("data-state", "live", timeout=20_000)
    # A change at the upstream, pushed over its websocket to the subscriber, then to the screen.
    emulator.control(
        "values",
        {"metricId": "CIQGRP01", "categoryValue": "Sales", "value": {"type": "COUNT", "count": 9}},
    )
    expect(tile).to_have_attribute("data-value", "9", timeout=10_000)

    scraped = wait_until(
        lambda: (
            (m := system_metrics(base_url))
            and value(m, "acrdash_fanout_delay_seconds_count") > 0
            and value(m, "acrdash_celery_task_seconds_count") > 0
            and value(m, "acrdash_upstream_requests_total", endpoint="values") > 0
            and m
        ),
        timeout=15,
        what="a fan-out delay, a Celery task and a poll in the scrape",
    )
    assert value(scraped, "acrdash_sockets", kind="board") >= 1
    assert value(scraped, "acrdash_sockets", kind="display") == 0
    # Delays of a quiet test machine: well under a second, all of them.
    delays = value(scraped, "acrdash_fanout_delay_seconds_count")
    assert value(scraped, "acrdash_fanout_delay_seconds_bucket", le="1.0") == delays
    assert value(scraped, "acrdash_frames_sent_total", type="records") >= 1
    assert value(scraped, "acrdash_snapshots_total", reason="connect") >= 1
    # The other processes' counts are in the same scrape: the subscriber's websocket and lease,
    # the worker's polls and tasks.
    assert value(scraped, "acrdash_upstream_ws_connects_total", outcome="ok") >= 1
    assert value(scraped, "acrdash_upstream_frames_total") >= 1
    assert value(scraped, "acrdash_subscriber_lease_changes_total", change="taken") == 1
    assert value(scraped, "acrdash_upstream_requests_total", endpoint="values") >= 1
    assert value(scraped, "acrdash_upstream_request_seconds_count", endpoint="catalog") >= 1
    # And the state read from Redis when scraped.
    assert value(scraped, "acrdash_subscriber_lease_held") == 1
    assert value(scraped, "acrdash_upstream_up") == 1
    assert value(scraped, "acrdash_records", state="live") > 0

    page.close()
    wait_until(
        lambda: value(system_metrics(base_url), "acrdash_sockets", kind="board") == 0,
        timeout=10,
        what="the closed board's socket no longer counted",
    )


def dashboard_expressions() -> list[str]:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "dashboard.json").read_text("utf-8"))
    panels = dashboard["panels"]
    targets = [t["expr"] for p in panels for t in p.get("targets", [])]
    assert len(targets) >= 8, "the dashboard lost its panels"
    return targets


def alert_expressions() -> list[str]:
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text("utf-8"))
    found = [r["expr"] for group in rules["groups"] for r in group["rules"]]
    assert len(found) >= 4, "the alert rules lost some"
    return found


def test_every_metric_the_grafana_dashboard_and_the_alert_rules_use_is_scraped(
    processes, redis_db, settings, tmp_path
):
    base_url, _ = start_stack(
        processes, settings.REDIS_URL, env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")}
    )
    expressions = dashboard_expressions() + alert_expressions()
    used = {name for expression in expressions for name in METRIC_NAME.findall(expression)}
    # Every process has started and counted (the worker ran a task, the subscriber connected).
    scraped = wait_until(
        lambda: (
            (m := system_metrics(base_url))
            and value(m, "acrdash_celery_task_seconds_count") > 0
            and value(m, "acrdash_upstream_ws_connects_total") > 0
            and m
        ),
        timeout=20,
        what="every process's metrics in the scrape",
    )
    assert sorted(used - set(scraped)) == []


def test_metrics_are_refused_to_an_address_not_allowed_and_answered_with_the_token(
    processes, redis_db, settings, tmp_path
):
    emulator = start_emulator(processes, "--scenario", "static")
    token_file = tmp_path / "metrics_token"
    token_file.write_text("a-long-scrape-token\n")
    port = free_port()
    env = {
        **stack_env(emulator, settings.REDIS_URL),
        # 127.0.0.1, where this test asks from, is neither allowed nor a trusted proxy.
        "METRICS_ALLOWED_IPS": "10.0.0.0/8",
        "METRICS_TOKEN_FILE": str(token_file),
        "TRUSTED_PROXIES": "192.0.2.1",
    }
    wait_for_port(port, start_web(processes, env, port), "web")
    base_url = f"http://127.0.0.1:{port}"
    assert WEB_ENV["WEB_WORKERS"] == "1"

    refused = [
        scrape(base_url),
        scrape(base_url, Authorization="Bearer a-wrong-token"),
        scrape(base_url, Authorization="Bearer"),
        scrape(base_url, Authorization="Basic a-long-scrape-token"),
        # An allowed address that a client wrote itself, not a trusted proxy.
        scrape(base_url, **{"X-Forwarded-For": "10.1.2.3"}),
    ]
    for response in refused:
        assert response.status_code == 403
        assert "acrdash" not in response.text

    answered = scrape(base_url, Authorization="Bearer a-long-scrape-token")
    assert answered.status_code == 200
    assert answered.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "acrdash_records" in samples(answered.text)
