#!/usr/bin/env bash
# `make run`: prepare everything a fresh machine lacks, then start every process under honcho.
# Honours ACR_BASE_URL, ACR_AUTH_KEY, REDIS_URL, DATABASE_URL, DJANGO_SECRET_KEY, DJANGO_DEBUG,
# ALLOWED_HOSTS, WEB_HOST, WEB_PORT (or PORT), DJANGO_SUPERUSER_USERNAME and DJANGO_SUPERUSER_PASSWORD;
# every process also reads WEB_SERVER (uvicorn or daphne), LOG_LEVEL, LOG_FORMAT, WEB_ACCESS_LOG.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .run
export PATH="$PWD/.venv/bin:$PATH"
if [ -f .env ]; then set -a; . ./.env; set +a; fi

remember() { # remember NAME FILE: a generated secret that stays the same across runs
  [ -s "$2" ] || python -c 'import secrets; print(secrets.token_urlsafe(32))' >"$2"
  cat "$2"
}

export WEB_PORT="${WEB_PORT:-${PORT:-8000}}" WEB_HOST="${WEB_HOST:-127.0.0.1}"
export DJANGO_DEBUG="${DJANGO_DEBUG:-0}"
export SECURE_HTTPS="${SECURE_HTTPS:-0}" # plain http on this machine; set 1 behind TLS
export DJANGO_SECRET_KEY="${DJANGO_SECRET_KEY:-$(remember secret .run/secret_key)}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
# Prometheus: every process writes its counters here and the web's /metrics merges them
# (metrics/observability.py). Its counts are emptied at each start (only its *.db files: the
# folder may be one given in .env).
export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-$PWD/.run/prometheus}"
mkdir -p "$PROMETHEUS_MULTIPROC_DIR" && rm -f "$PROMETHEUS_MULTIPROC_DIR"/*.db

processes=(web worker beat subscriber)
bundled=0
if [ -z "${ACR_BASE_URL:-}" ]; then
  bundled=1
  export ACR_EMULATOR_PORT="${ACR_EMULATOR_PORT:-8081}"
  export ACR_BASE_URL="http://127.0.0.1:$ACR_EMULATOR_PORT"
  export ACR_AUTH_KEY="${ACR_AUTH_KEY:-$(remember key .run/emulator_key)}"
  processes+=(emulator)
  echo "ACR_BASE_URL is not set: starting the bundled emulator at $ACR_BASE_URL"
fi

# The URL comes back as plain text, never run as shell code (it may hold any character).
REDIS_URL="$(python scripts/ensure_redis.py)"
export REDIS_URL
# A Redis we started ourselves is stopped with everything else.
trap 'if [ -f .run/redis/redis.pid ]; then kill "$(cat .run/redis/redis.pid)" 2>/dev/null; rm -f .run/redis/redis.pid; fi' EXIT

python manage.py migrate --noinput -v 0
python manage.py collectstatic --noinput -v 0
login=$(python manage.py ensure_login)
# The demo (boards, a team, a TV link, a widget) only beside the bundled emulator, and only into
# a database without boards of its own; it prints the demo logins and links.
demo=""
if [ "$bundled" = 1 ]; then demo=$(python manage.py seed_demo --base-url "http://$WEB_HOST:$WEB_PORT"); fi

cat <<TEXT

  Contact-center dashboard: http://$WEB_HOST:$WEB_PORT/
  Log in as $login
  Pair a TV: open http://$WEB_HOST:$WEB_PORT/tv/ on it, enter its code at /screens/send/
$demo
  Upstream: $ACR_BASE_URL    Ctrl-C stops every process.

TEXT
honcho start "${processes[@]}"
