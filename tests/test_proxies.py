"""The client's address behind reverse proxies: X-Forwarded-For believed only from a trusted
proxy, and read from the right, past every trusted hop."""

import subprocess
import sys

import pytest

from dashboard import proxies
from tests.conftest import ROOT


@pytest.fixture(autouse=True)
def trusted(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "192.0.2.7", "fd00::/8"]


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        ("203.0.113.5", None, "203.0.113.5"),  # no proxy
        ("203.0.113.5", "198.51.100.1", "203.0.113.5"),  # an untrusted peer's header: ignored
        ("10.1.2.3", None, "10.1.2.3"),  # the proxy's own request
        ("10.1.2.3", "198.51.100.1", "198.51.100.1"),
        ("10.1.2.3", "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # the client wrote the first one
        ("10.1.2.3", "6.6.6.6, 198.51.100.1, 192.0.2.7", "198.51.100.1"),  # two proxies
        ("10.1.2.3", "6.6.6.6,198.51.100.1,10.9.9.9", "198.51.100.1"),
        ("10.1.2.3", "10.4.4.4, 192.0.2.7", "10.4.4.4"),  # every hop trusted: the first
        ("10.1.2.3", "not-an-address", "10.1.2.3"),
        ("10.1.2.3", " , ", "10.1.2.3"),
        ("fd00::1", "2001:db8::5", "2001:db8::5"),
        ("2001:db8::9", "2001:db8::5", "2001:db8::9"),
        ("unknown", "198.51.100.1", "unknown"),
    ],
)
def test_the_client_is_the_right_most_untrusted_hop(peer, forwarded_for, client):
    assert proxies.client_address(peer, forwarded_for) == client


def settings_with(env: dict[str, str]) -> subprocess.CompletedProcess:
    """Loads the settings in a fresh process with `env`, printing TRUSTED_PROXIES."""
    code = "from django.conf import settings; print(settings.TRUSTED_PROXIES)"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"DJANGO_SETTINGS_MODULE": "dashboard.test_settings", "PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
    )


def test_a_bad_trusted_proxies_setting_stops_start_up():
    result = settings_with({"TRUSTED_PROXIES": "10.0.0.0/8,proxy.example"})
    assert "TRUSTED_PROXIES: not an address or network: 'proxy.example'" in result.stderr


def test_the_former_name_of_the_setting_still_counts():
    assert settings_with({"SSO_TRUSTED_PROXIES": "10.0.0.1"}).stdout.strip() == "['10.0.0.1']"
    assert settings_with({}).stdout.strip() == "['127.0.0.1', '::1']"
