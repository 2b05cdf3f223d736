"""Signing in: single sign-on by a trusted proxy's header or an OpenID Connect provider (a stand-in
provider below: the real ones cannot run here), and changing a password."""

from __future__ import annotations

import io
import json
import re
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import jwt
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.core.handlers.asgi import ASGIRequest
from django.test import Client, override_settings
from playwright.sync_api import expect

from dashboard import settings as project_settings
from dashboard.sso import TrustedHeaderLogin
from metrics.models import OIDCIdentity, Team
from tests.conftest import (
    PASSWORD,
    WEB_ENV,
    daphne_command,
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


def start_server(processes, server: str, env: dict[str, str]) -> str:
    """The app under `server` ("uvicorn", as shipped, or "daphne") with `env`; its base URL."""
    port = free_port()
    env = {
        "DJANGO_SETTINGS_MODULE": "dashboard.test_settings",
        "DATABASE_URL": database_url(),
        **env,
    }
    if server == "uvicorn":
        process = processes.start(server, web_command(), {**env, **WEB_ENV, "WEB_PORT": str(port)})
    else:
        process = processes.start(server, daphne_command(port), env)
    wait_for_port(port, process, server)
    return f"http://127.0.0.1:{port}"


def signed_in_as(base_url: str, headers=(), client=None) -> str | None:
    """Who the home page says is signed in (None: it sent us to log in), asked with these raw
    headers (names spelled exactly so) or by this client."""
    response = (client or httpx).get(
        f"{base_url}/", headers=list(headers), timeout=10, follow_redirects=True
    )
    found = re.search(r'class="logout".*?<span>([^<]*)</span>', response.text, re.S)
    return found.group(1) if found else None


@pytest.mark.parametrize("server", ["uvicorn", "daphne"])
def test_only_the_exact_header_name_signs_in_under_every_server(
    processes, redis_db, settings, server
):
    """Django folds X-Forwarded_User and X-Forwarded-User into one META key: a client could slip
    the look-alike past a proxy that only sets (or strips) the real one."""
    get_user_model().objects.create_user("admin", password=PASSWORD, is_staff=True)
    base_url = start_server(
        processes,
        server,
        {
            "REDIS_URL": settings.REDIS_URL,
            "SSO_HEADER": "X-Forwarded-User",
            "SSO_TRUSTED_PROXIES": "127.0.0.1",
        },
    )
    # Today's behaviour, kept: the proxy's exact header signs in (in any case).
    assert signed_in_as(base_url, [("X-Forwarded-User", "sam")]) == "sam"
    assert signed_in_as(base_url, [("x-forwarded-user", "sam")]) == "sam"
    # A look-alike name signs no one in, alone or beside the real one. (Daphne drops underscored
    # names before the app sees them: there the real one alone is left, and counts.)
    assert signed_in_as(base_url, [("X-Forwarded_User", "admin")]) is None
    assert signed_in_as(base_url, [("X_Forwarded_User", "admin")]) is None
    beside = None if server == "uvicorn" else "sam"
    both = [("X-Forwarded-User", "sam"), ("X-Forwarded_User", "admin")]
    assert signed_in_as(base_url, both) == beside
    assert signed_in_as(base_url, both[::-1]) == beside
    # Twice (a proxy that appends to the client's header rather than replacing it): no one.
    assert (
        signed_in_as(base_url, [("X-Forwarded-User", "admin"), ("X-Forwarded-User", "sam")]) is None
    )


@override_settings(**WITH_HEADER_SSO)
def test_the_header_is_read_by_its_exact_name_not_by_the_folded_meta_key():
    """A server that passes underscored names on, and a Django that folds them into the real
    header's META key (as Django did before 5.2.19): the look-alike still signs no one in."""
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "query_string": b"",
        "headers": [(b"x-forwarded_user", b"admin")],
        "client": ("127.0.0.1", 50000),
    }
    request = ASGIRequest(scope, io.BytesIO())
    request.META["HTTP_X_FORWARDED_USER"] = "admin"
    request.session, request.user = SessionStore(), AnonymousUser()
    TrustedHeaderLogin(lambda request: None)(request)
    assert not request.user.is_authenticated
    assert not get_user_model().objects.filter(username="admin").exists()


# --- OpenID Connect ------------------------------------------------------------------------------

CLIENT_ID, CLIENT_SECRET = "dashboard", "oidc-test-client-secret-0123456789"


class Provider(BaseHTTPRequestHandler):
    """An OpenID Connect provider that signs in whoever asks, as `person` (authorization code
    flow, HS256 ID tokens signed with the client secret)."""

    person = {
        "sub": "42",
        "email": "olga@example.com",
        "email_verified": True,
        "preferred_username": "olga",
    }
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


@pytest.fixture
def oidc_site(processes, redis_db, settings, provider) -> str:
    """The web process signing people in through the stand-in provider; its base URL."""
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
    return f"http://127.0.0.1:{port}"


def test_a_supervisor_signs_in_through_the_oidc_provider(oidc_site, browser):
    page = browser.new_page()
    page.goto(f"{oidc_site}/history/")
    page.get_by_role("link", name="Sign in with Example SSO").click()
    # Signed in as olga, who has no team yet: the console says so rather than showing anything.
    expect(page).to_have_url(f"{oidc_site}/history/")
    expect(page.get_by_text("No team of yours")).to_be_visible()
    olga = in_thread(lambda: get_user_model().objects.get(username="olga"))
    assert olga.email == "olga@example.com" and not olga.is_staff


def sign_in_as(base_url: str, monkeypatch, **person) -> str | None:
    """Signs in through the provider as `person` (its claims); who the site then says it is."""
    monkeypatch.setattr(Provider, "person", person)
    with httpx.Client(follow_redirects=True, timeout=10) as browser:
        browser.get(f"{base_url}/oidc/authenticate/", params={"next": "/"})
        return signed_in_as(base_url, client=browser)


def test_an_email_not_verified_never_signs_in_as_its_owner(oidc_site, monkeypatch):
    users = get_user_model().objects
    users.create_superuser("admin", "admin@example.com", PASSWORD)
    users.create_user("pat", "pat@example.com", PASSWORD)

    # The admin's address, unverified: a new account of the claimant's own, without the address.
    claims = {"email": "admin@example.com", "preferred_username": "mallory"}
    assert sign_in_as(oidc_site, monkeypatch, sub="666", **claims) == "mallory"
    assert users.get(username="mallory").email == "" and not users.get(username="mallory").is_staff
    # Unverified and naming the admin: no one.
    claims = {"email": "admin@example.com", "preferred_username": "admin"}
    assert sign_in_as(oidc_site, monkeypatch, sub="667", **claims) is None
    # Verified, even: a staff account is linked by an administrator only.
    claims = {"email": "admin@example.com", "email_verified": True, "preferred_username": "x"}
    assert sign_in_as(oidc_site, monkeypatch, sub="668", **claims) is None
    # A person's address, unverified: not that person.
    claims = {"email": "pat@example.com", "preferred_username": "pat2"}
    assert sign_in_as(oidc_site, monkeypatch, sub="669", **claims) == "pat2"
    assert not OIDCIdentity.objects.filter(user__username__in=["admin", "pat"]).exists()


def test_a_verified_email_links_a_person_whose_sub_then_signs_them_in(oidc_site, monkeypatch):
    get_user_model().objects.create_user("olga", "olga@example.com", PASSWORD)
    olga = {"sub": "42", "preferred_username": "olga.sso"}

    verified = {"email": "Olga@Example.com", "email_verified": True}
    assert sign_in_as(oidc_site, monkeypatch, **olga, **verified) == "olga"
    assert OIDCIdentity.objects.get(sub="42").user.username == "olga"
    # Her address changed at the provider (not verified yet): her sub still signs her in.
    assert sign_in_as(oidc_site, monkeypatch, **olga, email="olga@elsewhere.example") == "olga"
    # Someone else with her verified address: she is linked already, so not her.
    other = {"sub": "43", "preferred_username": "olga2", **verified}
    assert sign_in_as(oidc_site, monkeypatch, **other) == "olga2"


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
