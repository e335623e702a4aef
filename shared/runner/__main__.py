"""``python -m shared.runner up|down|status|logs|migrate|env|servers|compose-secrets`` — the developer's fleet.

``make run`` / ``make stop`` / ``make status`` / ``make logs CID=...`` / ``make migrate`` call this.
Settings may be overridden in ``.env`` at the repository root (see ``.env.example``).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

import httpx
from dotenv import load_dotenv

from shared.fleet import by_name
from shared.runner import lifecycle, logs, monitoring
from shared.runner.layout import REPO_ROOT, FleetLayout
from shared.runner.servers import Endpoints, ServerError, ensure_servers, server_status
from shared.runner.supervisor import BOT_PROGRAM, Supervisor, SupervisorError


def _say(message: str) -> None:
    print(f"[runner] {message}", file=sys.stderr, flush=True)


def _prepare(layout: FleetLayout) -> lifecycle.PreparedFleet:
    return lifecycle.prepare(layout, overrides=os.environ, say=_say)


def cmd_up(layout: FleetLayout, args: argparse.Namespace) -> int:
    prepared = _prepare(layout)
    lifecycle.start(prepared, ready_timeout=args.timeout, monitoring=args.monitoring, say=_say)
    print(f"RepitBot {layout.name} fleet is up:")
    for name, url in lifecycle.service_urls(layout).items():
        print(f"  {name:<22} {url}   (docs {url}/docs)")
    print(bot_line(layout, prepared.environments))
    if args.monitoring:
        print(
            f"  {'prometheus':<22} {monitoring.prometheus_url(layout)}   (targets {monitoring.prometheus_url(layout)}/targets)"
        )
    print(f"  logs: {layout.log_dir}/   trail of one request: make logs CID=<correlation id>")
    return 0


def bot_line(layout: FleetLayout, environments: dict[str, dict[str, str]]) -> str:
    """What `make run` says about the Telegram bot: running, or how to give it a token."""
    if BOT_PROGRAM in environments:
        return f"  {BOT_PROGRAM:<22} running (health and metrics on http://127.0.0.1:{layout.bot_port})"
    return (
        f"  {BOT_PROGRAM:<22} not started: no TELEGRAM_BOT_TOKEN. Create a bot with @BotFather in Telegram"
        " (/newbot), put TELEGRAM_BOT_TOKEN=<its token> in .env and run `make run` again"
        " (or try it without Telegram: `make sandbox`)."
    )


def cmd_down(layout: FleetLayout, args: argparse.Namespace) -> int:
    stopped = lifecycle.stop(layout)
    print(f"{layout.name} fleet stopped" if stopped else f"{layout.name} fleet was not running")
    return 0


def cmd_status(layout: FleetLayout, args: argparse.Namespace) -> int:
    all_well = True
    for server, answers in server_status(Endpoints.from_environment()).items():
        all_well &= answers
        print(f"{server:<12} {'up' if answers else 'DOWN'}")
    supervisor = Supervisor(layout)
    if not supervisor.is_running():
        print(f"supervisord  not running ({layout.name} fleet is stopped; start it with `make run`)")
        return 3
    print(f"supervisord  running (pid {supervisor.pid()}, {layout.supervisor_config})")
    processes = supervisor.processes()
    with httpx.Client(timeout=2) as client:
        for spec in layout.specs:
            info = processes.get(spec.name, {})
            url = layout.base_url(spec)
            try:
                ready = "ready" if client.get(f"{url}/ready").status_code == 200 else "NOT READY"
            except httpx.HTTPError:
                ready = "NO ANSWER"
            all_well &= ready == "ready"
            state = info.get("statename", "UNKNOWN")
            print(f"{spec.name:<22} {state:<9} {ready:<10} {url}  {info.get('description', '')}")
    return 0 if all_well else 3


def cmd_logs(layout: FleetLayout, args: argparse.Namespace) -> int:
    if args.cid:
        found = logs.lines_for_correlation_id(layout, args.cid)
        for line in found:
            print(line)
        if not found:
            print(f"no log line with correlation_id {args.cid!r} in {layout.log_dir}", file=sys.stderr)
            return 1
        return 0
    for line in logs.tail(layout, args.lines):
        print(line)
    return 0


def cmd_migrate(layout: FleetLayout, args: argparse.Namespace) -> int:
    _prepare(layout)  # migrations run as its last step, after roles and databases exist
    return 0


def cmd_env(layout: FleetLayout, args: argparse.Namespace) -> int:
    """Print a service's environment as shell exports: ``eval "$(python -m shared.runner env user-service)"``."""
    from shared.runner.dev_secrets import ensure_dev_secrets
    from shared.runner.environment import service_environment

    spec = by_name(args.service)
    secrets = ensure_dev_secrets(layout.secrets_dir, layout.specs)
    env = service_environment(spec, layout, secrets, Endpoints.from_environment(), overrides=os.environ)
    for key, value in env.items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def cmd_servers(layout: FleetLayout, args: argparse.Namespace) -> int:
    ensure_servers(Endpoints.from_environment(), say=_say)
    print("PostgreSQL, Redis and RabbitMQ are up")
    return 0


def cmd_compose_secrets(layout: FleetLayout, args: argparse.Namespace) -> int:
    from shared.runner.compose_secrets import SECRETS_DIR, write_compose_secrets

    names = write_compose_secrets()
    print(f"{len(names)} secrets in {SECRETS_DIR}/ (existing ones kept): {', '.join(names)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    load_dotenv(REPO_ROOT / ".env", override=False)  # the shell wins over .env
    parser = argparse.ArgumentParser(prog="python -m shared.runner", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="prepare and start the fleet, wait until every service is ready")
    up.add_argument("--timeout", type=float, default=float(os.environ.get("REPITBOT_READY_TIMEOUT", 90)))
    up.add_argument(
        "--monitoring",
        action="store_true",
        help="also run Prometheus (Debian's package) scraping the fleet, with the alert rules of deploy/prometheus",
    )
    sub.add_parser("down", help="stop the fleet (SIGTERM, graceful)")
    sub.add_parser("status", help="servers, processes and readiness")
    log_parser = sub.add_parser("logs", help="one request's JSON log lines across the fleet, or the latest lines")
    log_parser.add_argument("--cid", default=os.environ.get("CID") or None, help="correlation ID")
    log_parser.add_argument("-n", "--lines", type=int, default=20)
    sub.add_parser("migrate", help="create roles/databases and migrate every service")
    env_parser = sub.add_parser("env", help="a service's environment as shell exports")
    env_parser.add_argument("service")
    sub.add_parser("servers", help="start PostgreSQL, Redis and RabbitMQ where installed but not running")
    sub.add_parser("compose-secrets", help="create the files under secrets/ that docker compose mounts")
    args = parser.parse_args(argv)

    commands = {
        "up": cmd_up,
        "down": cmd_down,
        "status": cmd_status,
        "logs": cmd_logs,
        "migrate": cmd_migrate,
        "env": cmd_env,
        "servers": cmd_servers,
        "compose-secrets": cmd_compose_secrets,
    }
    try:
        return commands[args.command](FleetLayout.development(), args)
    except (lifecycle.FleetError, ServerError, SupervisorError) as error:
        print(f"[runner] error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
