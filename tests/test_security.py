"""Security checks: deploy settings, headers, CSRF, login throttling, socket abuse, key leaks,
and names with markup rendered as text."""

import json
import os
import subprocess
import sys

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from playwright.sync_api import expect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.sync.client import connect as ws_connect

from dashboard import boards
from dashboard.asgi import application
from metrics import live
from metrics.acr import clock
from metrics.models import Board
from tests.conftest import (
    LOGS,
    ROOT,
    WEB_ENV,
    KeyScan,
    database_url,
    free_port,
    log_in,
    start_stack,
    system_env,
    wait_for_port,
    wait_until,
    web_command,
)

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1")


def test_check_deploy_is_clean_with_production_settings():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "dashboard.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "x7" * 30 + "-a-long-random-production-secret",
        "ALLOWED_HOSTS": "dash.example.com",
    }
    env.pop("SECURE_HTTPS", None)
    result = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_pages_carry_a_content_security_policy(client):
    response = client.get("/accounts/login/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("style-src")[0]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_hsts_and_secure_cookies_behind_tls(client, settings):
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/accounts/login/").status_code == 301  # plain http is redirected
    response = client.get("/accounts/login/", secure=True)
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")


def test_forms_need_a_csrf_token():
    get_user_model().objects.create_user("ana", password="a-long-password-3")
    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/accounts/login/", {"username": "ana", "password": "a-long-password-3"})
    assert response.status_code == 403


def test_failed_logins_are_throttled(client, settings):
    get_user_model().objects.create_user("ana", password="a-long-password-3")
    statuses = [
        client.post("/accounts/login/", {"username": "ana", "password": "guess"}).status_code
        for _ in range(settings.AXES_FAILURE_LIMIT)
    ]
    assert statuses == [200] * (settings.AXES_FAILURE_LIMIT - 1) + [429]  # the form, then locked
    locked = client.post("/accounts/login/", {"username": "ana", "password": "a-long-password-3"})
    assert locked.status_code == 429  # even the right password, for a while
    assert "_auth_user_id" not in client.session


def test_behind_a_proxy_one_clients_failed_logins_do_not_lock_out_another(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    get_user_model().objects.create_user("ana", password="a-long-password-3")
    proxy = Client(REMOTE_ADDR="10.0.0.2")

    def log_in(client_address, password):
        # The proxy appends the address it saw to whatever the client sent.
        forwarded = f"198.51.100.99, {client_address}"
        data = {"username": "ana", "password": password}
        return proxy.post("/accounts/login/", data, HTTP_X_FORWARDED_FOR=forwarded)

    guesses = [log_in("203.0.113.5", "guess").status_code for _ in range(5)]
    assert guesses[-1] == 429
    assert log_in("203.0.113.5", "a-long-password-3").status_code == 429  # that client, locked
    assert log_in("192.0.2.44", "a-long-password-3").status_code == 302  # Ana, elsewhere


def test_a_forwarded_address_from_anyone_but_a_trusted_proxy_is_ignored(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    get_user_model().objects.create_user("ana", password="a-long-password-3")
    stranger = Client(REMOTE_ADDR="203.0.113.5")
    for n in range(5):  # a new made-up address each time: it does not shake off the throttle
        data = {"username": "ana", "password": "guess"}
        response = stranger.post("/accounts/login/", data, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    assert response.status_code == 429


def test_password_reset_is_not_routed_while_mail_would_only_be_logged(client, settings):
    assert not settings.PASSWORD_RESET_ENABLED  # the console backend, the default
    for path in ("/accounts/password_reset/", "/accounts/reset/MQ/set-password/"):
        assert client.get(path).status_code == 404
    assert client.get("/accounts/login/").status_code == 200
    assert client.get("/accounts/password_change/").status_code == 302  # to log in first


def test_password_reset_is_on_where_mail_leaves_this_machine():
    code = "from django.conf import settings; print(settings.PASSWORD_RESET_ENABLED)"
    smtp = {"EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend"}
    for env, enabled in [({}, "False"), (smtp, "True")]:
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env={
                "DJANGO_SETTINGS_MODULE": "dashboard.test_settings",
                "PATH": "/usr/bin:/bin",
                **env,
            },
            capture_output=True,
            text=True,
        )
        assert result.stdout.strip() == enabled, result.stderr


@pytest.fixture
def reset_routed(settings, redis_db):
    """Password reset on, as with an SMTP server configured (the test outbox holds the mail)."""
    import importlib

    from django.urls import clear_url_caches

    import dashboard.accounts
    import dashboard.urls

    def route(enabled):
        settings.PASSWORD_RESET_ENABLED = enabled
        importlib.reload(dashboard.accounts)
        importlib.reload(dashboard.urls)
        clear_url_caches()

    route(True)
    yield
    route(False)


def test_password_reset_requests_are_throttled_per_client_and_per_address(reset_routed):
    get_user_model().objects.create_user("ana", email="ana@example.com", password="x-long-pw-9")

    def ask(client_address, email="ana@example.com"):
        client = Client(REMOTE_ADDR=client_address)
        return client.post("/accounts/password_reset/", {"email": email}).status_code

    assert [ask("203.0.113.5", f"guess{n}@example.com") for n in range(6)] == [302] * 5 + [429]
    assert [ask(f"198.51.100.{n}") for n in range(6)] == [302] * 5 + [429]
    assert len(mail.outbox) == 5  # to Ana, once per allowed request
    assert ask("192.0.2.1", "someone@example.com") == 302  # others are not held up


async def test_a_flood_of_websocket_messages_closes_the_socket(redis_db):
    def session_cookie():
        user = get_user_model().objects.create_user(
            "sup", password="a-long-password-4", is_staff=True
        )
        client = Client()
        client.force_login(user)
        return f"sessionid={client.cookies['sessionid'].value}".encode()

    headers = [(b"origin", b"http://127.0.0.1"), (b"cookie", await sync_to_async(session_cookie)())]
    communicator = WebsocketCommunicator(application, "/ws/boards/all/", headers=headers)
    assert (await communicator.connect())[0]
    await communicator.receive_json_from(timeout=5)
    for _ in range(11):
        await communicator.send_json_to({"type": "snapshot"})
    messages = [await communicator.receive_output(timeout=5) for _ in range(11)]
    assert messages[-1] == {"type": "websocket.close", "code": 4429}


@pytest.fixture
def web_server(processes, redis_db, settings):
    """The web process alone (no upstream needed), on a free port: its host:port."""
    port = free_port()
    env = {
        "DJANGO_SETTINGS_MODULE": "dashboard.test_settings",
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        **WEB_ENV,
        "WEB_PORT": str(port),
    }
    wait_for_port(port, processes.start("web", web_command(), env), "web")
    return f"127.0.0.1:{port}"


def signed_in_cookie() -> str:
    user = get_user_model().objects.create_user("sup", password="a-long-password-4", is_staff=True)
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def test_a_4_mib_websocket_message_is_refused_by_the_server_before_it_is_read(web_server):
    headers = {"Origin": f"http://{web_server}", "Cookie": signed_in_cookie()}
    with ws_connect(f"ws://{web_server}/ws/boards/all/", additional_headers=headers) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "snapshot"
        # The start of a 4 MiB message: the server must refuse it from its header. (Sent whole,
        # the server's close races the rest of the upload and the connection is reset.)
        message = Frame(Opcode.TEXT, b"x" * (4 * 1024 * 1024)).serialize(mask=True, extensions=[])
        ws.socket.sendall(message[:1024])
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd.code == 1009
    assert "exceeds limit of 4096 bytes" in closed.value.rcvd.reason


# An upstream error's own words: our paths and settings, and what the upstream answered.
RAW_POLL_ERROR = "values response unreadable: <html>Tomcat 9.0.1 on chronicall-01</html>"
RAW_WS_ERROR = "upstream refused the auth key (401): check ACR_AUTH_KEY"


async def status_with_raw_errors() -> live.Status:
    now = clock.now_ms()
    return await live.update_status(
        poll_ok_ms=now, ws_ok_ms=now, poll_error=RAW_POLL_ERROR, ws_error=RAW_WS_ERROR
    )


async def test_a_tv_is_told_that_the_upstream_fails_not_what_it_said(redis_db):
    def tv_link():
        board = Board.objects.create(name="Wall", slug="wall")
        return boards.create_display_link("TV", board=board)[1]

    token = await sync_to_async(tv_link)()
    await live.update_status(poll_error="", ws_error="")
    tv = WebsocketCommunicator(application, f"/ws/display/{token}/", headers=[ORIGIN])
    assert (await tv.connect())[0]
    assert (await tv.receive_json_from(timeout=5))["status"]["poll_error"] == ""
    await live.publish({"type": "status.update", "status": await status_with_raw_errors()})
    status = (await tv.receive_json_from(timeout=5))["status"]
    assert (status["poll_error"], status["ws_error"]) == (
        "the upstream server cannot be read",
        "the live connection to the upstream server is interrupted",
    )
    await tv.send_json_to({"type": "snapshot"})
    snapshot = await tv.receive_json_from(timeout=5)
    assert snapshot["status"]["poll_error"] == "the upstream server cannot be read"
    assert "Tomcat" not in json.dumps(snapshot) and "ACR_AUTH_KEY" not in json.dumps(snapshot)
    await tv.disconnect()
    # Staff keep the detail.
    headers = [ORIGIN, (b"cookie", (await sync_to_async(signed_in_cookie)()).encode())]
    staff = WebsocketCommunicator(application, "/ws/boards/all/", headers=headers)
    assert (await staff.connect())[0]
    assert (await staff.receive_json_from(timeout=5))["status"]["poll_error"] == RAW_POLL_ERROR
    await staff.disconnect()


def test_anonymous_health_checks_get_generic_errors_and_staff_the_detail(client, redis_db):
    async_to_sync(status_with_raw_errors)()
    upstream = client.get("/health/").json()["upstream"]
    assert (upstream["poll_error"], upstream["websocket_error"]) == (
        "the upstream server cannot be read",
        "the live connection to the upstream server is interrupted",
    )
    staff = get_user_model().objects.create_user("ops", password="a-long-password-5", is_staff=True)
    client.force_login(staff)
    upstream = client.get("/health/").json()["upstream"]
    assert (upstream["poll_error"], upstream["websocket_error"]) == (RAW_POLL_ERROR, RAW_WS_ERROR)


def test_pages_connect_to_their_own_websocket_and_to_no_other_host(web_server, staff_user, page):
    base_url = f"http://{web_server}"
    violations = []
    page.on("console", lambda m: violations.append(m.text) if "Security Policy" in m.text else 0)
    log_in(page, base_url)
    page.goto(base_url + "/boards/all/")
    expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
    assert violations == []
    blocked = page.evaluate(
        """() => new Promise(done => {
            document.addEventListener("securitypolicyviolation", e =>
                done(e.effectiveDirective + " " + e.blockedURI));
            try { new WebSocket("ws://127.0.0.2:9/"); } catch (e) { /* a SecurityError, too */ }
            setTimeout(() => done("allowed"), 3000);
        })"""
    )
    assert blocked == "connect-src ws://127.0.0.2:9/"


def test_the_subscriber_logs_at_debug_without_the_upstream_key(
    processes, emulator, redis_db, settings
):
    env = system_env(emulator, settings.REDIS_URL)
    subscriber = processes.start(
        "subscriber-debug",
        [sys.executable, "manage.py", "subscribe_upstream"],
        {**env, "LOG_LEVEL": "DEBUG"},
    )
    log = LOGS / "subscriber-debug.log"
    # The websockets library's own request line: the subscription was made, at DEBUG.
    wait_until(
        lambda: "> GET /rest/api/v1/realtime-metric-subscription" in log.read_text(),
        timeout=20,
        what="the subscriber's websocket request in its DEBUG log",
    )
    subscriber.terminate()
    subscriber.wait(timeout=10)
    text = log.read_text()
    assert emulator.auth_key not in text
    assert "auth_token=***" in text


def test_the_key_scanner_finds_a_leak():
    scan = KeyScan()
    scan.texts.append(("page", "config = {key: 'test-0123456789abcdef01234567'}"))
    with pytest.raises(AssertionError, match="upstream key"):
        scan.assert_clean()


def test_names_with_markup_render_as_text(processes, redis_db, settings, staff_user, browser):
    base_url, _ = start_stack(processes, settings.REDIS_URL, "--hostile-names")
    page = browser.new_page()
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    log_in(page, base_url)
    page.goto(base_url + "/boards/all/")
    expect(page.locator(".tile[data-state=live]").first).to_be_visible(timeout=20_000)
    titles = page.locator("#board h2").all_inner_texts()
    assert any("<img" in title for title in titles), titles  # shown, as text
    categories = page.locator("#board .tile").evaluate_all(
        "tiles => tiles.map(t => t.dataset.category)"
    )
    assert any("<" in category for category in categories), categories
    assert page.locator("#board img, #board b, #board script").count() == 0
    page.wait_for_timeout(500)
    assert dialogs == []
