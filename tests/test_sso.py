"""Signing in: single sign-on by a trusted proxy's header or an OpenID Connect provider (a stand-in
provider below: the real ones cannot run here), and changing a password."""

from __future__ import annotations

import json
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings
from playwright.sync_api import expect

from dashboard import settings as project_settings
from metrics.models import Team
from tests.conftest import (
    PASSWORD,
    WEB_ENV,
    database_url,
    free_port,
    in_thread,
    wait_for_port,
    web_command,
)

pytestmark = pytest.mark.django_db(transaction=True)

WITH_HEADER_SSO = {
    "SSO_HEADER": "X-Forwarded-User",
    "TRUSTED_PROXIES": ["127.0.0.1"],
    "MIDDLEWARE": [
        name
        for entry in project_settings.MIDDLEWARE
        for name in (
            [entry, "dashboard.sso.TrustedHeaderLogin"]
            if entry.endswith(".AuthenticationMiddleware")
            else [entry]
        )
    ],
    "AUTHENTICATION_BACKENDS": [
        *project_settings.AUTHENTICATION_BACKENDS,
        "dashboard.sso.HeaderBackend",
    ],
}


@pytest.fixture
def sales_team():
    Team.objects.create(name="Sales", queues=["Sales"])


@override_settings(**WITH_HEADER_SSO)
def test_the_proxy_header_signs_a_person_in_with_no_access_until_given_a_team(sales_team):
    proxy = Client(REMOTE_ADDR="127.0.0.1")
    response = proxy.get("/history/", HTTP_X_FORWARDED_USER="sam.sales")
    assert response.status_code == 403  # signed in, but no team yet: nothing to see
    sam = get_user_model().objects.get(username="sam.sales")
    assert not sam.is_staff

    Team.objects.get(name="Sales").supervisors.add(sam)
    assert proxy.get("/history/", HTTP_X_FORWARDED_USER="sam.sales").status_code == 200


@override_settings(**WITH_HEADER_SSO)
def test_the_header_from_anyone_but_the_proxy_is_ignored():
    stranger = Client(REMOTE_ADDR="10.9.8.7")
    response = stranger.get("/", HTTP_X_FORWARDED_USER="admin")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert not get_user_model().objects.filter(username="admin").exists()


@override_settings(**WITH_HEADER_SSO)
def test_a_header_session_ends_when_the_header_stops_or_names_someone_else():
    proxy = Client(REMOTE_ADDR="127.0.0.1")
    assert proxy.get("/", HTTP_X_FORWARDED_USER="ann").wsgi_request.user.username == "ann"
    assert proxy.get("/", HTTP_X_FORWARDED_USER="bob").wsgi_request.user.username == "bob"
    response = proxy.get("/")
    assert response.status_code == 302 and not response.wsgi_request.user.is_authenticated


@override_settings(**WITH_HEADER_SSO)
def test_a_password_login_is_not_ended_by_a_missing_header():
    get_user_model().objects.create_user("pat", password=PASSWORD)
    browser = Client(REMOTE_ADDR="127.0.0.1")
    signed_in = browser.post("/accounts/login/", {"username": "pat", "password": PASSWORD})
    assert signed_in.status_code == 302
    assert browser.get("/").wsgi_request.user.username == "pat"


@override_settings(**WITH_HEADER_SSO, SSO_CREATE_USERS=False)
def test_unknown_people_are_not_created_when_creation_is_off():
    response = Client(REMOTE_ADDR="127.0.0.1").get("/", HTTP_X_FORWARDED_USER="newcomer")
    assert response.status_code == 302
    assert not get_user_model().objects.filter(username="newcomer").exists()


# --- OpenID Connect ------------------------------------------------------------------------------

CLIENT_ID, CLIENT_SECRET = "dashboard", "oidc-test-client-secret-0123456789"


class Provider(BaseHTTPRequestHandler):
    """An OpenID Connect provider that signs in whoever asks, as `person` (authorization code
    flow, HS256 ID tokens signed with the client secret)."""

    person = {"sub": "42", "email": "olga@example.com", "preferred_username": "olga"}
    codes: dict[str, str] = {}  # code -> nonce

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/authorize":
            assert query["client_id"] == CLIENT_ID and query["response_type"] == "code"
            code = f"code-{len(self.codes)}"
            self.codes[code] = query["nonce"]
            answer = urllib.parse.urlencode({"code": code, "state": query["state"]})
            back = f"{query['redirect_uri']}?{answer}"
            self.send_response(302)
            self.send_header("Location", back)
            self.end_headers()
        elif url.path == "/userinfo":
            assert self.headers["Authorization"] == "Bearer access-token"
            self._json(self.person)
        else:
            self.send_error(404)

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        nonce = self.codes.pop(form.get("code", ""), None)
        if self.path != "/token" or nonce is None:
            self.send_error(400)
            return
        now = int(time.time())
        claims = {**self.person, "iss": "test", "aud": CLIENT_ID, "iat": now, "exp": now + 300}
        id_token = jwt.encode({**claims, "nonce": nonce}, CLIENT_SECRET, algorithm="HS256")
        self._json({"id_token": id_token, "access_token": "access-token", "token_type": "Bearer"})

    def _json(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def provider():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_supervisor_signs_in_through_the_oidc_provider(
    processes, redis_db, settings, provider, browser
):
    port = free_port()
    env = {
        "DJANGO_SETTINGS_MODULE": "dashboard.test_settings",
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "OIDC_RP_CLIENT_ID": CLIENT_ID,
        "OIDC_RP_CLIENT_SECRET": CLIENT_SECRET,
        "OIDC_RP_SIGN_ALGO": "HS256",
        "OIDC_OP_AUTHORIZATION_ENDPOINT": f"{provider}/authorize",
        "OIDC_OP_TOKEN_ENDPOINT": f"{provider}/token",
        "OIDC_OP_USER_ENDPOINT": f"{provider}/userinfo",
        "OIDC_LABEL": "Sign in with Example SSO",
    }
    web = processes.start("web-oidc", web_command(), {**env, **WEB_ENV, "WEB_PORT": str(port)})
    wait_for_port(port, web, "web-oidc")

    page = browser.new_page()
    page.goto(f"http://127.0.0.1:{port}/history/")
    page.get_by_role("link", name="Sign in with Example SSO").click()
    # Signed in as olga, who has no team yet: the console says so rather than showing anything.
    expect(page).to_have_url(f"http://127.0.0.1:{port}/history/")
    expect(page.get_by_text("No team of yours")).to_be_visible()
    olga = in_thread(lambda: get_user_model().objects.get(username="olga"))
    assert olga.email == "olga@example.com" and not olga.is_staff


def test_a_half_configured_oidc_provider_stops_start_up_with_the_missing_settings():
    import subprocess

    result = subprocess.run(
        [sys.executable, "-c", "import dashboard.settings"],
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_DEBUG": "1",
            "OIDC_RP_CLIENT_ID": CLIENT_ID,
            "OIDC_OP_TOKEN_ENDPOINT": "https://sso.example/token",
        },
        capture_output=True,
        text=True,
        cwd=project_settings.BASE_DIR,
    )
    assert result.returncode != 0
    assert (
        "OIDC_OP_AUTHORIZATION_ENDPOINT, OIDC_OP_USER_ENDPOINT, OIDC_OP_JWKS_ENDPOINT"
        in result.stderr
    )


def test_a_person_changes_their_password_and_other_sessions_end():
    get_user_model().objects.create_user("pat", password=PASSWORD)
    here, elsewhere = Client(), Client()
    for browser in (here, elsewhere):
        browser.post("/accounts/login/", {"username": "pat", "password": PASSWORD})
    form = here.get("/accounts/password_change/")
    assert form.status_code == 200 and b"Change password" in form.content
    new = "another-long-password-9"
    changed = here.post(
        "/accounts/password_change/",
        {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
        follow=True,
    )
    assert b"Password changed" in changed.content
    assert here.get("/").status_code == 200  # this session goes on
    assert elsewhere.get("/").status_code == 302  # the other one is signed out
    assert (
        Client().post("/accounts/login/", {"username": "pat", "password": new}).status_code == 302
    )
