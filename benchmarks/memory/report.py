"""What a memory run found: each service's RSS idle, at its peak under load, and after, as a table and JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.common.results import RESULTS_DIR, write_results
from benchmarks.memory.run import MemoryResult
from benchmarks.memory.sampling import MIB
from shared.fleet import FLEET


def rows(result: MemoryResult) -> list[tuple[str, float | None, float | None, float | None]]:
    """(service, idle MiB, peak under load MiB, after MiB) in the fleet's order, then a total."""
    idle, peak, after = result.idle.median(), result.load.peak(), result.after.median()
    names = [spec.name for spec in FLEET if spec.name in idle or spec.name in peak]
    names += sorted((set(idle) | set(peak)) - set(names))

    def mib(values: dict[str, Any], name: str) -> float | None:
        return values[name] / MIB if name in values else None

    table = [(name, mib(idle, name), mib(peak, name), mib(after, name)) for name in names]

    def total(column: int) -> float | None:
        values = [row[column] for row in table]
        return None if any(value is None for value in values) else sum(v for v in values if v is not None)

    return [*table, ("total", total(1), total(2), total(3))]


def as_dict(result: MemoryResult) -> dict[str, Any]:
    return {
        "benchmark": "memory",
        "started_at": result.started_at.isoformat(timespec="seconds"),
        "wall_seconds": round(result.wall_seconds, 1),
        "machine": result.machine,
        "settings": result.settings.as_dict(),
        "rss_mib": {
            name: {"idle": _round(idle), "peak_under_load": _round(peak), "after_load": _round(after)}
            for name, idle, peak, after in rows(result)
        },
        "samples": {"idle": result.idle.count, "load": result.load.count, "after": result.after.count},
        "load_seconds": round(result.load_seconds, 1),
        "answers": {kind: {str(k): v for k, v in sorted(c.items())} for kind, c in result.answers.items()},
        "problems": result.problems,
    }


def write_json(result: MemoryResult, directory: Path = RESULTS_DIR) -> Path:
    return write_results("memory", result.started_at, as_dict(result), directory)


def render(result: MemoryResult) -> str:
    s = result.settings
    lines = [
        f"Memory benchmark, {result.started_at:%Y-%m-%d %H:%M} UTC: resident memory (RSS, process and children) per service",
        f"machine: {result.machine['nproc']} CPUs, {result.machine['memory_gib']} GiB; code {result.machine['git_commit']}",
        f"idle: median of {result.idle.count} samples after {s.settle_seconds}s settling, before any request;"
        f" under load: the peak of {result.load.count} samples over {result.load_seconds:.0f}s"
        f" (seeding, then {s.completion_rate} completions/s + {s.read_rate} reads/s through the gateway for"
        f" {s.load_seconds}s); after: median of {result.after.count} samples once every event was consumed",
    ]
    if s.quick:
        lines.append("QUICK MODE: a short load; for a smoke test of the harness only")
    lines += [
        "",
        "| service | idle MiB | peak under load MiB | after load MiB | peak - idle MiB |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, idle, peak, after in rows(result):
        growth = None if idle is None or peak is None else peak - idle
        label = f"**{name}**" if name == "total" else name
        lines.append(f"| {label} | {_fmt(idle)} | {_fmt(peak)} | {_fmt(after)} | {_fmt(growth, signed=True)} |")
    if result.answers:
        lines += [
            "",
            "Requests during the load: " + "; ".join(f"{kind} {sum(c.values())}" for kind, c in result.answers.items()),
        ]
    if result.problems:
        lines += ["", "Problems:", *(f"  {problem}" for problem in result.problems)]
    return "\n".join(lines)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _fmt(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return ""
    return f"{value:+.1f}" if signed else f"{value:.1f}"
