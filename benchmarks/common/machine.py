"""The machine a benchmark ran on, recorded with its results: CPUs, memory, OS, tools and the code."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any

from benchmarks.common.output import say
from shared.runner.layout import REPO_ROOT


def describe_machine(tools: Mapping[str, list[str]] | None = None) -> dict[str, Any]:
    """CPUs, memory, OS, Python, the code's commit and uncommitted paths, and each tool's version
    (``tools``: name → the command that prints it, e.g. ``{"wrk": ["wrk", "-v"]}``)."""
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "memory_gib": _memory_gib(),
        "kernel": platform.release(),
        "os": _os_release(),
        "python": platform.python_version(),
        "host_speed": host_speed(),
        **{name: _version(command) for name, command in (tools or {}).items()},
        "git_commit": _version(["git", "-C", str(REPO_ROOT), "describe", "--always", "--dirty"]),
        "uncommitted": _uncommitted_paths(),
    }


def announce_machine(tools: Mapping[str, list[str]] | None = None, *, shared_by: str | None = None) -> dict[str, Any]:
    """:func:`describe_machine`, and a line on the terminal saying what the run has (and who shares the CPUs)."""
    machine = describe_machine(tools)
    sharing = f" shared by {shared_by}" if shared_by else ""
    say(f"{machine['nproc']} CPUs ({machine['cpu_model']}){sharing}; {describe_host_speed(machine)}")
    return machine


LOOP_ITERATIONS = 10_000_000


def host_speed(tries: int = 5) -> dict[str, float | None]:
    """How fast this host runs Python right now, so runs from different hours can be compared: a fixed
    pure-Python loop timed ``tries`` times (a shared virtual machine's speed drifts by 2x between hours),
    the interpreter that ran it (and the fleet: the venv's; pyenv's build of 3.11 took a third longer than
    Debian's on the same host, docs/performance.md), and the share of CPU time the hypervisor took since
    boot (steal)."""
    timings = [_time_the_loop() for _ in range(tries)]
    return {
        "interpreter": f"Python {platform.python_version()} ({os.path.realpath(sys.executable)})",
        "loop_iterations": LOOP_ITERATIONS,
        "loop_ms_min": round(min(timings)),
        "loop_ms_median": round(statistics.median(timings)),
        "loop_ms_max": round(max(timings)),
        "steal_percent_since_boot": _steal_percent(),
    }


def describe_host_speed(machine: Mapping[str, Any]) -> str:
    """One line on how fast the host was: compare figures only between runs whose loop took about as long."""
    speed = machine.get("host_speed") or {}
    if not speed:
        return "host speed: not measured"
    interpreter = f" on {speed['interpreter']}" if speed.get("interpreter") else ""  # results from before it
    return (
        f"host speed: {speed['loop_iterations']:,} pure-Python additions took {speed['loop_ms_min']}"
        f"-{speed['loop_ms_max']} ms (median {speed['loop_ms_median']}){interpreter};"
        f" steal {speed['steal_percent_since_boot']} % of CPU time since boot"
    )


def _time_the_loop() -> float:
    started = time.perf_counter()
    total = 0
    for number in range(LOOP_ITERATIONS):
        total += number
    return (time.perf_counter() - started) * 1000


def _steal_percent() -> float | None:
    try:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    steal = fields[7] if len(fields) > 7 else 0
    return round(100 * steal / sum(fields), 1) if sum(fields) else None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _os_release() -> str:
    try:
        return platform.freedesktop_os_release().get("PRETTY_NAME", "unknown")
    except OSError:
        return "unknown"


def _uncommitted_paths() -> list[str]:
    """What the measured code has that its commit has not (e.g. a gateway still being written)."""
    try:
        finished = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=normal"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError:
        return []
    return [line[3:] for line in finished.stdout.splitlines() if line[3:] and not line[3:].startswith("var/")]


def _version(command: list[str]) -> str:
    try:
        finished = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "unknown"
    output = (finished.stdout + finished.stderr).strip().splitlines()
    return output[0].strip() if output else "unknown"
