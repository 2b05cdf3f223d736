"""scripts/run.sh (`make run`): the environment it is given is passed on, never run as code."""

import subprocess
import sys

from tests.conftest import ROOT

# Stand-ins in the copy's .venv/bin, which run.sh puts first on PATH: manage.py has no database
# to work on here (everything else runs for real), and honcho records what it was given.
FAKE_PYTHON = f"""#!/bin/sh
case "$1" in
  manage.py) [ "$2" = ensure_login ] && echo "admin / a-password"; exit 0 ;;
esac
exec {sys.executable} "$@"
"""
FAKE_HONCHO = """#!/bin/sh
printf '%s\\n' "$REDIS_URL" > honcho-saw-redis-url
"""


def test_a_redis_url_is_passed_on_as_text_never_run(tmp_path, redis_db, settings):
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    for name in ("run.sh", "ensure_redis.py"):
        (checkout / "scripts" / name).write_text((ROOT / "scripts" / name).read_text())
    bin_dir = checkout / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name, text in (("python", FAKE_PYTHON), ("honcho", FAKE_HONCHO)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    ran = tmp_path / "ran"
    # A URL that answers (redis-py ignores the fragment), with shell code in it.
    url = f"{settings.REDIS_URL}#$(touch {ran})"
    result = subprocess.run(
        ["bash", str(checkout / "scripts" / "run.sh")],
        env={"PATH": "/usr/bin:/bin", "REDIS_URL": url, "ACR_BASE_URL": "http://127.0.0.1:9"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert not ran.exists()
    assert (checkout / "honcho-saw-redis-url").read_text().strip() == url
