"""The catalog picker's data (/catalog.json): what the signed-in user may put on a board or a
rule, and nothing else."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from metrics.models import Metric, Team

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    users = get_user_model().objects
    found = {
        "admin": users.create_user("admin", is_staff=True),
        "sally": users.create_user("sally"),  # supervises Sales
        "vic": users.create_user("vic"),  # views Sales
        "nora": users.create_user("nora"),  # no team
    }
    team = Team.objects.create(name="Sales", queues=["Sales"], agents=["Ana(201)"])
    team.supervisors.add(found["sally"])
    team.viewers.add(found["vic"])
    Metric.objects.create(
        metric_id="CIQ",
        name="Calls in Queue",
        category_type="GROUP",
        categories=["Support", "Sales", "billing"],
    )
    Metric.objects.create(metric_id="TOT", name="Calls today", category_type="NONE")
    Metric.objects.create(
        metric_id="TLK", name="Talk", category_type="AGENT", categories=["Ana(201)"]
    )
    Metric.objects.create(
        metric_id="OLD", name="Gone", category_type="GROUP", categories=["Sales"], in_catalog=False
    )
    return found


def catalog_of(user):
    client = Client()
    if user is not None:
        client.force_login(user)
    return client.get("/catalog.json")


def test_staff_get_every_listed_metric_and_category(people):
    response = catalog_of(people["admin"])
    assert response.status_code == 200
    metrics = {m["metric_id"]: m for m in response.json()["metrics"]}
    assert set(metrics) == {"CIQ", "TOT", "TLK"}  # not one the upstream no longer lists
    assert metrics["CIQ"]["categories"] == ["billing", "Sales", "Support"]  # sorted, any case
    assert metrics["TOT"] == {
        "metric_id": "TOT",
        "name": "Calls today",
        "category_type": "NONE",
        "categories": [],
    }


def test_a_supervisor_gets_only_their_teams_categories(people):
    response = catalog_of(people["sally"])
    assert response.status_code == 200
    metrics = {m["metric_id"]: m["categories"] for m in response.json()["metrics"]}
    assert metrics == {"CIQ": ["Sales"], "TLK": ["Ana(201)"]}  # no total: not a team's


@pytest.mark.parametrize("who", ["vic", "nora", None])
def test_viewers_strangers_and_anonymous_visitors_are_refused(people, who):
    response = catalog_of(people[who] if who else None)
    assert response.status_code == 403
    assert b"Sales" not in response.content and b"CIQ" not in response.content
