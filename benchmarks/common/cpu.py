"""Where the CPU went during a measured run: seconds per component, shown as cores used.

On a machine where wrk, the proxies, the services and the servers share a few CPUs,
the component that sits at one full core (a Python process has one) is what limits
the throughput; this is what the table's CPU rows show. Each component's processes
are looked up when a run starts and their CPU time is compared at its end; wrk's own
time comes from the harness's reaped children (``RUSAGE_CHILDREN``). ``softirq`` is the
kernel's packet processing, on a quiet machine nearly all of it the benchmark's own
loopback traffic. ``other`` is the machine's busy time that none of these used:
another program (a test run, say) taking CPU from the benchmark shows there.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psutil

from shared.runner.layout import FleetLayout
from shared.runner.supervisor import Supervisor

Groups = Callable[[], dict[str, list[int]]]  # component name → its pids, resolved at each run's start
WRK = "wrk"
SOFTIRQ = "softirq"
OTHER = "other"
# More CPU than this used by programs outside the benchmark makes a round's figures suspect.
DISTURBED_ABOVE_CORES = 0.15


@dataclass
class CpuUsage:
    """CPU seconds per component over some wall-clock seconds, summed over runs."""

    seconds: dict[str, float] = field(default_factory=dict)
    wall_seconds: float = 0.0

    def add(self, other: CpuUsage) -> None:
        for name, value in other.seconds.items():
            self.seconds[name] = self.seconds.get(name, 0.0) + value
        self.wall_seconds += other.wall_seconds

    @property
    def disturbed(self) -> bool:
        return self.cores().get(OTHER, 0.0) > DISTURBED_ABOVE_CORES

    def cores(self) -> dict[str, float]:
        if not self.wall_seconds:
            return {}
        return {name: value / self.wall_seconds for name, value in self.seconds.items()}


def processes_named(*names: str) -> list[int]:
    """Pids of every process whose name is one of ``names`` (e.g. every PostgreSQL backend)."""
    return [p.info["pid"] for p in psutil.process_iter(["pid", "name"]) if p.info["name"] in names]


def fleet_components(layout: FleetLayout, **extra: Callable[[], list[int]]) -> Groups:
    """Each service of the bench fleet (its process and children), supervisord, PostgreSQL, Redis and
    RabbitMQ, plus ``extra`` components (name → its pids), looked up afresh for each run (database
    backends come and go)."""
    supervisor = Supervisor(layout)

    def lookup() -> dict[str, list[int]]:
        supervisord_pid = supervisor.pid()
        return {
            **service_processes(supervisor),
            # it copies every line the services log from their pipes into the log files
            "supervisord": [supervisord_pid] if supervisord_pid else [],
            **{name: pids() for name, pids in extra.items()},
            "postgres": processes_named("postgres"),
            "redis": processes_named("redis-server"),
            "rabbitmq": processes_named("beam.smp", "epmd", "erl_child_setup"),
        }

    return lookup


def service_processes(supervisor: Supervisor) -> dict[str, list[int]]:
    """Service name → the pids of its process and its children, for every running program of the fleet."""
    return {name: with_children(info["pid"]) for name, info in supervisor.processes().items() if info.get("pid")}


def with_children(pid: int) -> list[int]:
    try:
        return [pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))]
    except psutil.Error:
        return []


@contextmanager
def measuring(groups: Groups) -> Iterator[CpuUsage]:
    """Fills the yielded :class:`CpuUsage` with what each group (and wrk) used inside the block."""
    usage = CpuUsage()
    before = {name: _cpu_times(pids) for name, pids in groups().items()}
    children_before = _children_seconds()
    machine_before = psutil.cpu_times()
    started, started_at = time.monotonic(), time.time()
    yield usage
    usage.wall_seconds = time.monotonic() - started
    machine_after = psutil.cpu_times()
    for name, pids in groups().items():
        after = _cpu_times(pids)
        earlier = before.get(name, {})
        # a process that ended meanwhile is lost (it shows under OTHER); one that started
        # meanwhile (a new database backend) counts whole
        usage.seconds[name] = sum(
            seconds - earlier[pid] if pid in earlier else seconds
            for pid, seconds in after.items()
            if pid in earlier or _started_after(pid, started_at)
        )
    usage.seconds[WRK] = _children_seconds() - children_before
    usage.seconds[SOFTIRQ] = machine_after.softirq - machine_before.softirq
    busy = _busy_seconds(machine_after) - _busy_seconds(machine_before)
    usage.seconds[OTHER] = max(0.0, busy - sum(usage.seconds.values()))


def _started_after(pid: int, moment: float) -> bool:
    try:
        return psutil.Process(pid).create_time() >= moment
    except psutil.Error:
        return False


def _cpu_times(pids: list[int]) -> dict[int, float]:
    seconds: dict[int, float] = {}
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        seconds[pid] = times.user + times.system
    return seconds


def _busy_seconds(times: Any) -> float:
    # Linux: guest time is already inside user, and steal is time this machine did not get
    return sum(getattr(times, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq"))


def _children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
