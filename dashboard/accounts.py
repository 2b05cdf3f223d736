"""Account pages: Django's login, logout and password change, and password reset by e-mail only
where e-mail really leaves this machine.

With the console backend (the default) a reset e-mail is written to the log, and its link is as
good as the password: the reset pages are not routed then. Where they are, each request sends
an e-mail, so it is throttled per client address and per e-mail address.
"""

from __future__ import annotations

import hashlib

from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.urls import path

from dashboard import proxies, ratelimit
from metrics.acr import clock

RESET_LIMIT = 5  # reset e-mails per client address, and per e-mail address, an hour
RESET_WINDOW_SECONDS = 3600


async def reset_allowed(client: str, email: str) -> bool:
    """Counts a reset request; False past RESET_LIMIT for the client or the address."""
    address = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    limits = {"limit": RESET_LIMIT, "window": RESET_WINDOW_SECONDS, "now_ms": clock.now_ms()}
    by_client = await ratelimit.hit("reset:client:" + client, **limits)
    by_address = await ratelimit.hit("reset:email:" + address, **limits)
    return by_client and by_address


class PasswordResetView(auth_views.PasswordResetView):
    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        email = request.POST.get("email", "")
        if not async_to_sync(reset_allowed)(proxies.request_client(request), email):
            return HttpResponse(
                "Too many password reset requests: try again in an hour.",
                status=429,
                content_type="text/plain; charset=utf-8",
            )
        return super().post(request, *args, **kwargs)


urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
]
if settings.PASSWORD_RESET_ENABLED:
    urlpatterns += [
        path("password_reset/", PasswordResetView.as_view(), name="password_reset"),
        path(
            "password_reset/done/",
            auth_views.PasswordResetDoneView.as_view(),
            name="password_reset_done",
        ),
        path(
            "reset/<uidb64>/<token>/",
            auth_views.PasswordResetConfirmView.as_view(),
            name="password_reset_confirm",
        ),
        path(
            "reset/done/",
            auth_views.PasswordResetCompleteView.as_view(),
            name="password_reset_complete",
        ),
    ]
