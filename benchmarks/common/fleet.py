"""The bench fleet: the runner's own lifecycle with a layout of its own, beside any other fleet.

Each benchmark names the services it needs (the gateway benchmark only the gateway and
user-service), so the other services' start-up and background work (outbox polls,
consumers, the gateway's health checks on them) neither lengthen the run nor take CPU
from it.

A developer's fleet uses ports 8000-8008, databases ``repitbot_<svc>``, vhost
``repitbot`` and Redis database 0; a test run uses 18000-18008,
``repitbot_test_<svc>``, ``repitbot_test_<run id>`` and database 15. The bench
takes ports +20000 (28000-28008), ``repitbot_bench_<svc>``, vhost
``repitbot_bench`` and Redis database 14, with supervisord and logs under
``var/bench-fleet/``, so it disturbs neither. Like a test run it starts from
empty databases and removes its databases, vhost and Redis keys at the end.
One bench at a time per machine: a second waits until the first has stopped its fleet
(``var/bench-fleet.lock``; an older bench without it, by its owner pid), so
``make bench`` runs of different benchmarks by different people take turns.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

import psutil

from benchmarks.common.lock import try_lock
from benchmarks.common.output import say
from shared.fleet import FLEET, ServiceSpec
from shared.runner import lifecycle
from shared.runner.layout import VAR_DIR, FleetLayout
from shared.runner.servers import Endpoints
from shared.runner.supervisor import Supervisor

BENCH_PORT_OFFSET = 20_000
BENCH_REDIS_DB = 14
BENCH_VHOST = "repitbot_bench"
BENCH_STATE_DIR = VAR_DIR / "bench-fleet"
ALL_SERVICES = tuple(spec.name for spec in FLEET)
READY_TIMEOUT_SECONDS = float(os.environ.get("REPITBOT_READY_TIMEOUT", 90))
_OWNER_FILE = "owner.pid"  # the bench process that runs this fleet
FLEET_SLOT = VAR_DIR / "bench-fleet.lock"  # held by the bench whose fleet it is, from start to teardown


class BenchLayout(FleetLayout):
    """The test layout's shape with databases of its own (``repitbot_bench_<svc>``).

    ``FleetLayout`` knows two database namings (development, test); the bench needs a
    third so a test session running at the same time keeps its databases.
    """

    def database_name(self, spec: ServiceSpec) -> str:
        return spec.database_name.replace("repitbot_", "repitbot_bench_", 1)


def bench_layout(services: Iterable[str] = ALL_SERVICES) -> BenchLayout:
    """The layout for ``services`` (those of them in ``shared/fleet.py``; the others are not started)."""
    wanted = set(services)
    return BenchLayout(
        name="bench",
        env="test",
        port_offset=BENCH_PORT_OFFSET,
        test_databases=False,  # superseded by BenchLayout.database_name
        vhost=BENCH_VHOST,
        redis_db=BENCH_REDIS_DB,
        state_dir=BENCH_STATE_DIR,
        specs=tuple(spec for spec in FLEET if spec.name in wanted),
    )


@contextmanager
def running_bench_fleet(
    services: Iterable[str], overrides: Mapping[str, str] | None = None
) -> Iterator[lifecycle.PreparedFleet]:
    """Start ``services`` as the bench fleet with per-service setting ``overrides`` (``<PREFIX>_<NAME>``);
    stop it and remove its data after."""
    layout = bench_layout(services)
    endpoints = Endpoints.from_environment()
    with _the_fleet_slot():
        _clean_up_abandoned_run(bench_layout(), endpoints)  # whichever services that run had
        lifecycle.refuse_busy_ports(layout)  # before anything is dropped: another bench may own them
        layout.state_dir.mkdir(parents=True, exist_ok=True)
        (layout.state_dir / _OWNER_FILE).write_text(str(os.getpid()))
        try:
            prepared = lifecycle.prepare(
                layout, endpoints=endpoints, overrides=overrides or {}, fresh_databases=True, say=say
            )
            lifecycle.start(prepared, ready_timeout=READY_TIMEOUT_SECONDS, say=say)
            yield prepared
        finally:
            try:
                lifecycle.stop(layout)
            finally:
                lifecycle.teardown(layout, endpoints)
                (layout.state_dir / _OWNER_FILE).unlink(missing_ok=True)
                say(f"bench fleet stopped and its data removed; logs kept in {layout.log_dir}")


@contextmanager
def _the_fleet_slot() -> Iterator[None]:
    """Wait (polling, so Ctrl-C works) until no other bench has the bench fleet; hold it inside the block."""
    FLEET_SLOT.parent.mkdir(parents=True, exist_ok=True)
    with open(FLEET_SLOT, "a") as handle:
        started, waiting = time.monotonic(), False
        while not try_lock(handle) or _older_bench_running():
            if not waiting:
                say("another bench has the bench fleet; waiting for it to finish")
                waiting = True
            time.sleep(1)
        if waiting:
            say(f"the bench fleet is free after {time.monotonic() - started:.0f}s")
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _older_bench_running() -> bool:
    """A bench started before benches took FLEET_SLOT (its process is alive and its supervisord runs)."""
    layout = bench_layout()
    owner = _owner_pid(layout)
    return (
        owner is not None and owner != os.getpid() and psutil.pid_exists(owner) and Supervisor(layout).pid() is not None
    )


def _clean_up_abandoned_run(layout: FleetLayout, endpoints: Endpoints) -> None:
    """Stop a bench fleet whose bench process was killed before it could clean up."""
    if Supervisor(layout).pid() is None:
        return
    owner = _owner_pid(layout)
    if owner is not None and owner != os.getpid() and psutil.pid_exists(owner):
        raise lifecycle.FleetError(f"another bench (pid {owner}) is running its fleet; wait for it to finish")
    say("stopping the fleet of an earlier bench that did not finish")
    lifecycle.stop(layout)
    lifecycle.teardown(layout, endpoints)


def _owner_pid(layout: FleetLayout) -> int | None:
    try:
        return int((layout.state_dir / _OWNER_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return None
