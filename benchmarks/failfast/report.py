"""What a fail-fast run found: latency per phase, and p95 with the breaker open ÷ p95 while timing out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.common.results import RESULTS_DIR, write_results
from benchmarks.common.stats import ratio
from benchmarks.failfast.run import ENDPOINT, HANGING, HEALTHY, OPEN, FailFastResult


def p95(result: FailFastResult, key: str) -> float | None:
    phase = result.phases.get(key)
    summary = phase.summary if phase else None
    return summary["p95"] if summary else None


def comparison(result: FailFastResult) -> dict[str, float | None]:
    return {
        "p95_open_vs_hanging": ratio(p95(result, OPEN), p95(result, HANGING)),
        "p95_open_vs_healthy": ratio(p95(result, OPEN), p95(result, HEALTHY)),
    }


def as_dict(result: FailFastResult) -> dict[str, Any]:
    return {
        "benchmark": "failfast",
        "endpoint": f"GET {ENDPOINT} through the gateway; lesson-service behind a TCP proxy",
        "started_at": result.started_at.isoformat(timespec="seconds"),
        "wall_seconds": round(result.wall_seconds, 1),
        "machine": result.machine,
        "settings": result.settings.as_dict(),
        "gateway_settings": result.gateway_settings,
        "phases": {key: phase.as_dict() for key, phase in result.phases.items()},
        "breaker_after_hang": result.breaker_after_hang,
        "recovered_after_seconds": None
        if result.recovered_after_seconds is None
        else round(result.recovered_after_seconds, 2),
        "comparison": {key: None if v is None else round(v, 6) for key, v in comparison(result).items()},
        "problems": result.problems,
    }


def write_json(result: FailFastResult, directory: Path = RESULTS_DIR) -> Path:
    return write_results("failfast", result.started_at, as_dict(result), directory)


def render(result: FailFastResult) -> str:
    s = result.settings
    timeout = f"{s.timeout_seconds:g} s (set for the run)" if s.timeout_seconds else "the gateway's default"
    lines = [
        f"Fail-fast benchmark, {result.started_at:%Y-%m-%d %H:%M} UTC: GET {ENDPOINT} through the gateway,"
        " lesson-service behind a TCP proxy",
        f"machine: {result.machine['nproc']} CPUs ({result.machine['cpu_model']}); code {result.machine['git_commit']}",
        f"upstream timeout: {timeout}; breaker: the gateway's defaults",
    ]
    if s.quick:
        lines.append("QUICK MODE: phases too short to quote; for a smoke test of the harness only")
    lines += [
        "",
        "| phase | requests | answers | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for phase in result.phases.values():
        summary = phase.summary
        answers = ", ".join(f"{count}x {status or 'none'}" for status, count in sorted(phase.statuses.items()))
        if summary is None:
            lines.append(f"| {phase.label} | 0 | | | | | |")
            continue
        lines.append(
            f"| {phase.label} | {summary.count} | {answers} | {summary['p50']:,.2f} | {summary['p95']:,.2f}"
            f" | {summary['p99']:,.2f} | {summary.maximum:,.2f} |"
        )
    c = comparison(result)
    open_vs_hanging = c["p95_open_vs_hanging"]
    lines += [
        "",
        f"breaker after the hanging phase: {result.breaker_after_hang}",
        "p95 breaker open / p95 upstream timing out: "
        + ("n/a" if open_vs_hanging is None else f"{open_vs_hanging:.6f} (1 : {1 / open_vs_hanging:,.0f})"),
        "p95 breaker open / p95 healthy: "
        + ("n/a" if c["p95_open_vs_healthy"] is None else f"{c['p95_open_vs_healthy']:.2f}x"),
        "answering again after the proxy was restored: "
        + (
            "not within the limit"
            if result.recovered_after_seconds is None
            else f"{result.recovered_after_seconds:.1f} s"
        ),
    ]
    if result.problems:
        lines += ["", "Problems:", *(f"  {problem}" for problem in result.problems)]
    return "\n".join(lines)
