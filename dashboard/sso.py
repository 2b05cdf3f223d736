"""Optional single sign-on, beside the username/password login.

Two standard ways, each off unless configured (see .env.example):
- a header set by a trusted reverse proxy that has already authenticated the user (SSO_HEADER,
  e.g. X-Forwarded-User from oauth2-proxy or Apache's mod_auth_mellon), believed only from the
  proxy addresses in TRUSTED_PROXIES;
- an OpenID Connect provider (OIDC_* settings), through mozilla-django-oidc.

A user seen for the first time is created with no team, so sees nothing until an administrator
adds them to one (an SSO login must never widen anyone's access by itself).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import auth
from django.contrib.auth.backends import RemoteUserBackend
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from dashboard import proxies

HEADER_BACKEND = "dashboard.sso.HeaderBackend"


class HeaderBackend(RemoteUserBackend):
    """Users named by the proxy's header; created on first sight when SSO_CREATE_USERS."""

    @property
    def create_unknown_user(self) -> bool:
        return settings.SSO_CREATE_USERS


class TrustedHeaderLogin:
    """Logs in the user the trusted proxy names in SSO_HEADER on every request, and logs out a
    header-authenticated session when the header stops coming (the proxy's session ended).

    Not Django's RemoteUserMiddleware: that one believes the header from any client, and its
    sync and async paths read different META keys (Django 5.2)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.meta_key = "HTTP_" + settings.SSO_HEADER.upper().replace("-", "_")

    def __call__(self, request):
        # Anyone can send the header; only the proxy's own word counts.
        trusted = proxies.is_trusted(request.META.get("REMOTE_ADDR"))
        username = request.META.get(self.meta_key, "").strip() if trusted else ""
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
