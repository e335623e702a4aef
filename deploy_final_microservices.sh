#!/usr/bin/env bash
# Deploy RepitBot.
#   - Where a Docker engine answers (`docker info`): docker compose, docker-compose.microservices.yml.
#   - Otherwise: the same fleet as local processes under supervisord (`python -m shared.runner up`),
#     against local PostgreSQL, RabbitMQ and Redis.
# DEPLOY_MODE=docker|local forces one. Safe to run again: every step is idempotent.
set -euo pipefail
cd "$(dirname "$0")"

COMPOSE_FILE=docker-compose.microservices.yml
MODE=${DEPLOY_MODE:-auto}

say() { printf '==> %s\n' "$*"; }
fail() { printf 'deploy: %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || fail "missing prerequisite: $1 — $2"; }

need python3 "install Python 3.11"
need make "apt-get install -y make"

if [ "$MODE" = auto ]; then
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    MODE=docker
  else
    MODE=local
    say "no Docker engine answers (docker info failed): deploying as local processes under supervisord"
  fi
fi

say "Python environment (make install)"
make --no-print-directory install

case "$MODE" in
  docker)
    docker compose version >/dev/null 2>&1 || fail "the docker compose plugin is missing (apt-get install docker-compose-plugin)"
    say "secrets under ./secrets (created once, never replaced)"
    .venv/bin/python -m shared.runner compose-secrets
    say "docker compose up (build, migrate once, start, wait until healthy)"
    docker compose -f "$COMPOSE_FILE" up -d --build --remove-orphans --wait --wait-timeout 300
    docker compose -f "$COMPOSE_FILE" ps
    say "RepitBot is up:"
    docker compose -f "$COMPOSE_FILE" ps --format '{{.Service}} {{.Publishers}}' \
      | sed -n 's/^\([^ ]*\) .*:\([0-9]*\)->.*/  \1  http:\/\/127.0.0.1:\2/p'
    ;;
  local)
    say "local servers, databases, vhost, migrations, supervisord (python -m shared.runner up)"
    .venv/bin/python -m shared.runner up
    say "stop with: make stop    status: make status    logs: make logs CID=<correlation id>"
    ;;
  *)
    fail "DEPLOY_MODE must be docker, local or auto (got $MODE)"
    ;;
esac
