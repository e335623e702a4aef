"""What a relay run found: per way, commit → publish and commit → confirm, and CPU per event."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.common.results import RESULTS_DIR, write_results
from benchmarks.common.stats import Summary, ratio
from benchmarks.relay.run import HANDOVER, NOTIFY, WAYS, RelayResult

STAGES = {"publishing": "commit -> publish begins", "confirmed": "commit -> broker confirmed"}


def comparison(result: RelayResult) -> dict[str, float | None]:
    """Hand-over ÷ notify, for each figure: below 1 is better."""

    def p(way: str, until: str, label: str) -> float | None:
        summary = result.latency_ms(way, until)
        return summary[label] if summary else None

    return {
        "publishing_p50": ratio(p(HANDOVER, "publishing", "p50"), p(NOTIFY, "publishing", "p50")),
        "publishing_p99": ratio(p(HANDOVER, "publishing", "p99"), p(NOTIFY, "publishing", "p99")),
        "relay_cpu": ratio(result.cpu_us_per_event(HANDOVER, "relay"), result.cpu_us_per_event(NOTIFY, "relay")),
        "postgres_cpu": ratio(
            result.cpu_us_per_event(HANDOVER, "postgres"), result.cpu_us_per_event(NOTIFY, "postgres")
        ),
    }


def as_dict(result: RelayResult) -> dict[str, Any]:
    def summary(way: str, until: str) -> dict[str, float | int] | None:
        found = result.latency_ms(way, until)
        return found.as_dict() if found else None

    return {
        "benchmark": "relay",
        "started_at": result.started_at.isoformat(timespec="seconds"),
        "wall_seconds": round(result.wall_seconds, 1),
        "machine": result.machine,
        "settings": result.settings.as_dict(),
        "ways": {
            way: {
                "latency_ms": {until: summary(way, until) for until in STAGES},
                "relay_thread_cpu_us_per_event": _rounded(result.cpu_us_per_event(way, "relay")),
                "postgres_cpu_us_per_event": _rounded(result.cpu_us_per_event(way, "postgres")),
                "events": sum(r.measured_events for r in result.of_way(way)),
            }
            for way in WAYS
        },
        "comparison": {key: _rounded(value, 3) for key, value in comparison(result).items()},
        "problems": result.problems,
    }


def write_json(result: RelayResult, directory: Path = RESULTS_DIR) -> Path:
    return write_results("relay", result.started_at, as_dict(result), directory)


def render(result: RelayResult) -> str:
    s = result.settings
    lines = [
        f"Outbox relay benchmark, {result.started_at:%Y-%m-%d %H:%M} UTC: one event per commit at {s.rate}/s,"
        f" the committing loop holding the interpreter {s.busy_ms:g} ms after each commit",
        f"machine: {result.machine['nproc']} CPUs ({result.machine['cpu_model']}); code {result.machine['git_commit']}",
        f"{s.rounds} round(s) of {s.seconds} s per way, alternating; notify = the baseline (a NOTIFY wakes a claiming"
        " pass), hand-over = the commit hands the event to the relay",
    ]
    if s.quick:
        lines.append("QUICK MODE: rounds too short to quote; for a smoke test of the harness only")
    lines += [
        "",
        "| way | from the commit to | events | p50 ms | p90 ms | p99 ms | max ms |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for way in WAYS:
        for until, label in STAGES.items():
            found: Summary | None = result.latency_ms(way, until)
            if found is None:
                lines.append(f"| {way} | {label} | 0 | | | | |")
                continue
            lines.append(
                f"| {way} | {label} | {found.count} | {found['p50']:.2f} | {found['p90']:.2f} | {found['p99']:.2f}"
                f" | {found.maximum:.2f} |"
            )
    lines += ["", "| way | relay thread CPU per event, µs | PostgreSQL CPU per event, µs |", "|---|---:|---:|"]
    for way in WAYS:
        relay, postgres = result.cpu_us_per_event(way, "relay"), result.cpu_us_per_event(way, "postgres")
        lines.append(f"| {way} | {_shown(relay)} | {_shown(postgres)} |")
    c = comparison(result)
    lines += [
        "",
        "hand-over / notify: "
        + ", ".join(
            f"{label} {_shown(c[key], '.2f')}x"
            for key, label in (
                ("publishing_p50", "commit -> publish p50"),
                ("publishing_p99", "p99"),
                ("relay_cpu", "relay thread CPU"),
                ("postgres_cpu", "PostgreSQL CPU"),
            )
        ),
    ]
    if result.problems:
        lines += ["", "Problems:", *(f"  {problem}" for problem in result.problems)]
    return "\n".join(lines)


def _rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _shown(value: float | None, spec: str = ",.0f") -> str:
    return "n/a" if value is None else format(value, spec)
