"""Optional single sign-on, beside the username/password login.

Two standard ways, each off unless configured (see .env.example):
- a header set by a trusted reverse proxy that has already authenticated the user (SSO_HEADER,
  e.g. X-Forwarded-User from oauth2-proxy or Apache's mod_auth_mellon), believed only from the
  proxy addresses in SSO_TRUSTED_PROXIES;
- an OpenID Connect provider (OIDC_* settings), through mozilla-django-oidc.

A user seen for the first time is created with no team, so sees nothing until an administrator
adds them to one (an SSO login must never widen anyone's access by itself).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import auth
from django.contrib.auth.backends import RemoteUserBackend
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

HEADER_BACKEND = "dashboard.sso.HeaderBackend"

log = logging.getLogger(__name__)


class HeaderBackend(RemoteUserBackend):
    """Users named by the proxy's header; created on first sight when SSO_CREATE_USERS."""

    @property
    def create_unknown_user(self) -> bool:
        return settings.SSO_CREATE_USERS


class TrustedHeaderLogin:
    """Logs in the user the trusted proxy names in SSO_HEADER on every request, and logs out a
    header-authenticated session when the header stops coming (the proxy's session ended).

    Not Django's RemoteUserMiddleware: that one believes the header from any client, and its
    sync and async paths read different META keys (Django 5.2).

    The header is read by its exact name from the raw ASGI headers, not from META: META folds
    X-Forwarded_User and X-Forwarded-User into one key, so a client could slip a look-alike past
    a proxy that sets or strips only the real one. (Django 5.2.19 and Daphne drop underscored
    names today; this does not rely on it.) A request with a look-alike, or with the header more
    than once, signs no one in and is logged as suspicious. Under WSGI (only Django's test
    client here: the project ships no WSGI entry point) META is all there is, so it is read."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.meta_key = "HTTP_" + settings.SSO_HEADER.upper().replace("-", "_")
        self.header = settings.SSO_HEADER.lower().encode("latin1")
        self.proxies = frozenset(settings.SSO_TRUSTED_PROXIES)

    def __call__(self, request):
        # Anyone can send the header; only the proxy's own word counts.
        trusted = request.META.get("REMOTE_ADDR") in self.proxies
        username = self.named_user(request) if trusted else ""
        signed_in_by_header = request.session.get(auth.BACKEND_SESSION_KEY) == HEADER_BACKEND
        if username:
            if request.user.get_username() != username:
                if request.user.is_authenticated:
                    auth.logout(request)
                user = auth.authenticate(request, remote_user=username)
                if user is not None:
                    auth.login(request, user, backend=HEADER_BACKEND)
        elif signed_in_by_header and request.user.is_authenticated:
            auth.logout(request)
        return self.get_response(request)

    def named_user(self, request) -> str:
        """The username in the header, or "" when it is absent, repeated or has a look-alike."""
        scope = getattr(request, "scope", None)
        if scope is None:
            return request.META.get(self.meta_key, "").strip()
        values, suspicious = [], False
        for name, value in scope.get("headers", []):
            name = name.lower()
            if name == self.header:
                values.append(value)
            elif name.replace(b"_", b"-") == self.header:
                suspicious = True
        if suspicious or len(values) > 1:
            log.warning(
                "suspicious request from %s: %s given %s, signing no one in",
                request.META.get("REMOTE_ADDR"),
                settings.SSO_HEADER,
                "with a look-alike header name" if suspicious else "more than once",
            )
            return ""
        return values[0].decode("latin1").strip() if values else ""


class OIDCBackend(OIDCAuthenticationBackend):
    """Users matched by e-mail; a new one is named by its preferred_username when the provider
    gives one (readable in the admin), else by its e-mail."""

    def create_user(self, claims):
        if not settings.SSO_CREATE_USERS:
            return None
        username = claims.get("preferred_username") or claims.get("email")
        return self.UserModel.objects.create_user(username, email=claims.get("email", ""))


def login_options(request) -> dict[str, str]:
    """Template context: the login page's single sign-on button, when OIDC is configured."""
    return {"oidc_label": settings.OIDC_LABEL if settings.OIDC_ENABLED else ""}
