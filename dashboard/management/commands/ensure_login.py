"""Creates or updates the first login for `make run`, and prints "USERNAME / PASSWORD".

With DJANGO_SUPERUSER_USERNAME and DJANGO_SUPERUSER_PASSWORD set, that account is created or its
password updated. Without them a local "admin" account gets a generated password kept in
.run/admin_password, so a first run can always log in.
"""

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

PASSWORD_FILE = Path(settings.BASE_DIR) / ".run" / "admin_password"


def demo_password() -> str:
    if not PASSWORD_FILE.exists():
        PASSWORD_FILE.parent.mkdir(parents=True, exist_ok=True)
        PASSWORD_FILE.write_text(secrets.token_urlsafe(12), encoding="utf-8")
        PASSWORD_FILE.chmod(0o600)
    return PASSWORD_FILE.read_text(encoding="utf-8").strip()


class Command(BaseCommand):
    help = "Creates or updates the superuser that `make run` prints."

    def handle(self, *args, **options) -> None:
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME") or "admin"
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD") or demo_password()
        user, _ = get_user_model().objects.get_or_create(username=username)
        user.is_staff = user.is_superuser = user.is_active = True
        if not user.check_password(password):  # re-hashed, it would end everyone's sessions
            user.set_password(password)
        user.save()
        self.stdout.write(f"{username} / {password}")
