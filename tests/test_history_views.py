"""History charts and CSV: reduced for drawing, peaks kept, scoped to what the user may see."""

import csv
import email.message
import io
import json
import re
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import expect

from metrics import history
from metrics.models import Metric, Sample, Team
from tests.conftest import PASSWORD, log_in, screenshot_folder

pytestmark = pytest.mark.django_db(transaction=True)


def csv_body(response) -> str:
    """The text of a streamed CSV answer (its chunks come from an async iterator)."""

    async def collect() -> bytes:
        return b"".join([chunk async for chunk in response.streaming_content])

    return async_to_sync(collect)().decode()


@pytest.fixture
def sales_history():
    supervisor = get_user_model().objects.create_user("sally", password=PASSWORD)
    team = Team.objects.create(name="Sales", queues=["Sales"])
    team.supervisors.add(supervisor)
    Metric.objects.update_or_create(
        metric_id="CIQGRP01",
        defaults={
            "name": "Calls in Queue",
            "category_type": "GROUP",
            "categories": ["Sales", "Support"],
        },
    )
    Metric.objects.update_or_create(
        metric_id="CBDDIR01",
        defaults={
            "name": "Calls by Direction",
            "category_type": "CALL_DIRECTION",
            "categories": ["Inbound"],
        },
    )
    now = timezone.now()
    Sample.objects.bulk_create(
        Sample.of("CIQGRP01", category, now - timedelta(minutes=m), m)
        for m in range(1, 120)
        for category in ("Sales", "Support", "=cmd|' /C calc'!A0")
    )
    return supervisor


def test_a_supervisor_gets_only_their_queues(client, sales_history):
    client.force_login(sales_history)
    data = client.get("/history/data.json?metric=CIQGRP01&hours=24").json()
    assert [s["category"] for s in data["series"]] == ["Sales"]
    sales = data["series"][0]
    assert 60 <= len(sales["t"]) <= 119  # reduced for drawing: a day is 600 buckets
    assert min(sales["v"]) == 1 and max(sales["v"]) == 119
    assert client.get("/history/data.json?metric=CBDDIR01").status_code == 404
    assert client.get("/history/data.json?metric=NOPE").status_code == 404
    assert client.get("/history/data.json?metric=CIQGRP01&hours=lots").status_code == 400
    rows = list(csv.reader(io.StringIO(csv_body(client.get("/history/data.csv?metric=CIQGRP01")))))
    assert rows[0] == ["time", "metric_id", "category", "value"]
    assert {row[2] for row in rows[1:]} == {"Sales"}


def test_a_chosen_range_returns_only_its_samples(client, sales_history):
    client.force_login(sales_history)
    now = timezone.now()
    start, end = now - timedelta(minutes=30, seconds=30), now - timedelta(minutes=9, seconds=30)
    query = (
        f"metric=CIQGRP01&start={int(start.timestamp() * 1000)}&end={int(end.timestamp() * 1000)}"
    )
    [sales] = client.get(f"/history/data.json?{query}").json()["series"]
    assert sorted(sales["v"]) == list(range(10, 31))  # one sample a minute, 10 to 30 min ago
    rows = list(csv.reader(io.StringIO(csv_body(client.get(f"/history/data.csv?{query}")))))
    assert sorted(int(row[3]) for row in rows[1:]) == list(range(10, 31))
    for bad in ("start=1&end=x", "start=5000&end=4000", f"start=0&end={32 * 86_400_000}", "end=9"):
        assert client.get(f"/history/data.json?metric=CIQGRP01&{bad}").status_code == 400


@pytest.mark.parametrize("start_ms", [10**17, -(10**17), 10**30, -(2**63), 253_402_300_800_000])
def test_a_range_beyond_the_calendar_is_refused(client, sales_history, start_ms):
    client.force_login(sales_history)
    for path in ("/history/data.json", "/history/data.csv"):
        query = f"metric=CIQGRP01&start={start_ms}&end={start_ms + 60_000}"
        assert client.get(f"{path}?{query}").status_code == 400


def test_a_range_at_the_ends_of_the_calendar_is_answered(client, sales_history):
    client.force_login(sales_history)
    year_1, year_9999 = -62_135_596_800_000, 253_402_300_000_000
    for start_ms in (year_1, year_9999):
        query = f"metric=CIQGRP01&start={start_ms}&end={start_ms + 60_000}"
        assert client.get(f"/history/data.json?{query}").json()["series"] == []
        body = csv_body(client.get(f"/history/data.csv?{query}"))
        assert body.splitlines() == ["time,metric_id,category,value"]


def test_the_csv_streams_every_sample_once_across_chunks(client, sales_history, monkeypatch):
    monkeypatch.setattr(history, "CSV_CHUNK", 7)  # 119 samples: 17 chunks
    Sample.objects.bulk_create(  # several samples at one moment: paging must not skip or repeat
        Sample.of("CIQGRP01", f"Sales{n}", timezone.now() - timedelta(minutes=5), n)
        for n in range(9)
    )
    client.force_login(sales_history)
    response = client.get("/history/data.csv?metric=CIQGRP01&hours=3")
    assert response.streaming and response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(csv_body(response))))[1:]
    assert sorted(int(row[3]) for row in rows) == list(range(1, 120))
    assert [row[0] for row in rows] == sorted(row[0] for row in rows)  # oldest first


def test_csv_times_carry_the_sites_offset(client, sales_history, settings):
    settings.TIME_ZONE = "America/Chicago"
    summer = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)  # daylight saving time: UTC-5
    Sample.objects.bulk_create([Sample.of("CIQGRP01", "Sales", summer, 7)])
    client.force_login(sales_history)
    start = int(summer.timestamp() * 1000) - 3_600_000
    query = f"metric=CIQGRP01&start={start}&end={start + 7_200_000}"
    rows = list(csv.reader(io.StringIO(csv_body(client.get(f"/history/data.csv?{query}")))))
    assert rows == [
        ["time", "metric_id", "category", "value"],
        ["2026-07-01T07:00:00-05:00", "CIQGRP01", "Sales", "7"],
    ]
    body = csv_body(client.get("/history/data.csv?metric=CIQGRP01&hours=3"))
    chicago = ZoneInfo("America/Chicago")
    for row in list(csv.reader(io.StringIO(body)))[1:]:  # the fixture's, from the last 2 hours
        at = datetime.fromisoformat(row[0])
        assert at.utcoffset() == chicago.utcoffset(at.replace(tzinfo=None))


def test_a_spreadsheet_never_runs_a_category_as_a_formula(client, sales_history):
    admin = get_user_model().objects.create_user("admin", password=PASSWORD, is_staff=True)
    client.force_login(admin)
    body = csv_body(client.get("/history/data.csv?metric=CIQGRP01&hours=3"))
    assert "\n=cmd" not in body and ",=cmd" not in body
    assert "'=cmd" in body


@pytest.mark.parametrize(
    "hostile",
    ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(1)", "\t=1+1", "\r=1+1", '=HYPER"LINK";x'],
)
def test_no_cell_of_the_csv_is_run_as_a_formula(client, hostile):
    """Metric ids and categories come from the upstream; a hostile one is shown as text."""
    admin = get_user_model().objects.create_user("admin", password=PASSWORD, is_staff=True)
    metric_id = f"{hostile}ID"
    Metric.objects.create(metric_id=metric_id, category_type="GROUP", categories=[hostile])
    Sample.of(metric_id, hostile, timezone.now() - timedelta(minutes=1), 5).save()
    client.force_login(admin)
    response = client.get("/history/data.csv", {"metric": metric_id, "hours": "1"})
    [header, row] = list(csv.reader(io.StringIO(csv_body(response))))
    assert row[1:] == ["'" + metric_id, "'" + hostile, "5"]


@pytest.mark.parametrize(
    ("metric_id", "filename"),
    [
        ('Q"; filename=evil.exe; x="', 'Q"; filename=evil.exe; x="'),
        ("Wait\\Time", "Wait\\Time"),
        ("Wartezeit-Ä", "Wartezeit-Ä"),
    ],
)
def test_the_download_names_its_file_with_the_metric_id_quoted(client, metric_id, filename):
    admin = get_user_model().objects.create_user("admin", password=PASSWORD, is_staff=True)
    Metric.objects.create(metric_id=metric_id, category_type="NONE", categories=[""])
    client.force_login(admin)
    response = client.get("/history/data.csv", {"metric": metric_id, "hours": "1"})
    message = email.message.Message()
    message["Content-Disposition"] = response["Content-Disposition"]
    assert message.get_content_disposition() == "attachment"
    assert message.get_filename().startswith(filename + "-")
    assert message.get_filename().endswith(".csv")
    assert message.get_param("x", header="Content-Disposition") is None  # no parameter smuggled


def test_anonymous_visitors_are_sent_to_log_in(client):
    for path in (
        "/history/",
        "/history/data.json?metric=CIQGRP01",
        "/history/data.csv",
        "/status/",
    ):
        assert client.get(path).status_code == 302


def test_a_supervisor_sees_their_team_live_and_downloads_history(stack, sales_history, browser):
    base_url, _ = stack
    page = browser.new_page()
    log_in(page, base_url, "sally")
    page.get_by_role("link", name="All metrics").click()
    expect(page.locator('.tile[data-category="Sales"][data-state="live"]').first).to_be_visible(
        timeout=20_000
    )
    categories = set(
        page.locator("#board .tile").evaluate_all("ts => ts.map(t => t.dataset.category)")
    )
    assert categories == {"Sales"}  # not Support, not the agents of other teams

    page.goto(base_url + "/history/")
    page.select_option("#history-metric", "CIQGRP01")
    page.click("text=Show")
    expect(page.locator("#history-state")).to_contain_text("1 series", timeout=15_000)
    expect(page.locator("#history-chart .scatterlayer path.js-line")).to_have_count(1)
    with page.expect_download() as download:
        page.click("#history-csv")
    content = open(download.value.path(), encoding="utf-8").read()
    assert content.startswith("time,metric_id,category,value")
    assert re.search(r",CIQGRP01,Sales,", content)

    page.select_option("#history-hours", "custom")  # from ... to ...: the last 24 h to start with
    page.fill(
        "#history-from", (timezone.localtime() - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M")
    )
    page.click("text=Show")
    # The inputs count whole minutes: 29 to 31 of the fixture's one-a-minute samples, not 119.
    expect(page.locator("#history-state")).to_have_text(
        re.compile(r"1 series, (29|30|31) points"), timeout=15_000
    )


@pytest.fixture
def sales_team_with_agents(sales_history):
    team = Team.objects.get(name="Sales")
    team.agents = ["Ana García(201)", "Ben Okafor(202)"]
    team.save()
    return sales_history


def test_a_supervisor_drills_down_into_an_agent(stack, sales_team_with_agents, browser):
    base_url, _ = stack
    page = browser.new_page()
    log_in(page, base_url, "sally", path="/team/")
    queues = page.locator('.team-table[data-kind="GROUP"] tbody tr')
    agents = page.locator('.team-table[data-kind="AGENT"] tbody tr')
    expect(queues).to_have_count(1, timeout=20_000)
    expect(queues.first).to_have_attribute("data-category", "Sales")
    expect(agents).to_have_count(2)
    talk = page.locator('.team-table[data-kind="AGENT"] .cell[data-metric-id="ATTAGT01"]')
    expect(talk.first).to_have_attribute("data-state", "live", timeout=20_000)

    page.click('.team-table[data-kind="AGENT"] button.sort[data-metric-id="ATTAGT01"]')
    values = [int(v) for v in talk.evaluate_all("cs => cs.map(c => c.dataset.value)")]
    assert values == sorted(values, reverse=True)  # sorted, highest first

    page.fill("#team-search", "ben")
    expect(agents).to_have_count(1)
    page.click(".agent-link")
    detail = page.locator("#agent-detail")
    expect(detail).to_be_visible()
    expect(detail).to_have_attribute("data-agent", "Ben Okafor(202)")
    first = int(detail.locator('.cell[data-metric-id="ATTAGT01"]').get_attribute("data-value"))
    page.wait_for_timeout(2100)
    later = int(detail.locator('.cell[data-metric-id="ATTAGT01"]').get_attribute("data-value"))
    assert later - first >= 1400  # Ben is on a call (static scenario): his talk time ticks
    expect(detail.get_by_role("link", name="history").first).to_be_visible()


def test_a_late_message_does_not_set_the_team_pages_clock_back(
    stack, sales_team_with_agents, browser
):
    """A message that was seconds on the way says the server's clock is that far behind; the
    page keeps its estimate from the prompt ones, so Ben's ticking talk time never jumps back."""
    base_url, _ = stack
    page = browser.new_page()
    route: dict = {"holding": False}
    late: list[str] = []  # snapshots held back by the proxy

    def proxy(ws):
        server = ws.connect_to_server()
        route.update(page=ws, server=server)

        def from_server(message):
            if route["holding"] and json.loads(message)["type"] == "snapshot":
                late.append(message)
            else:
                ws.send(message)

        server.on_message(from_server)

    page.route_web_socket("**/ws/boards/all/", proxy)
    log_in(page, base_url, "sally", path="/team/")
    talk = (
        '.team-table[data-kind="AGENT"] tr[data-category="Ben Okafor(202)"]'
        ' .cell[data-metric-id="ATTAGT01"]'
    )
    expect(page.locator(talk)).to_have_attribute("data-state", "live", timeout=20_000)
    page.wait_for_timeout(2000)  # a few prompt messages for the clock estimate
    # Every value the cell shows, as it is set (the render a snapshot causes included).
    page.evaluate(
        """(selector) => {
            window.shown = [];
            new MutationObserver((changes) => {
                for (const { target } of changes)
                    if (target.matches(selector)) window.shown.push(Number(target.dataset.value));
            }).observe(document.getElementById("team"),
                       { subtree: true, attributes: true, attributeFilter: ["data-value"] });
            document.querySelector(selector).dataset.before = "yes";
        }""",
        talk,
    )

    route["holding"] = True
    route["server"].send(json.dumps({"type": "snapshot"}))  # as a page asks for one
    page.wait_for_timeout(5000)  # the answer is held back; status messages keep coming
    route["holding"] = False
    assert late, "the server sent no snapshot"
    route["page"].send(late[0])

    # The late snapshot redraws the table; the talk time goes on from where it was.
    expect(page.locator(talk + "[data-before]")).to_have_count(0)
    page.wait_for_timeout(1500)
    shown = page.evaluate("window.shown")
    assert len(shown) >= 7, shown
    assert all(later > earlier - 1000 for earlier, later in pairwise(shown)), shown


def test_a_day_of_one_second_samples_is_reduced_in_the_database_with_peaks_kept():
    end = timezone.now().replace(microsecond=0)
    start = end - timedelta(hours=24)
    spike_at = start + timedelta(hours=13)
    Sample.objects.bulk_create(
        (
            Sample.of(
                "AWT",
                "Sales",
                start + timedelta(seconds=s),
                10_000.0 if start + timedelta(seconds=s) == spike_at else float(s % 60),
            )
            for s in range(0, 86_400, 3)
        ),
        batch_size=5000,
    )
    [series] = history.series("AWT", None, start, end)
    assert len(series["t"]) <= 2 * history.BUCKETS
    assert max(series["v"]) == 10_000.0 and min(series["v"]) == 0.0
    assert series["t"] == sorted(series["t"])


@pytest.fixture
def waits_and_calls():
    """A duration (the longest wait, up to 9:50) and a count (up to 118,000) over the last hour.
    (Written before Playwright starts: its sync API runs an event loop in this thread.)"""
    now = timezone.now()
    for metric_id, name, category in [
        ("LWCGRP01", "Longest Waiting Call", "Sales"),
        ("CBDDIR01", "Calls by Direction", "Inbound"),
    ]:
        Metric.objects.update_or_create(
            metric_id=metric_id,
            defaults={"name": name, "category_type": "GROUP", "categories": [category]},
        )
    Sample.objects.bulk_create(
        [
            Sample.of("LWCGRP01", "Sales", now - timedelta(minutes=m), m * 10_000)
            for m in range(1, 60)
        ]
        + [
            Sample.of("CBDDIR01", "Inbound", now - timedelta(minutes=m), m * 2_000)
            for m in range(1, 60)
        ]
    )


def test_screenshots_charts_label_durations_as_clocks_and_counts_as_plain_numbers(
    stack, staff_user, waits_and_calls, browser, tmp_path
):
    base_url, _ = stack
    page = browser.new_page()
    log_in(page, base_url)
    page.get_by_role("link", name="All metrics").click()  # the unit comes from the live records
    expect(page.locator('.tile[data-metric-id="LWCGRP01"][data-state="live"]').first).to_be_visible(
        timeout=20_000
    )
    page.goto(base_url + "/history/")
    ticks = page.locator("#history-chart .ytick text")
    page.select_option("#history-metric", "LWCGRP01")  # up to 9:50 (590,000 ms)
    page.click("text=Show")
    # Drawn for it (the running system may have sampled its other queues too: 1 series or more)
    state = re.compile(r"^Longest Waiting Call: \d+ series")
    expect(page.locator("#history-state")).to_have_text(state, timeout=15_000)
    assert ticks.all_text_contents()[:3] == ["00:00", "02:00", "04:00"]
    assert all(re.fullmatch(r"\d\d:\d\d", text) for text in ticks.all_text_contents())
    page.set_viewport_size({"width": 1280, "height": 720})
    page.screenshot(path=str(screenshot_folder(tmp_path) / "history-chart.png"), full_page=True)
    page.select_option("#history-metric", "CBDDIR01")  # up to 118,000 calls
    page.click("text=Show")
    expect(page.locator("#history-state")).to_contain_text("Calls by Direction", timeout=15_000)
    expect(ticks.first).not_to_have_text("00:00")
    texts = ticks.all_text_contents()
    assert "100,000" in texts and not any(re.search(r"[kM]$", text) for text in texts)
