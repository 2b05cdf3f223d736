"""The widget designer: administrators make a public widget with the catalog pickers, style it,
and copy each embed beside its live preview; nobody else may."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from playwright.sync_api import expect

from metrics.models import Metric, Team, Widget
from tests.conftest import PASSWORD, log_in, screenshot_folder

pytestmark = pytest.mark.django_db


def public_metric(metric_id, categories=("Sales", "Support"), public=True):
    return Metric.objects.update_or_create(
        metric_id=metric_id,
        defaults={"category_type": "GROUP", "categories": list(categories), "public": public},
    )[0]


@pytest.fixture
def people():
    users = get_user_model().objects
    found = {
        "admin": users.create_user("admin", is_staff=True),
        "sally": users.create_user("sally"),  # supervises Sales
        "vic": users.create_user("vic"),  # views Sales
    }
    team = Team.objects.create(name="Sales", queues=["Sales"])
    team.supervisors.add(found["sally"])
    team.viewers.add(found["vic"])
    return found


@pytest.fixture
def sales_widget():
    return Widget.objects.create(
        slug="sales",
        name="Sales line",
        wait_metric=public_metric("AWTGRP01"),
        wait_category="Sales",
    )


def client_of(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


DESIGNER_PAGES = ["/widgets/", "/widgets/new/", "/widgets/sales/"]


@pytest.mark.parametrize("who", ["sally", "vic"])
def test_only_administrators_design_widgets(people, sales_widget, who):
    client = client_of(people[who])
    for url in DESIGNER_PAGES:
        response = client.get(url)
        assert response.status_code == 403, url
        assert "Only administrators design the public widgets." in response.content.decode()
    saved = client.post("/widgets/sales/", {"name": "Mine", "slug": "sales"})
    assert saved.status_code == 403
    assert client.post("/widgets/sales/delete/").status_code == 403
    assert Widget.objects.get(slug="sales").name == "Sales line"
    # Nothing on their home page leads there.
    assert "/widgets/" not in client.get("/").content.decode()


def test_strangers_are_sent_to_log_in(sales_widget):
    for url in DESIGNER_PAGES:
        response = Client().get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url


def test_an_unknown_widget_is_404(people):
    assert client_of(people["admin"]).get("/widgets/nope/").status_code == 404


def form_data(**changes):
    data = {
        "name": "Support line",
        "slug": "support",
        "wait_metric": "AWTGRP01",
        "wait_category": "Support",
        "queue_metric": "CIQGRP01",
        "queue_category": "Support",
        "agents_metric": "",
        "agents_category": "",
        **{
            field.name: field.default
            for field in Widget._meta.get_fields()
            if field.name.startswith(("text_", "color_")) or field.name in DEFAULTED
        },
        "lang": "en",
        "allowed_origins": "https://www.example.com",
    }
    return {**data, **changes}


DEFAULTED = (
    "high_demand_seconds",
    "min_calls",
    "round_to_minutes",
    "max_age_seconds",
    "font_size",
    "corner_radius",
)


def test_a_widget_is_saved_with_catalog_metrics_and_categories(people):
    public_metric("AWTGRP01"), public_metric("CIQGRP01")
    response = client_of(people["admin"]).post("/widgets/new/", form_data(color_open="#ff8800"))
    assert response.status_code == 302 and response["Location"] == "/widgets/support/"
    widget = Widget.objects.get(slug="support")
    assert (widget.wait_metric.metric_id, widget.wait_category) == ("AWTGRP01", "Support")
    assert (widget.queue_metric.metric_id, widget.color_open) == ("CIQGRP01", "#ff8800")


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"wait_category": "Sails"}, "wait_category", "has no category 'Sails'"),
        ({"queue_metric": "NOPE"}, "queue_metric", "Select a valid choice"),
        ({"wait_metric": "PRIVATE01"}, "wait_metric", "is not marked public"),
        ({"color_text": "red"}, "color_text", "Not a colour"),
        ({"text_open": "{wait:>999}"}, "text_open", "as placeholders"),
    ],
)
def test_a_bad_widget_is_refused_field_by_field(people, changes, field, message):
    public_metric("AWTGRP01"), public_metric("CIQGRP01")
    public_metric("PRIVATE01", public=False)
    response = client_of(people["admin"]).post("/widgets/new/", form_data(**changes))
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert not Widget.objects.filter(slug="support").exists()


def test_deleting_a_widget_takes_it_off_every_site(people, sales_widget):
    response = client_of(people["admin"]).post("/widgets/sales/delete/")
    assert response.status_code == 302
    assert not Widget.objects.filter(slug="sales").exists()


# --- in a browser, on the running system -----------------------------------------------------


@pytest.fixture
def designer_admin(stack):
    """An administrator, and the wait and queue metrics marked public (as the admin's metric
    list does). Made before Playwright starts (its thread refuses ORM calls)."""
    public_metric("AWTGRP01"), public_metric("CIQGRP01")
    get_user_model().objects.create_user("staff_user", password=PASSWORD, is_staff=True)
    return stack


@pytest.mark.django_db(transaction=True)
def test_screenshots_an_administrator_designs_a_widget_and_sees_each_embed_live(
    designer_admin, browser, tmp_path
):
    base_url, _ = designer_admin
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
    page = context.new_page()
    log_in(page, base_url)
    page.get_by_role("link", name="Public widgets").click()
    page.get_by_role("link", name="New widget").click()
    page.fill("#id_name", "Sales line")
    expect(page.locator("#id_slug")).to_have_value("sales-line")  # follows the name
    # Pickers: the metric, then its categories, from the catalog; never typed.
    expect(page.locator("#id_wait_metric option[value=AWTGRP01]")).to_have_count(1)
    page.select_option("#id_wait_metric", "AWTGRP01")
    page.select_option("#id_wait_category", "Sales")
    page.select_option("#id_queue_metric", "CIQGRP01")
    page.select_option("#id_queue_category", "Sales")
    page.fill("#id_min_calls", "1")
    page.fill("#id_color_background", "#102030")
    page.fill("#id_color_text", "#f0f0f0")
    page.fill("#id_font_size", "20")
    expect(page.locator("#unsaved")).to_be_visible()
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"/widgets/sales-line/$"))
    expect(page.locator(".notice")).to_have_text("Saved Sales line.")
    expect(page.locator("#unsaved")).to_be_hidden()
    # The saved choice is shown as chosen, and listed by the server.
    expect(page.locator("#id_wait_metric")).to_have_value("AWTGRP01")
    expect(page.locator("#id_queue_category")).to_have_value("Sales")
    expect(page.locator(".source select option.unlisted")).to_have_count(0)

    # Each embed beside its code, answering live.
    live = re.compile(r"\d+ callers? ahead|not available")
    script = page.locator("#preview-script .acr-wait-widget .w")
    expect(script).to_contain_text(live, timeout=20_000)
    assert script.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(16, 32, 48)"
    assert script.evaluate("e => getComputedStyle(e).fontSize") == "20px"
    framed = page.frame_locator("#preview-iframe iframe").locator(".acr-wait-widget .w")
    expect(framed).to_contain_text(live, timeout=20_000)
    expect(page.locator("#json-answer")).to_contain_text('"state"', timeout=10_000)
    expect(page.locator("#json-answer")).to_contain_text('"background": "#102030"')
    code = page.locator("#code-script").input_value()
    assert code.startswith("<script src=") and "/widget/sales-line.json" in code
    page.locator('[data-embed="script"] button.copy').click()
    expect(page.locator('[data-embed="script"] .copied')).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == code

    # An unsaved change of look shows in the script preview at once, and is asked about.
    page.fill("#id_color_background", "#400000")
    expect(page.locator("#unsaved")).to_be_visible()
    expect(script).to_have_css("background-color", "rgb(64, 0, 0)")
    page.screenshot(path=str(screenshot_folder(tmp_path) / "widget-designer.png"), full_page=True)
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.type), dialog.dismiss()))
    page.get_by_role("link", name="All widgets").click()
    assert dialogs == ["beforeunload"]
    expect(page).to_have_url(re.compile(r"/widgets/sales-line/$"))  # stayed
