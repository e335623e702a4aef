#!/usr/bin/env bash
# Deploy RepitBot and print where to reach it. `--help` for the options.
#   compose mode (a Docker engine answers `docker info`): docker-compose.microservices.yml —
#     prerequisites, secrets, build, migration jobs, start, wait until healthy, URLs.
#   local mode (no engine): the same fleet as local processes under supervisord
#     (`python -m shared.runner up --monitoring`: Debian's Prometheus scrapes it), URLs.
# Safe to run again: every step is idempotent. tests/test_deploy_script.py checks it (--dry-run).
set -Eeuo pipefail
cd "$(dirname "$0")"

COMPOSE_FILE=docker-compose.microservices.yml
REPO_SECRETS_DIR=secrets # the compose file mounts ./secrets/*: the only place a real deploy may use
SECRETS_DIR=${SECRETS_DIR:-$REPO_SECRETS_DIR}
PROMETHEUS_URL=${PROMETHEUS_URL:-http://127.0.0.1:9090} # where the local mode's Prometheus listens
MIN_COMPOSE=2.17.0 # the first with `up --wait-timeout`
PYTHON=.venv/bin/python

# exit codes: 0 deployed; 1 a step failed; 2 bad usage; 3 a prerequisite is missing or refused
EXIT_FAILED=1
EXIT_USAGE=2
EXIT_PREREQUISITE=3

usage() {
  cat <<EOF
Usage: ./deploy_final_microservices.sh [--compose | --local] [--timeout SECONDS] [--without-bot] [--dry-run]

Deploys RepitBot, waits until it is healthy, prints the URLs.

  --compose          docker compose (the default when \`docker info\` answers): checks docker and
                     compose >= v$MIN_COMPOSE, writes ./secrets (shared.runner compose-secrets), builds,
                     runs the <service>-migrate jobs, \`up -d --wait\`, prints gateway, docs, Grafana,
                     Prometheus, Alertmanager and RabbitMQ management URLs
  --local            local processes under supervisord (the default without a Docker engine):
                     make install, \`python -m shared.runner up --monitoring\`, prints the URLs
  --timeout SECONDS  how long to wait for health before failing (default 300)
  --without-bot      compose: deploy without the Telegram bot (scaled to 0), for when
                     secrets/telegram_bot_token is still empty; without it an empty token is refused
  --dry-run          print each command instead of running it (reads files, changes nothing)
  -h, --help         this text

Environment: DEPLOY_MODE=compose|local|auto (as --compose/--local), SECRETS_DIR (where the
token is checked; a real compose deploy accepts only ./secrets), PROMETHEUS_URL (local mode).
Exit codes: 0 deployed, 1 a step failed, 2 bad usage, 3 a prerequisite missing or refused.
EOF
}

say() { printf '==> %s\n' "$*"; }
fail() {
  printf 'deploy: %s\n' "$2" >&2
  exit "$1"
}
# Run a command, or print it under --dry-run; failures stop the script (set -e) with its status.
run() {
  if [ "$DRY_RUN" = 1 ]; then
    printf '+'
    printf ' %q' "$@"
    printf '\n'
  else
    "$@"
  fi
}

MODE=${DEPLOY_MODE:-auto}
TIMEOUT=300
WITHOUT_BOT=0
DRY_RUN=0
while [ $# -gt 0 ]; do
  case "$1" in
    --compose) MODE=compose ;;
    --local) MODE=local ;;
    --timeout)
      [ $# -ge 2 ] || fail $EXIT_USAGE "--timeout needs a number of seconds"
      TIMEOUT=$2
      shift
      ;;
    --timeout=*) TIMEOUT=${1#--timeout=} ;;
    --without-bot) WITHOUT_BOT=1 ;;
    --dry-run) DRY_RUN=1 ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) fail $EXIT_USAGE "unknown option: $1 (--help lists them)" ;;
  esac
  shift
done
case "$TIMEOUT" in
  '' | *[!0-9]* | 0) fail $EXIT_USAGE "--timeout must be a whole number of seconds above 0 (got '$TIMEOUT')" ;;
esac
case "$MODE" in
  docker) MODE=compose ;; # the name an earlier version of this script took
  compose | local | auto) ;;
  *) fail $EXIT_USAGE "DEPLOY_MODE must be compose, local or auto (got '$MODE')" ;;
esac

if [ "$MODE" = auto ]; then
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    MODE=compose
  else
    MODE=local
    say "no Docker engine answers (docker info): local mode, processes under supervisord"
  fi
fi
[ "$DRY_RUN" = 1 ] && say "dry run: printing the commands, running none"

# "2.29.1", "v2.29.1-desktop.1" -> 0 when at least $MIN_COMPOSE
compose_is_recent() {
  local version=${1#v}
  version=${version%%[-+]*}
  [ "$(printf '%s\n%s\n' "$MIN_COMPOSE" "$version" | sort -V | head -n1)" = "$MIN_COMPOSE" ]
}

# An empty or missing token file: compose-secrets creates it empty, the operator fills it in.
bot_token_present() {
  [ -f "$SECRETS_DIR/telegram_bot_token" ] && grep -q '[^[:space:]]' "$SECRETS_DIR/telegram_bot_token"
}

deploy_compose() {
  local compose=(docker compose -f "$COMPOSE_FILE")
  say "prerequisites: docker, a Docker engine, docker compose >= v$MIN_COMPOSE"
  if [ "$DRY_RUN" = 1 ]; then
    run docker info
    run docker compose version --short
  else
    command -v docker >/dev/null 2>&1 || fail $EXIT_PREREQUISITE "docker is not installed (https://docs.docker.com/engine/install/), or deploy with --local"
    docker info >/dev/null 2>&1 || fail $EXIT_PREREQUISITE "no Docker engine answers \`docker info\` (is dockerd running? may this user use it?), or deploy with --local"
    local version
    version=$(docker compose version --short 2>/dev/null) || fail $EXIT_PREREQUISITE "docker compose v2 is missing (apt-get install docker-compose-plugin)"
    compose_is_recent "$version" || fail $EXIT_PREREQUISITE "docker compose $version is too old: v$MIN_COMPOSE or newer is needed (up --wait-timeout)"
    [ "$SECRETS_DIR" -ef "$REPO_SECRETS_DIR" ] || fail $EXIT_PREREQUISITE "SECRETS_DIR=$SECRETS_DIR: $COMPOSE_FILE mounts ./secrets, a real deploy uses only that"
  fi
  [ -x "$PYTHON" ] || run make --no-print-directory install # compose-secrets runs from the venv

  say "secrets under ./$REPO_SECRETS_DIR (created once and kept; URLs rebuilt from them)"
  run "$PYTHON" -m shared.runner compose-secrets
  local scale=()
  if [ "$WITHOUT_BOT" = 1 ]; then
    say "--without-bot: the Telegram bot is scaled to 0"
    scale=(--scale telegram-bot=0)
  elif ! bot_token_present; then
    fail $EXIT_PREREQUISITE "$SECRETS_DIR/telegram_bot_token is empty: the bot would restart forever without one.
  Create a bot with @BotFather in Telegram (/newbot), put its token in $SECRETS_DIR/telegram_bot_token
  and run this again, or deploy everything else now with --without-bot."
  fi

  say "build the images"
  run "${compose[@]}" build
  say "migrate: PostgreSQL, then each one-shot <service>-migrate job"
  run "${compose[@]}" up -d --wait --wait-timeout "$TIMEOUT" postgres
  local job
  # two-space indented keys ending in -migrate: the compose file's one-shot jobs
  for job in $(sed -n 's/^  \([a-z0-9-]*-migrate\):.*/\1/p' "$COMPOSE_FILE"); do
    run "${compose[@]}" run --rm --no-deps "$job"
  done
  say "start everything and wait until healthy (at most ${TIMEOUT}s)"
  run "${compose[@]}" up -d --remove-orphans --wait --wait-timeout "$TIMEOUT" "${scale[@]}"
  run "${compose[@]}" ps

  say "RepitBot is up:"
  cat <<EOF
  gateway              http://localhost:8000
  API docs             http://localhost:8000/docs
  Grafana              http://localhost:3000   (user ${GRAFANA_ADMIN_USER:-admin}, password in secrets/grafana_admin_password)
  Prometheus           http://localhost:9090
  Alertmanager         http://localhost:9093
  RabbitMQ management  http://localhost:15672  (user repitbot, password in secrets/rabbitmq_password)
EOF
  [ "$WITHOUT_BOT" = 1 ] && echo "  telegram-bot         not started (--without-bot)"
  return 0
}

# Whether this runner's `up` takes --monitoring (Prometheus under the same supervisord).
runner_has_monitoring() {
  [ -x "$PYTHON" ] && "$PYTHON" -m shared.runner up --help 2>/dev/null | grep -q -- '--monitoring'
}

prometheus_answers() {
  python3 - "$PROMETHEUS_URL/-/ready" <<'PY' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=2)
PY
}

deploy_local() {
  command -v python3 >/dev/null 2>&1 || fail $EXIT_PREREQUISITE "python3 is missing (apt-get install python3 python3-venv)"
  command -v make >/dev/null 2>&1 || fail $EXIT_PREREQUISITE "make is missing (apt-get install make)"
  say "Python environment (make install: a no-op when .venv is up to date)"
  run make --no-print-directory install

  local up=(env "REPITBOT_READY_TIMEOUT=$TIMEOUT" "$PYTHON" -m shared.runner up)
  local monitoring=0
  if runner_has_monitoring; then
    monitoring=1
    up+=(--monitoring)
  else
    say "monitoring is not available: this runner's \`up\` has no --monitoring; starting the fleet without Prometheus"
  fi
  say "servers, databases, migrations, supervisord; waiting until ready (at most ${TIMEOUT}s)"
  run "${up[@]}"

  say "RepitBot is up (local):"
  echo "  gateway              http://127.0.0.1:8000"
  echo "  API docs             http://127.0.0.1:8000/docs"
  if [ "$monitoring" = 1 ] && { [ "$DRY_RUN" = 1 ] || prometheus_answers; }; then
    echo "  Prometheus           $PROMETHEUS_URL"
  else
    echo "  Prometheus           not running (needs \`shared.runner up --monitoring\` and Debian's prometheus)"
  fi
  echo "  Grafana              needs Docker: ./deploy_final_microservices.sh --compose"
  echo "  stop: make stop   status: make status   logs: make logs CID=<correlation id>"
}

# A failed step (set -e) exits with 1 and names the command; -E carries the trap into functions.
trap 'printf "deploy: failed (status %s): %s\n" "$?" "$BASH_COMMAND" >&2; exit $EXIT_FAILED' ERR
case "$MODE" in
  compose) deploy_compose ;;
  local) deploy_local ;;
esac
