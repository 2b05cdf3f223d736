"""Seeds the demo (dashboard.demo) and prints its logins, the TV link and the demo site.

`make run` runs it only when it starts the bundled emulator; with boards of your own in the
database it does nothing.
"""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from dashboard import demo


class Command(BaseCommand):
    help = "Seeds the demo boards, team and widget into an empty database (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument("--run-dir", type=Path, default=Path(settings.BASE_DIR) / ".run")

    def handle(self, *args, base_url: str, run_dir: Path, **options) -> None:
        logins = demo.seed(run_dir)
        if logins is None:
            return
        base = base_url.rstrip("/")
        self.stdout.write(f"  Supervisor: {logins.supervisor}    Viewer: {logins.viewer}")
        self.stdout.write(f"  TV link (the demo playlist): {base}/display/{logins.tv_token}/")
        self.stdout.write(f"  A public web site with the wait widget: {base}/demo/site/")
