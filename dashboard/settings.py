"""Settings: every deploy-time value comes from the environment, with safe local defaults.

A bad value fails loudly at start-up (ImproperlyConfigured), never silently. Secrets may also be
given as NAME_FILE (a path), which is how container secrets are usually mounted.
"""

import ipaddress
import os
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import environ
from django.core.exceptions import ImproperlyConfigured

from dashboard.logconfig import access_log_on, logging_config

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
env.smart_cast = False


def _secret(name: str, default: str = "") -> str:
    """NAME from the environment, or the contents of the file named by NAME_FILE."""
    path = env.str(f"{name}_FILE", default="")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path!r} cannot be read: {exc}") from exc
    return env.str(name, default=default)


def _positive(name: str, default: float) -> float:
    try:
        value = env.float(name, default=default)
    except (ValueError, ImproperlyConfigured) as exc:
        raise ImproperlyConfigured(f"{name} must be a number of seconds") from exc
    if value <= 0:
        raise ImproperlyConfigured(f"{name} must be greater than 0, got {value}")
    return value


DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = _secret("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off (make run sets one for you)"
        )
    SECRET_KEY = "insecure-local-development-key"  # noqa: S105 - only ever used with DEBUG on
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "metrics",  # the pipeline, and every model
    "dashboard",  # the screens and the people
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "dashboard.security.ContentSecurityPolicyMiddleware",
    "axes.middleware.AxesMiddleware",
]

# Failed logins are throttled per username and address (django-axes): after AXES_FAILURE_LIMIT
# failures that pair is locked out for AXES_COOLOFF_TIME hours.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = 0.25
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_CLIENT_IP_CALLABLE = "dashboard.proxies.request_client"


def _networks(name: str, default: list[str]) -> list[str]:
    values = [value.strip() for value in env.list(name, default=default) if value.strip()]
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError as exc:
            raise ImproperlyConfigured(f"{name}: not an address or network: {value!r}") from exc
    return values


# Reverse proxies in front of the web server, as addresses or networks (10.0.0.0/8): only from
# them is X-Forwarded-For believed (the client is its right-most address that is not one of
# them: dashboard/proxies.py), for the login throttle and the widget's rate limit, and only
# their SSO_HEADER. SSO_TRUSTED_PROXIES is its former name, still read when it is not set.
TRUSTED_PROXIES = _networks(
    "TRUSTED_PROXIES", env.list("SSO_TRUSTED_PROXIES", default=["127.0.0.1", "::1"])
)

# Prometheus's /metrics (dashboard/scrape.py) answers these client addresses or networks (as
# dashboard/proxies.py reads them behind TRUSTED_PROXIES; empty: none) and any request with
# `Authorization: Bearer METRICS_TOKEN` (unset: no token works); everyone else gets a 403.
METRICS_ALLOWED_IPS = _networks("METRICS_ALLOWED_IPS", ["127.0.0.1", "::1"])
METRICS_TOKEN = _secret("METRICS_TOKEN")

# Single sign-on (dashboard/sso.py), both optional. A trusted proxy's header, e.g.
# SSO_HEADER=X-Forwarded-User, believed only from TRUSTED_PROXIES (the proxy's address as the
# web server sees it: dashboard/web.py keeps proxy headers off). Or an OpenID Connect
# provider: set OIDC_RP_CLIENT_ID and the provider's endpoints.
SSO_HEADER = env.str("SSO_HEADER", default="")
SSO_CREATE_USERS = env.bool("SSO_CREATE_USERS", default=True)
if "_" in SSO_HEADER:  # servers and Django drop underscored names: it would never arrive
    raise ImproperlyConfigured(f"SSO_HEADER is spelled with '-', not '_': {SSO_HEADER}")
if SSO_HEADER:
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
        "dashboard.sso.TrustedHeaderLogin",
    )
    AUTHENTICATION_BACKENDS.append("dashboard.sso.HeaderBackend")

OIDC_RP_CLIENT_ID = env.str("OIDC_RP_CLIENT_ID", default="")
OIDC_ENABLED = bool(OIDC_RP_CLIENT_ID)
OIDC_LABEL = env.str("OIDC_LABEL", default="Sign in with single sign-on")
if OIDC_ENABLED:
    OIDC_RP_CLIENT_SECRET = _secret("OIDC_RP_CLIENT_SECRET")
    OIDC_RP_SIGN_ALGO = env.str("OIDC_RP_SIGN_ALGO", default="RS256")
    OIDC_RP_SCOPES = env.str("OIDC_RP_SCOPES", default="openid email profile")
    _oidc_required = ["OIDC_OP_AUTHORIZATION_ENDPOINT", "OIDC_OP_TOKEN_ENDPOINT"]
    _oidc_required += ["OIDC_OP_USER_ENDPOINT"]
    if OIDC_RP_SIGN_ALGO.startswith(("RS", "ES")):
        _oidc_required.append("OIDC_OP_JWKS_ENDPOINT")
    _missing = [name for name in _oidc_required if not env.str(name, default="")]
    if _missing:
        raise ImproperlyConfigured(f"OIDC_RP_CLIENT_ID is set, so {', '.join(_missing)} must be")
    OIDC_OP_AUTHORIZATION_ENDPOINT = env.str("OIDC_OP_AUTHORIZATION_ENDPOINT")
    OIDC_OP_TOKEN_ENDPOINT = env.str("OIDC_OP_TOKEN_ENDPOINT")
    OIDC_OP_USER_ENDPOINT = env.str("OIDC_OP_USER_ENDPOINT")
    OIDC_OP_JWKS_ENDPOINT = env.str("OIDC_OP_JWKS_ENDPOINT", default="") or None
    OIDC_TIMEOUT = 10  # seconds; the library's default is to wait for ever
    LOGIN_REDIRECT_URL_FAILURE = "/accounts/login/?sso=failed"
    INSTALLED_APPS.append("mozilla_django_oidc")
    AUTHENTICATION_BACKENDS.append("dashboard.sso.OIDCBackend")

ROOT_URLCONF = "dashboard.urls"
X_FRAME_OPTIONS = "DENY"  # the board page relaxes it to SAMEORIGIN for the admin's preview
ASGI_APPLICATION = "dashboard.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "dashboard.sso.login_options",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Several processes (web, worker, subscriber) write: WAL lets readers go on during a write,
    # IMMEDIATE transactions and a timeout make writers queue instead of failing "locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"


def machine_zone(tz: str, localtime: Path) -> str:
    """The machine's IANA zone name: TZ if it names one, else the zone /etc/localtime links to
    (.../zoneinfo/Europe/Berlin), else UTC."""
    candidates = [tz.removeprefix(":")]
    if localtime.is_symlink():
        target = str(localtime.resolve())
        if "/zoneinfo/" in target:
            candidates.append(target.split("/zoneinfo/", 1)[1].removeprefix("posix/"))
    for name in candidates:
        try:
            if name and ZoneInfo(name):
                return name
        except (ZoneInfoNotFoundError, ValueError, OSError):
            continue
    return "UTC"


# The site's own zone: quiet hours, chart axes and every time shown are in it. Django's
# TIME_ZONE is it, so timezone.localtime() and the |date filter give the site's wall clock
# (the database still stores UTC: USE_TZ).
TIME_ZONE = env.str(
    "SITE_TIME_ZONE", default=machine_zone(os.environ.get("TZ", ""), Path("/etc/localtime"))
)
try:
    ZoneInfo(TIME_ZONE)
except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
    raise ImproperlyConfigured(
        f"SITE_TIME_ZONE must be an IANA zone such as Europe/Berlin, got {TIME_ZONE!r}"
    ) from exc
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "dashboard.staticfiles.PlotlyFinder",
]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# The web process serves the static files through WhiteNoise; no collectstatic needed locally.
WHITENOISE_USE_FINDERS = True

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
# CHANNEL_LAYER=pubsub: Redis pub/sub layer instead (compared in bench/fanout.py).
_LAYERS = {"core": "core.RedisChannelLayer", "pubsub": "pubsub.RedisPubSubChannelLayer"}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis." + _LAYERS[env.str("CHANNEL_LAYER", default="core")],
        # The layer carries only rare events (status, catalog, board changes, revoked links,
        # alerts); record updates go through metrics.fanout. socket_timeout None: the layer's
        # blocking read waits 5 s, the same as redis-py's default read timeout, which otherwise
        # drops a quiet socket (channels_redis#422).
        "CONFIG": {
            "hosts": [{"address": REDIS_URL, "socket_timeout": None}],
            "prefix": "acrdash",
            "expiry": 30,
        },
    }
}

# The upstream Avaya Call Reporting server. The key is a secret: it only ever leaves this
# process in the Authorization header and the websocket URL sent to that server.
ACR_BASE_URL = env.str("ACR_BASE_URL", default="http://127.0.0.1:8081").rstrip("/")
ACR_AUTH_KEY = _secret("ACR_AUTH_KEY")
# When set, the key is re-read from this file before each upstream call (rotation, no restart).
ACR_AUTH_KEY_FILE = env.str("ACR_AUTH_KEY_FILE", default="")
# After a 401, the same key is not tried again for this long (unless the key changes).
ACR_AUTH_RETRY_SECONDS = _positive("ACR_AUTH_RETRY_SECONDS", 60.0)
ACR_API_PREFIX = env.str("ACR_API_PREFIX", default="/rest/api/v1").rstrip("/")
ACR_TIMEOUT_SECONDS = _positive("ACR_TIMEOUT_SECONDS", 5.0)
ACR_POLL_SECONDS = _positive("ACR_POLL_SECONDS", 5.0)
ACR_CATALOG_SECONDS = _positive("ACR_CATALOG_SECONDS", 60.0)
ACR_INITIALIZING_RETRY_SECONDS = _positive("ACR_INITIALIZING_RETRY_SECONDS", 2.0)
# Records are shown as stale when nothing has confirmed them for this long.
ACR_STALE_SECONDS = _positive("ACR_STALE_SECONDS", max(20.0, 3 * ACR_POLL_SECONDS))
# History for charts: every live record is sampled this often, and kept this many days.
ACR_SAMPLE_SECONDS = _positive("ACR_SAMPLE_SECONDS", 10.0)
ACR_HISTORY_DAYS = _positive("ACR_HISTORY_DAYS", 30.0)
# Public widget: requests per client address per WIDGET_RATE_WINDOW seconds, then 429 (counted in
# Redis, over every web process).
WIDGET_RATE_LIMIT = env.int("WIDGET_RATE_LIMIT", default=120)
WIDGET_RATE_WINDOW = env.int("WIDGET_RATE_WINDOW", default=60)
if not ACR_BASE_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured(f"ACR_BASE_URL must start with http:// or https://: {ACR_BASE_URL}")

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE = {
    "sync-catalog": {
        "task": "metrics.tasks.sync_catalog",
        "schedule": ACR_CATALOG_SECONDS,
        "options": {"expires": ACR_CATALOG_SECONDS},
    },
    "poll-values": {
        "task": "metrics.tasks.poll_values",
        "schedule": ACR_POLL_SECONDS,
        "options": {"expires": ACR_POLL_SECONDS},
    },
    "record-samples": {
        "task": "metrics.tasks.record_samples",
        "schedule": ACR_SAMPLE_SECONDS,
        "options": {"expires": ACR_SAMPLE_SECONDS},
    },
    "roll-up-samples": {  # per-minute rollups that long-range charts read
        "task": "metrics.tasks.roll_up_samples",
        "schedule": 30.0,
        "options": {"expires": 30.0},
    },
    "check-alerts": {
        "task": "dashboard.tasks.check_alerts",
        "schedule": 5.0,
        "options": {"expires": 5.0},
    },
    "prune-samples": {
        "task": "metrics.tasks.prune_samples",
        "schedule": 3600.0,
        "options": {"expires": 3600.0},
    },
}

# Alert e-mails: printed to the log unless EMAIL_BACKEND is set, e.g. to
# django.core.mail.backends.smtp.EmailBackend with EMAIL_HOST, EMAIL_PORT and, if the server
# wants them, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD (or _FILE) and EMAIL_USE_TLS.
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
# Password reset pages only when e-mail really leaves (dashboard/accounts.py): with a backend
# that keeps or logs the mail here, the reset link would be in the log.
_MAIL_STAYS_HERE = (".console.", ".filebased.", ".locmem.", ".dummy.")
PASSWORD_RESET_ENABLED = not any(name in EMAIL_BACKEND for name in _MAIL_STAYS_HERE)
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = _secret("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="dashboard@localhost")

# Alert webhooks go to public addresses only (dashboard/webhooks.py): 1 also allows private and
# loopback ones, for a site whose receiver is internal. Link-local (the cloud metadata service),
# multicast and reserved addresses are refused either way.
WEBHOOK_ALLOW_PRIVATE = env.bool("WEBHOOK_ALLOW_PRIVATE", default=False)

# Logs (dashboard/logconfig.py): one line per state change (polls, task successes and HTTP
# client requests at DEBUG), plain text or LOG_FORMAT=json, every line without tokens. The web
# server's access log only with WEB_ACCESS_LOG=1.
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
LOGGING = logging_config(LOG_LEVEL, LOG_FORMAT, access_log=access_log_on(os.environ))
LOGGING_CONFIG = "dashboard.logconfig.apply"

# Behind TLS (the default in production): HTTPS only, HSTS, secure cookies. `make run` serves
# plain http on this machine and sets SECURE_HTTPS=0.
SECURE_HTTPS = env.bool("SECURE_HTTPS", default=not DEBUG)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_HTTPS
SECURE_SSL_REDIRECT = SECURE_HTTPS
SECURE_HSTS_SECONDS = 31_536_000 if SECURE_HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HTTPS
SECURE_HSTS_PRELOAD = SECURE_HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if SECURE_HTTPS else None
# Load balancers probe, and Prometheus scrapes inside the network, over plain http.
SECURE_REDIRECT_EXEMPT = [r"^health/$", r"^metrics$"]
SESSION_COOKIE_AGE = env.int("SESSION_SECONDS", default=12 * 3600)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
