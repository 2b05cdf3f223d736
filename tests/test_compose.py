"""docker-compose.yml, the deployment shape, read as Compose reads it (no Docker here): TLS is
terminated by a proxy in front of a web service nobody else reaches, and every process runs with
the secure defaults."""

from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES = COMPOSE["services"]
APP_SERVICES = ["migrate", "web", "worker", "beat", "subscriber", "emulator"]


def test_tls_is_terminated_by_the_proxy_and_only_the_proxy_is_published():
    proxy = SERVICES["proxy"]
    assert "443:443" in proxy["ports"]
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text(encoding="utf-8")
    assert "reverse_proxy web:8000" in caddyfile
    assert any(v.startswith("./deploy/Caddyfile:/etc/caddy/Caddyfile") for v in proxy["volumes"])
    published = [name for name, service in SERVICES.items() if service.get("ports")]
    assert published == ["proxy"], published


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_process_runs_with_https_only_and_believes_only_the_proxy(name):
    env = SERVICES[name]["environment"]
    assert env["SECURE_HTTPS"] == "1"
    proxy_address = SERVICES["proxy"]["networks"]["backend"]["ipv4_address"]
    assert env["TRUSTED_PROXIES"] == proxy_address
    assert env["CSRF_TRUSTED_ORIGINS"].startswith("https://")


def test_every_long_running_service_says_when_it_is_healthy():
    one_shot = {"migrate"}
    for name, service in SERVICES.items():
        if name not in one_shot:
            assert service["healthcheck"]["test"], name
    assert SERVICES["web"]["depends_on"]["postgres"] == {"condition": "service_healthy"}


@pytest.mark.parametrize("name", ["web", "worker", "beat", "subscriber"])
def test_the_processes_are_checked_by_the_healthcheck_command(name):
    """Each asks `manage.py healthcheck` about itself (tests/test_healthcheck.py runs it
    against real processes)."""
    test = SERVICES[name]["healthcheck"]["test"]
    assert test == ["CMD", "python", "manage.py", "healthcheck", name]


def test_the_emulator_runs_only_in_the_demo_profile():
    assert SERVICES["emulator"]["profiles"] == ["demo"]
    assert all("profiles" not in s for n, s in SERVICES.items() if n != "emulator")


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_command_names_something_that_exists(name):
    command = SERVICES[name].get("command", ["python", "-m", "dashboard.web"])
    if command[:2] == ["python", "manage.py"]:
        found = list(ROOT.glob(f"*/management/commands/{command[2]}.py"))
        assert found or command[2] == "migrate", command  # (migrate is Django's own)
    elif command[:2] == ["python", "-m"]:
        module = ROOT / Path(*command[2].split("."))
        assert module.with_suffix(".py").exists() or (module / "__main__.py").exists()
    else:
        assert command[:3] == ["celery", "-A", "dashboard"], command


def test_every_variable_given_to_the_processes_is_a_documented_setting():
    documented = (ROOT / ".env.example").read_text(encoding="utf-8")
    for name in SERVICES["web"]["environment"]:
        assert f"{name}=" in documented, name
