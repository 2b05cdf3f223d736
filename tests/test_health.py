"""The health endpoint and the upstream status in the admin."""

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model

from metrics import live
from metrics.acr import clock
from tests.conftest import free_port

pytestmark = pytest.mark.django_db(transaction=True)


def fresh_site():
    now = clock.now_ms()
    async_to_sync(live.update_status)(poll_ok_ms=now, ws_ok_ms=now, poll_error="", ws_error="")


def test_nothing_from_the_upstream_is_down(client, redis_db):
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json()["status"] == "down"


def test_an_unreachable_live_store_reads_as_down_not_as_an_error_page(client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json()["status"] == "down"
    admin = get_user_model().objects.create_superuser("admin", password="a-long-password-2")
    client.force_login(admin)
    assert "Redis" in client.get("/health/").json()["upstream"]["poll_error"]  # staff: why


def test_anonymous_monitoring_gets_the_summary_only(client, redis_db):
    fresh_site()
    response = client.get("/health/")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"  # no subscriber holds the lease
    assert "metrics" not in response.json()


def test_staff_see_every_metric_and_the_admin_shows_the_status(client, redis_db, upstream):
    admin = get_user_model().objects.create_superuser("admin", password="a-long-password-2")
    client.force_login(admin)
    from metrics import tasks

    tasks.poll_values()  # catalog + initializing
    report = client.get("/health/").json()
    names = {m["name"] for m in report["metrics"]}
    assert "Calls in Queue" in names
    assert all(m["initializing"] > 0 for m in report["metrics"])
    assert report["upstream"]["poll_error"] == ""

    page = client.get("/admin/metrics/metric/").content.decode()
    assert 'id="upstream-status"' in page
    assert "Last successful poll" in page
    assert upstream.auth_key not in page


def test_a_refused_key_reads_as_words_in_the_admin(client, redis_db, upstream, settings):
    admin = get_user_model().objects.create_superuser("admin", password="a-long-password-2")
    client.force_login(admin)
    settings.ACR_AUTH_KEY = "wrong"
    from metrics import tasks

    tasks.poll_values()
    page = client.get("/admin/metrics/metric/").content.decode()
    assert "upstream refused the auth key (401): check ACR_AUTH_KEY" in page
