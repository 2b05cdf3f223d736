"""scripts/run.sh (`make run`): the environment it is given is passed on, never run as code."""

import subprocess
import sys

from tests.conftest import ROOT

# Stand-ins in the copy's .venv/bin, which run.sh puts first on PATH: manage.py has no database
# to work on here (everything else runs for real), and honcho records what it was given.
FAKE_PYTHON = f"""#!/bin/sh
case "$1" in
  manage.py)
    echo "$2" >> manage-commands
    [ "$2" = ensure_login ] && echo "admin / a-password"; exit 0 ;;
esac
exec {sys.executable} "$@"
"""
FAKE_HONCHO = """#!/bin/sh
printf '%s\\n' "$REDIS_URL" > honcho-saw-redis-url
printf '%s\\n' "$PROMETHEUS_MULTIPROC_DIR" > honcho-saw-prometheus-dir
"""


def fake_checkout(tmp_path):
    """A copy of the scripts with stand-ins for python (manage.py) and honcho."""
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    for name in ("run.sh", "ensure_redis.py"):
        (checkout / "scripts" / name).write_text((ROOT / "scripts" / name).read_text())
    bin_dir = checkout / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name, text in (("python", FAKE_PYTHON), ("honcho", FAKE_HONCHO)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return checkout


def run_script(checkout, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(checkout / "scripts" / "run.sh")],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_redis_url_is_passed_on_as_text_never_run(tmp_path, redis_db, settings):
    checkout = fake_checkout(tmp_path)
    ran = tmp_path / "ran"
    # A URL that answers (redis-py ignores the fragment), with shell code in it.
    url = f"{settings.REDIS_URL}#$(touch {ran})"
    result = run_script(checkout, REDIS_URL=url, ACR_BASE_URL="http://127.0.0.1:9")
    assert result.returncode == 0, result.stderr
    assert not ran.exists()
    assert (checkout / "honcho-saw-redis-url").read_text().strip() == url


def test_the_demo_is_seeded_beside_the_bundled_emulator_only(tmp_path, redis_db, settings):
    bundled, real = fake_checkout(tmp_path / "bundled"), fake_checkout(tmp_path / "real")
    assert run_script(bundled, REDIS_URL=settings.REDIS_URL).returncode == 0
    result = run_script(real, REDIS_URL=settings.REDIS_URL, ACR_BASE_URL="https://acr.example")
    assert result.returncode == 0, result.stderr
    assert "seed_demo" in (bundled / "manage-commands").read_text().split()
    assert "seed_demo" not in (real / "manage-commands").read_text().split()


def test_every_process_shares_a_prometheus_folder_emptied_of_old_counts(
    tmp_path, redis_db, settings
):
    checkout = fake_checkout(tmp_path)
    folder = checkout / ".run" / "prometheus"
    folder.mkdir(parents=True)
    (folder / "counter_host-123.db").write_bytes(b"old counts")
    (folder / "notes.txt").write_text("not ours to remove")
    result = run_script(checkout, REDIS_URL=settings.REDIS_URL, ACR_BASE_URL="http://127.0.0.1:9")
    assert result.returncode == 0, result.stderr
    assert (checkout / "honcho-saw-prometheus-dir").read_text().strip() == str(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
