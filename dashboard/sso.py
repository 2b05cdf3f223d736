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

import logging

from django.conf import settings
from django.contrib import auth
from django.contrib.auth.backends import RemoteUserBackend
from django.core.exceptions import SuspiciousOperation
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from dashboard import proxies
from metrics.models import OIDCIdentity

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

    def __call__(self, request):
        # Anyone can send the header; only the proxy's own word counts.
        trusted = proxies.is_trusted(request.META.get("REMOTE_ADDR"))
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
    """People matched on the provider's `sub`, kept in OIDCIdentity from their first sign-in.

    A first sign-in links an existing account by e-mail only when the provider says it verified
    the address (`email_verified`), and never a staff or superuser account: an administrator
    links those in the admin (OIDC identities). Anyone else gets a new account (SSO_CREATE_USERS),
    named by preferred_username, else by e-mail, unless that name is taken."""

    def get_or_create_user(self, access_token, id_token, payload):
        claims = self.get_userinfo(access_token, id_token, payload)
        sub = payload.get("sub")
        # The user info must be about the ID token's subject (OpenID Connect Core 5.3.2).
        if not sub or claims.get("sub", sub) != sub:
            raise SuspiciousOperation("the user info is not about the ID token's subject")
        identity = OIDCIdentity.objects.filter(sub=sub).select_related("user").first()
        if identity is not None:
            return identity.user
        user = self.user_with_verified_email(claims)
        if user is not None and (user.is_staff or user.is_superuser):
            log.warning("OIDC sub %s has a staff account's e-mail: an admin must link it", sub)
            return None
        user = user or self.create_user(claims)
        if user is not None:
            OIDCIdentity.objects.create(user=user, sub=sub)
        return user

    def user_with_verified_email(self, claims):
        """The one account not linked yet with this e-mail, when the provider verified it."""
        if not _verified(claims):
            return None
        users = self.UserModel.objects.filter(email__iexact=claims["email"], oidc_identity=None)
        found = list(users[:2])
        return found[0] if len(found) == 1 else None

    def create_user(self, claims):
        if not settings.SSO_CREATE_USERS:
            return None
        username = claims.get("preferred_username") or claims.get("email")
        if not username or self.UserModel.objects.filter(username__iexact=username).exists():
            log.warning("OIDC sub %s: no free username to create (%r)", claims.get("sub"), username)
            return None
        # An address the provider did not verify is not kept: alert e-mails would go to it.
        email = claims["email"] if _verified(claims) else ""
        return self.UserModel.objects.create_user(username, email=email)


def _verified(claims: dict) -> bool:
    return bool(claims.get("email")) and claims.get("email_verified") in (True, "true")


def login_options(request) -> dict[str, str]:
    """Template context: the login page's single sign-on button, when OIDC is configured."""
    return {"oidc_label": settings.OIDC_LABEL if settings.OIDC_ENABLED else ""}
