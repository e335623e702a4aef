# RepitBot — everyday commands. `make help` lists them.
# One venv (.venv) and one lock file (requirements.lock) for the whole repository.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
RUNNER := $(BIN)/python -m shared.runner
INSTALLED := $(VENV)/.installed
DEBIAN_PACKAGES := postgresql redis-server rabbitmq-server fonts-dejavu-core prometheus prometheus-alertmanager

.PHONY: help install deps run stop status logs dead-letters migrate test soak lint audit bench sandbox create-admin lock clean

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

install: $(INSTALLED) ## create .venv from requirements.lock and install this repo (editable)

$(INSTALLED): requirements.lock pyproject.toml
	@test -x $(BIN)/python || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $@

deps: ## install PostgreSQL, Redis and RabbitMQ from Debian (needs root)
	apt-get update && apt-get install -y $(DEBIAN_PACKAGES)

run: install ## start the whole fleet locally under supervisord (idempotent) and print the URLs; MONITORING=1 adds Prometheus
	$(RUNNER) up $(if $(filter-out 0,$(MONITORING)),--monitoring)

stop: ## stop the local fleet (SIGTERM; services drain and flush)
	@if [ -x $(BIN)/python ]; then $(RUNNER) down; else echo "no venv: nothing is running"; fi

status: install ## servers, processes and readiness of the local fleet
	@$(RUNNER) status || true  # the runner exits 3 when something is down; the listing says what

logs: install ## latest log lines; `make logs CID=<correlation id>` shows one request across the fleet
	$(RUNNER) logs $(if $(CID),--cid '$(CID)')

# SERVICE, REPLAY and EVENT_ID reach the recipe as environment variables (make exports command-line variables)
dead-letters: install ## events a service parked: make dead-letters SERVICE=payment-service [REPLAY=1 [EVENT_ID=...]] moves them back
	@test -n "$${SERVICE:-}" || { echo "usage: make dead-letters SERVICE=payment-service [REPLAY=1 [EVENT_ID=<event id>]]" >&2; exit 2; }
	@eval "$$($(RUNNER) env "$$SERVICE")"; \
	$(BIN)/python -m shared.events.dead_letters $$(test -n "$${REPLAY:-}" && echo replay || echo list) "$$SERVICE" \
	  $${EVENT_ID:+--event-id "$$EVENT_ID"}

migrate: install ## create roles and databases, then migrate every service to head
	$(RUNNER) migrate

test: install ## the whole test suite (real PostgreSQL, RabbitMQ, Redis; prints the slowest tests)
	@rc=0; $(BIN)/pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure here" >&2; fi; \
	exit $$rc

# The proof suites (marked `proof`: fault injection, SIGTERM under load, fuzzing) are part of make
# test at PROOF_SCALE=200; soak runs just them, larger. SCALE=5000 for more; the per-test timeout grows.
soak: install ## the proof suites at PROOF_SCALE=1000 (SCALE=... to change), not part of make test
	PROOF_SCALE=$(or $(SCALE),1000) $(BIN)/pytest -m proof --timeout=1800 $(PYTEST_ARGS)

sandbox: install ## the bot in a browser (no Telegram): the fleet, then a web chat on http://127.0.0.1:8090/
	$(RUNNER) up $(if $(filter-out 0,$(MONITORING)),--monitoring)
	$(BIN)/python -m services.telegram_bot.sandbox

lint: install ## ruff check + ruff format --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# pip-audit runs from a throwaway venv (it is a tool, not a dependency of the product, and stays out of
# the lock it audits). It asks PyPI's advisory data about each pin of the lock; not part of make test
# or CI: the answer depends on data fetched at run time. Exit 1: vulnerabilities found; exit 3: some pins
# could not be audited (the advisory data was not reached), so "no known vulnerabilities" is incomplete.
PIP_AUDIT := pip-audit==2.10.1

audit: ## known vulnerabilities in the pins of requirements.lock (pip-audit; needs PyPI, not part of make test)
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(PYTHON) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/pip" install --quiet $(PIP_AUDIT) 2>"$$tmp/pip.log" || { cat "$$tmp/pip.log" >&2; exit 2; }; \
	rc=0; "$$tmp/venv/bin/pip-audit" -r requirements.lock --no-deps --disable-pip --desc on --progress-spinner off \
	  2>&1 | tee "$$tmp/audit.out" || rc=$$?; \
	skipped=$$(grep -c "could not be audited" "$$tmp/audit.out" || true); \
	if [ "$$skipped" -gt 0 ]; then \
	  echo "make audit: $$skipped of $$(grep -c '==' requirements.lock) pins could not be audited: the result is incomplete" >&2; \
	  [ $$rc -ne 0 ] || rc=3; \
	fi; \
	exit $$rc

# Every benchmark under benchmarks/ in turn (python -m benchmarks), or BENCH=name[,name]; BENCH_QUICK=1 makes
# each a short smoke run. The gateway benchmark needs wrk and nginx, the capacity benchmark wrk: installed from
# Debian when missing (root only; on a systemd machine Debian's nginx package also starts a system nginx on :80,
# which the bench does not use).
bench: install ## benchmarks (docs/performance.md), one after another; BENCH=events for one, BENCH_QUICK=1 for a smoke run
	@tools=(); \
	if [ -z "$${BENCH:-}" ] || [[ ",$${BENCH}," == *",gateway,"* ]]; then tools+=(wrk nginx); fi; \
	if [ -z "$${BENCH:-}" ] || [[ ",$${BENCH}," == *",capacity,"* ]]; then tools+=(wrk); fi; \
	missing=(); for tool in $$(printf '%s\n' "$${tools[@]}" | sort -u); do \
	  command -v $$tool >/dev/null || test -x /usr/sbin/$$tool || missing+=($$tool); done; \
	if [ $${#missing[@]} -gt 0 ]; then \
	  if [ "$$(id -u)" -ne 0 ]; then echo "make bench needs $${missing[*]}: apt-get install -y $${missing[*]} (as root)" >&2; exit 2; fi; \
	  echo "installing $${missing[*]} from Debian"; DEBIAN_FRONTEND=noninteractive apt-get install -y $${missing[*]}; \
	fi
	$(BIN)/python -m benchmarks

# EMAIL, NAME and PASSWORD reach the recipe as environment variables (make exports command-line
# variables), so no quoting can break and the password never shows in a process list.
create-admin: install ## create an admin: make create-admin EMAIL=... NAME=... [PASSWORD=...] (else asked)
	@test -n "$${EMAIL:-}" -a -n "$${NAME:-}" || { echo "usage: make create-admin EMAIL=a@b.c NAME='Full Name' [PASSWORD=...]" >&2; exit 2; }
	@eval "$$($(RUNNER) env user-service)"; \
	ADMIN_PASSWORD="$${PASSWORD:-}" $(BIN)/python -m services.user_service.cli create-admin --email "$$EMAIL" --full-name "$$NAME"

lock: ## re-pin requirements.lock from requirements.in in a throwaway venv
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(PYTHON) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/pip" install --quiet --upgrade pip; \
	"$$tmp/venv/bin/pip" install --quiet -r requirements.in; \
	"$$tmp/venv/bin/pip" freeze --exclude-editable > requirements.lock; \
	echo "requirements.lock: $$(wc -l < requirements.lock) pins; run 'make install' to apply"

clean: stop ## remove logs, test-fleet folders and caches (keeps var/dev-secrets and .venv)
	rm -rf var/log var/run var/supervisord.conf var/test-fleet-* var/bench-fleet var/bench-nginx
	rm -rf .pytest_cache .ruff_cache .mypy_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
