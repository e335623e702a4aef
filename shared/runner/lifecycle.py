"""A fleet's life: ``prepare`` → ``start`` (→ ``wait_ready``) → ``stop`` (→ ``teardown`` for a test run).

``make run`` and the test fleet call exactly these functions; only the
:class:`~shared.runner.layout.FleetLayout` differs.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import httpx
import psutil

from shared.fleet import ServiceSpec
from shared.runner.dev_secrets import DevSecrets, ensure_dev_secrets
from shared.runner.environment import bot_environment, service_environment
from shared.runner.layout import REPO_ROOT, FleetLayout
from shared.runner.monitoring import (
    PROMETHEUS_PROGRAM,
    MonitoringError,
    prometheus_port,
    prometheus_url,
    supervisor_program,
    wait_prometheus_ready,
)
from shared.runner.provision import (
    DatabasePlan,
    declare_events_exchange,
    delete_vhost,
    drop_databases,
    ensure_databases,
    ensure_vhost,
    flush_redis_database,
)
from shared.runner.servers import Endpoints, ensure_servers
from shared.runner.supervisor import BOT_PROGRAM, Supervisor

Say = Callable[[str], None]
LOG_TAIL_LINES = 40


class FleetError(RuntimeError):
    """The fleet could not be prepared or did not come up; the message says what to look at."""


@dataclass(frozen=True)
class PreparedFleet:
    """Everything a fleet's services are started with."""

    layout: FleetLayout
    endpoints: Endpoints
    secrets: DevSecrets
    environments: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def rabbit_url(self) -> str:
        return self.endpoints.rabbit_url(self.layout.vhost)

    @property
    def redis_url(self) -> str:
        return self.endpoints.redis_database_url(self.layout.redis_db)

    @property
    def supervisor(self) -> Supervisor:
        return Supervisor(self.layout)


def database_plans(layout: FleetLayout, secrets: DevSecrets) -> list[DatabasePlan]:
    return [
        DatabasePlan(layout.database_name(spec), spec.database_role, secrets.database_password(spec))
        for spec in layout.database_specs
    ]


def prepare(
    layout: FleetLayout,
    *,
    endpoints: Endpoints | None = None,
    overrides: Mapping[str, str] | None = None,
    fresh_databases: bool = False,
    say: Say = print,
) -> PreparedFleet:
    """Servers up, secrets, roles and databases, vhost and exchange, migrations: all idempotent."""
    endpoints = endpoints or Endpoints.from_environment()
    ensure_servers(endpoints, say=say)
    secrets = ensure_dev_secrets(layout.secrets_dir, layout.specs)
    plans = database_plans(layout, secrets)
    if fresh_databases:  # a test run starts from empty databases, whatever an aborted run left
        drop_databases(endpoints.pg_admin_dsn, [plan.database for plan in plans])
    ensure_databases(endpoints.pg_admin_dsn, plans)
    say(f"databases ready: {', '.join(plan.database for plan in plans) or '(none)'}")
    ensure_vhost(layout.vhost, endpoints.rabbit_user)
    declare_events_exchange(endpoints.rabbit_url(layout.vhost))
    say(f"RabbitMQ vhost {layout.vhost!r} with the events exchange is ready")
    environments = {
        spec.name: service_environment(spec, layout, secrets, endpoints, overrides) for spec in layout.specs
    }
    bot = bot_environment(layout, secrets, endpoints, overrides)
    if bot is not None:
        environments[BOT_PROGRAM] = bot
    prepared = PreparedFleet(layout, endpoints, secrets, environments)
    migrate(prepared, say=say)
    return prepared


def migrate(prepared: PreparedFleet, *, say: Say = print) -> None:
    """``python -m shared.migrations upgrade``, once, with each service's own database URL."""
    specs = prepared.layout.database_specs
    if not specs:
        return
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REPITBOT_TEST_FLEET")}
    for spec in specs:
        env[f"{spec.env_prefix}DATABASE_URL"] = prepared.environments[spec.name]["DATABASE_URL"]
    result = subprocess.run(
        [sys.executable, "-m", "shared.migrations", "upgrade", *(spec.name for spec in specs)],
        env=env,
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise FleetError(f"migrations failed (exit {result.returncode}):\n{_last_lines(result.stderr + result.stdout)}")
    say(f"migrated: {', '.join(spec.name for spec in specs)}")


def start(prepared: PreparedFleet, *, ready_timeout: float = 60, monitoring: bool = False, say: Say = print) -> None:
    """Write the supervisord config, start (or update) supervisord, wait until every service is ready.

    With ``monitoring``, Debian's Prometheus runs beside the services and scrapes them (shared.runner.monitoring).
    """
    layout = prepared.layout
    supervisor = prepared.supervisor
    extra_programs: dict[str, str] = {}
    if monitoring:
        was_running = PROMETHEUS_PROGRAM in supervisor.processes()
        if not was_running and not _port_free(prometheus_port(layout)):
            raise FleetError(
                f"port {prometheus_port(layout)} (Prometheus) held by {_port_owner(prometheus_port(layout))}"
            )
        try:
            extra_programs = supervisor_program(layout, include_bot=BOT_PROGRAM in prepared.environments)
        except MonitoringError as error:
            raise FleetError(str(error)) from error
    if not supervisor.is_running():
        refuse_busy_ports(layout)
    supervisor.write_config(prepared.environments, extra_programs)
    supervisor.start()
    say(f"supervisord runs the {layout.name} fleet ({layout.supervisor_config})")
    wait_ready(layout, supervisor, timeout=ready_timeout)
    if monitoring:
        try:
            wait_prometheus_ready(prometheus_url(layout), timeout=ready_timeout)
        except MonitoringError as error:
            log = layout.log_dir / f"{PROMETHEUS_PROGRAM}.log"
            raise FleetError(f"{error}\n--- last lines of {log} ---\n{log_tail(log)}") from error
        say(f"Prometheus scrapes the fleet on {prometheus_url(layout)}")


def wait_ready(layout: FleetLayout, supervisor: Supervisor, *, timeout: float) -> None:
    """Until every service answers 200 on /ready; fails early when supervisord gives a service up."""
    pending: dict[str, ServiceSpec] = {spec.name: spec for spec in layout.specs}
    last_answer: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=3) as client:
        while pending:
            states = {name: info["statename"] for name, info in supervisor.processes().items()}
            for name, spec in list(pending.items()):
                state = states.get(name, "UNKNOWN")
                if state in ("FATAL", "EXITED", "STOPPED", "UNKNOWN"):
                    raise FleetError(_not_ready(layout, spec, f"supervisord reports it {state}"))
                try:
                    response = client.get(f"{layout.base_url(spec)}/ready")
                except httpx.HTTPError as error:
                    last_answer[name] = f"{type(error).__name__}"
                    continue
                if response.status_code == 200 and state == "RUNNING":  # RUNNING: up for startsecs
                    del pending[name]
                else:
                    last_answer[name] = f"{response.status_code} {response.text[:300]}"
            if pending and time.monotonic() > deadline:
                spec = next(iter(pending.values()))
                reason = f"not ready within {timeout:.0f}s; last /ready: {last_answer.get(spec.name, 'no answer')}"
                raise FleetError(_not_ready(layout, spec, reason))
            if pending:
                time.sleep(0.5)


def _not_ready(layout: FleetLayout, spec: ServiceSpec, reason: str) -> str:
    path = layout.log_path(spec)
    return f"{spec.name} on {layout.base_url(spec)}: {reason}\n--- last lines of {path} ---\n{log_tail(path)}"


def log_tail(path: os.PathLike[str] | str, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with open(path, errors="replace") as handle:
            return _last_lines(handle.read(), lines)
    except FileNotFoundError:
        return "(no log written)"


def _last_lines(text: str, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def refuse_busy_ports(layout: FleetLayout) -> None:
    """Fail, naming the holder, when another process listens on one of the fleet's ports."""
    busy = [spec for spec in layout.specs if not _port_free(layout.port(spec))]
    if busy:
        details = "; ".join(
            f"{layout.port(spec)} ({spec.name}) held by {_port_owner(layout.port(spec))}" for spec in busy
        )
        raise FleetError(f"ports already in use, the {layout.name} fleet cannot start: {details}")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _port_owner(port: int) -> str:
    try:
        for conn in psutil.net_connections(kind="inet"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                return f"pid {conn.pid} ({' '.join(psutil.Process(conn.pid).cmdline())[:120]})"
    except (psutil.Error, PermissionError):
        pass
    return "another process"


def stop(layout: FleetLayout) -> bool:
    """Stop the fleet's supervisord and its services; False when it was not running."""
    return Supervisor(layout).stop()


def teardown(layout: FleetLayout, endpoints: Endpoints) -> None:
    """Remove what a test run created on the shared servers: its databases, vhost and Redis keys.

    Takes only the layout, so a run that failed half-way through ``prepare`` is cleaned up too.
    Roles stay: they are shared with the developer's fleet.
    """
    drop_databases(endpoints.pg_admin_dsn, [layout.database_name(spec) for spec in layout.database_specs])
    delete_vhost(layout.vhost)
    flush_redis_database(endpoints.redis_database_url(layout.redis_db))


def service_urls(layout: FleetLayout) -> dict[str, str]:
    return {spec.name: layout.base_url(spec) for spec in layout.specs}
