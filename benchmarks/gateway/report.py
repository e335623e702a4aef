"""What a run found: per target figures, the ratios and added latencies, as a table and as JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.common.cpu import OTHER, CpuUsage
from benchmarks.common.results import RESULTS_DIR, write_results
from benchmarks.gateway.settings import BenchSettings
from benchmarks.gateway.wrk import WrkResult

# Targets from the issue; reported against, never asserted.
THROUGHPUT_VS_NGINX_TARGET = 0.8
THROUGHPUT_VS_NGINX_STRETCH = 0.9
PACED_P99_ADDED_TARGET_MS = 5.0

DIRECT, NGINX, GATEWAY = "direct", "nginx", "gateway"
THROUGHPUT, PACED = "throughput", "paced"


@dataclass
class PhaseResult:
    """One phase (throughput or paced) of one target: its rounds and the CPU they used."""

    rounds: list[WrkResult] = field(default_factory=list)
    cpu: CpuUsage = field(default_factory=CpuUsage)
    discarded: int = 0  # rounds measured again because other programs disturbed them

    @property
    def combined(self) -> WrkResult | None:
        return WrkResult.combine(self.rounds) if self.rounds else None

    def as_dict(self) -> dict[str, Any] | None:
        combined = self.combined
        if combined is None:
            return None
        return {
            **combined.as_dict(),
            "cpu_cores": {name: round(cores, 3) for name, cores in self.cpu.cores().items()},
            "rounds": [run.as_dict() for run in self.rounds],
            "discarded_rounds": self.discarded,
        }


@dataclass
class TargetResult:
    key: str  # DIRECT, NGINX or GATEWAY
    label: str
    url: str | None
    phases: dict[str, PhaseResult] = field(default_factory=lambda: {THROUGHPUT: PhaseResult(), PACED: PhaseResult()})
    problems: list[str] = field(default_factory=list)  # why it was not measured, or why figures are suspect

    @property
    def throughput(self) -> WrkResult | None:
        return self.phases[THROUGHPUT].combined

    @property
    def paced(self) -> WrkResult | None:
        return self.phases[PACED].combined

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "url": self.url,
            **{phase: result.as_dict() for phase, result in self.phases.items()},
            "problems": list(self.problems),
        }


@dataclass(frozen=True)
class Comparison:
    """(c) against (b) and (a): throughput ratios, and latency added (difference of percentiles)."""

    gateway_vs_nginx: float | None
    gateway_vs_direct: float | None
    nginx_vs_direct: float | None
    added_ms: dict[str, dict[str, float | None]]  # "nginx"/"gateway" → "throughput p50", ... → ms

    @classmethod
    def of(cls, results: dict[str, TargetResult]) -> Comparison:
        def rps(key: str) -> float | None:
            result = results.get(key)
            return result.throughput.requests_per_second if result and result.throughput else None

        def ratio(over: str, under: str) -> float | None:
            top, bottom = rps(over), rps(under)
            return top / bottom if top is not None and bottom else None

        def added(key: str, run: str, percentile: str) -> float | None:
            proxied, direct = results.get(key), results.get(DIRECT)
            mine = getattr(proxied, run, None) if proxied else None
            base = getattr(direct, run, None) if direct else None
            return mine.latency_ms[percentile] - base.latency_ms[percentile] if mine and base else None

        added_ms = {
            key: {f"{run} {p}": added(key, run, p) for run in ("throughput", "paced") for p in ("p50", "p99")}
            for key in (NGINX, GATEWAY)
        }
        return cls(ratio(GATEWAY, NGINX), ratio(GATEWAY, DIRECT), ratio(NGINX, DIRECT), added_ms)

    def as_dict(self) -> dict[str, Any]:
        return {
            "throughput_gateway_vs_nginx": _round(self.gateway_vs_nginx, 3),
            "throughput_gateway_vs_direct": _round(self.gateway_vs_direct, 3),
            "throughput_nginx_vs_direct": _round(self.nginx_vs_direct, 3),
            "added_latency_ms_vs_direct": {
                key: {name: _round(value, 3) for name, value in values.items()} for key, values in self.added_ms.items()
            },
            "targets": {
                "throughput_gateway_vs_nginx": THROUGHPUT_VS_NGINX_TARGET,
                "throughput_gateway_vs_nginx_stretch": THROUGHPUT_VS_NGINX_STRETCH,
                "paced_p99_added_ms": PACED_P99_ADDED_TARGET_MS,
            },
        }


@dataclass
class BenchReport:
    started_at: datetime
    settings: BenchSettings
    machine: dict[str, Any]
    results: dict[str, TargetResult]
    commands: dict[str, list[str]] = field(default_factory=dict)  # tokens redacted
    wall_seconds: float = 0.0

    @property
    def comparison(self) -> Comparison:
        return Comparison.of(self.results)

    def as_dict(self) -> dict[str, Any]:
        return {
            "benchmark": "gateway",
            "endpoint": "GET /api/v1/users/me (bearer token; one row read from user-service's database)",
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "wall_seconds": round(self.wall_seconds, 1),
            "machine": self.machine,
            "settings": self.settings.as_dict(),
            "commands": self.commands,
            "results": {key: result.as_dict() for key, result in self.results.items()},
            "comparison": self.comparison.as_dict(),
            "disturbed": self._disturbances(),  # phases during which other programs took CPU
        }

    def write_json(self, directory: Path = RESULTS_DIR) -> Path:
        return write_results("gateway", self.started_at, self.as_dict(), directory)

    def render(self) -> str:
        s = self.settings
        lines = [
            f"Gateway benchmark, {self.started_at:%Y-%m-%d %H:%M} UTC, GET /api/v1/users/me with a bearer token",
            f"machine: {self.machine['nproc']} CPUs ({self.machine['cpu_model']}), {self.machine['memory_gib']} GiB;"
            " wrk, nginx, the gateway, user-service, PostgreSQL and Redis all share these CPUs",
            f"code: {self.machine['git_commit']}"
            + (
                f", plus uncommitted changes in {len(self.machine['uncommitted'])} path(s) (listed in the JSON)"
                if self.machine["uncommitted"]
                else ""
            ),
        ]
        if s.quick:
            lines.append("QUICK MODE: phases too short to quote; for a smoke test of the harness only")
        lines += [
            "",
            f"Throughput: wrk -t{s.threads} -c{s.connections} -d{s.duration_seconds}s, {s.rounds} interleaved"
            f" round(s) per target after a {s.warmup_seconds}s warm-up; req/s pooled, percentiles the median"
            " of the rounds",
            "",
            "| target | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | errors |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *(self._row(result, result.throughput) for result in self.results.values()),
            "",
            f"Paced: {s.paced_rate} req/s with lua/paced.lua, wrk -t{s.threads} -c{s.paced_connections}"
            f" -d{s.paced_duration_seconds}s, {s.rounds} round(s) per target likewise",
            "",
            "| target | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | errors |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *(self._row(result, result.paced) for result in self.results.values()),
            "",
            *self._cpu_table(),
            "",
            *self._summary(),
        ]
        problems = [f"  {result.label}: {problem}" for result in self.results.values() for problem in result.problems]
        problems += [f"  {warning}" for warning in self._disturbances()]
        again = [
            f"{result.label} {phase} {phase_result.discarded}"
            for result in self.results.values()
            for phase, phase_result in result.phases.items()
            if phase_result.discarded
        ]
        if again:
            lines += ["", "Rounds measured again because other programs disturbed them: " + ", ".join(again)]
        if problems:
            lines += ["", "Problems:", *problems]
        return "\n".join(lines)

    @staticmethod
    def _row(result: TargetResult, run: WrkResult | None) -> str:
        if run is None:
            return f"| {result.label} | not measured | | | | | |"
        latency = run.latency_ms
        return (
            f"| {result.label} | {run.requests_per_second:,.0f} | {latency['p50']:.2f} | {latency['p90']:.2f}"
            f" | {latency['p99']:.2f} | {latency['p99.9']:.2f} | {run.error_count} |"
        )

    def _cpu_table(self) -> list[str]:
        measured = [
            (result, phase)
            for phase in (THROUGHPUT, PACED)
            for result in self.results.values()
            if result.phases[phase].cpu.wall_seconds
        ]
        if not measured:
            return []
        components: list[str] = []  # services, nginx, servers, then wrk: the order they were looked up in
        for result, phase in measured:
            components += [name for name in result.phases[phase].cpu.seconds if name not in components]
        lines = [
            f"CPU used during the measured rounds, in cores (of {self.machine['nproc']}):",
            "",
            "| target | phase | " + " | ".join(components) + " | total |",
            "|---|---|" + "---:|" * (len(components) + 1),
        ]
        for result, phase in measured:
            cores = result.phases[phase].cpu.cores()
            cells = " | ".join(f"{cores[name]:.2f}" if name in cores else "" for name in components)
            lines.append(f"| {result.label} | {phase} | {cells} | {sum(cores.values()):.2f} |")
        return lines

    def _disturbances(self) -> list[str]:
        """A phase during which programs outside the benchmark took a noticeable share of the CPU."""
        warnings = []
        for result in self.results.values():
            for phase, phase_result in result.phases.items():
                if phase_result.cpu.disturbed:
                    other = phase_result.cpu.cores()[OTHER]
                    warnings.append(
                        f"{result.label}, {phase}: other programs used {other:.2f} cores meanwhile;"
                        " its figures are disturbed (run again on a quiet machine)"
                    )
        return warnings

    def _summary(self) -> list[str]:
        c = self.comparison
        gateway_added = c.added_ms[GATEWAY]
        nginx_added = c.added_ms[NGINX]
        lines = [
            f"(b)/(a) nginx vs direct throughput:   {_fmt_ratio(c.nginx_vs_direct)}",
            f"(c)/(a) gateway vs direct throughput: {_fmt_ratio(c.gateway_vs_direct)}",
            f"(c)/(b) gateway vs nginx throughput:  {_fmt_ratio(c.gateway_vs_nginx)}"
            f"   (target >= {THROUGHPUT_VS_NGINX_TARGET}, stretch {THROUGHPUT_VS_NGINX_STRETCH}:"
            f" {_verdict(c.gateway_vs_nginx, THROUGHPUT_VS_NGINX_TARGET, THROUGHPUT_VS_NGINX_STRETCH)})",
            "added latency vs direct (difference of percentiles):",
            f"  nginx    throughput run p50 {_fmt_ms(nginx_added['throughput p50'])}, p99"
            f" {_fmt_ms(nginx_added['throughput p99'])};  paced p50 {_fmt_ms(nginx_added['paced p50'])},"
            f" p99 {_fmt_ms(nginx_added['paced p99'])}",
            f"  gateway  throughput run p50 {_fmt_ms(gateway_added['throughput p50'])}, p99"
            f" {_fmt_ms(gateway_added['throughput p99'])};  paced p50 {_fmt_ms(gateway_added['paced p50'])},"
            f" p99 {_fmt_ms(gateway_added['paced p99'])}",
        ]
        paced_p99 = gateway_added["paced p99"]
        if paced_p99 is None:
            verdict = "not measured"
        else:
            verdict = "met" if paced_p99 <= PACED_P99_ADDED_TARGET_MS else "missed"
        lines.append(
            f"gateway p99 added at ~{self.settings.paced_rate} req/s: {_fmt_ms(paced_p99)}"
            f"   (target <= {PACED_P99_ADDED_TARGET_MS:g} ms: {verdict})"
        )
        return lines


def _round(value: float | None, digits: int) -> float | None:
    return round(value, digits) if value is not None else None


def _fmt_ratio(value: float | None) -> str:
    return f"{value:.2f}x" if value is not None else "n/a"


def _fmt_ms(value: float | None) -> str:
    return f"{value:+.2f} ms" if value is not None else "n/a"


def _verdict(value: float | None, target: float, stretch: float) -> str:
    if value is None:
        return "not measured"
    if value >= stretch:
        return "stretch met"
    return "met" if value >= target else "missed"
