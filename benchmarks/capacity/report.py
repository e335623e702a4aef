"""What a capacity run found: each step's figures and verdict, the highest rate that held, as a table and JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.capacity.settings import CapacitySettings
from benchmarks.capacity.workload import MIX, MixResult, mix_table
from benchmarks.common.cpu import OTHER, SOFTIRQ, WRK
from benchmarks.common.results import RESULTS_DIR, write_results
from benchmarks.gateway.wrk import WrkResult

CPU_COLUMNS_SHOWN = 6  # the busiest components of a step


@dataclass
class StepRecord:
    rate: int  # offered, req/s
    seconds: int
    wrk: WrkResult
    mix: MixResult
    cpu_cores: dict[str, float]
    failures: list[str]  # empty: the step held
    disturbed: bool = False  # other programs took more CPU than benchmarks.common.cpu allows meanwhile
    drain_seconds: float | None = None  # until its events were consumed; None: not within the timeout

    @property
    def held(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict[str, Any]:
        return {
            "offered_rate": self.rate,
            "seconds": self.seconds,
            "held": self.held,
            "failures": list(self.failures),
            "disturbed": self.disturbed,
            **self.wrk.as_dict(),
            **self.mix.as_dict(),
            "cpu_cores": {name: round(cores, 3) for name, cores in sorted(self.cpu_cores.items())},
            "drain_seconds": None if self.drain_seconds is None else round(self.drain_seconds, 1),
        }


@dataclass
class CapacityReport:
    started_at: datetime
    settings: CapacitySettings
    machine: dict[str, Any]
    world: dict[str, int] = field(default_factory=dict)
    seeded: dict[str, dict[str, int]] = field(default_factory=dict)
    seed_seconds: float = 0.0
    users: dict[str, int] = field(default_factory=dict)  # users file lines per role
    warmup: StepRecord | None = None
    steps: list[StepRecord] = field(default_factory=list)
    discarded: list[StepRecord] = field(default_factory=list)  # failed while other programs took CPU: run again
    best_rate: int | None = None
    command: list[str] = field(default_factory=list)  # the last wrk command (tokens are in the users file)
    problems: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def measured_seconds(self) -> int:
        runs = [*([self.warmup] if self.warmup else []), *self.steps, *self.discarded]
        return sum(step.seconds for step in runs)

    def as_dict(self) -> dict[str, Any]:
        return {
            "benchmark": "capacity",
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "wall_seconds": round(self.wall_seconds, 1),
            "measured_seconds": self.measured_seconds,
            "machine": self.machine,
            "settings": self.settings.as_dict(),
            "world": self.world,
            "seeded_rows": self.seeded,
            "seed_seconds": round(self.seed_seconds, 1),
            "users": self.users,
            "mix": {
                op.name: {"weight": op.weight, "role": op.role, "write": op.write, "request": op.request} for op in MIX
            },
            "command": self.command,
            "warmup": self.warmup.as_dict() if self.warmup else None,
            "steps": [step.as_dict() for step in self.steps],
            "discarded_steps": [step.as_dict() for step in self.discarded],
            "highest_rate_held": self.best_rate,
            "criteria": {"p99_below_ms": self.settings.p99_below_ms, "errors": 0, "non_2xx": 0},
            "problems": list(self.problems),
        }

    def write_json(self, directory: Path = RESULTS_DIR) -> Path:
        return write_results("capacity", self.started_at, self.as_dict(), directory)

    def render(self) -> str:
        s = self.settings
        world = ", ".join(f"{count:,} {name}" for name, count in self.world.items())
        lines = [
            f"Fleet capacity, {self.started_at:%Y-%m-%d %H:%M} UTC: a mixed read/write workload through the gateway",
            f"machine: {self.machine.get('nproc')} CPUs ({self.machine.get('cpu_model')}),"
            f" {self.machine.get('memory_gib')} GiB, shared by wrk, the nine services, PostgreSQL, RabbitMQ and Redis",
            f"code: {self.machine.get('git_commit')}",
            f"world (seeded in {self.seed_seconds:.0f}s, not through the API): {world}",
        ]
        if s.quick:
            lines.append("QUICK MODE: a small world and short steps; for a smoke test of the harness only")
        lines += [
            "",
            "Mix (share of requests; each as a random seeded user of that role):",
            "",
            "| operation | request | share |",
            "|---|---|---:|",
            mix_table(),
            "",
            f"Steps: paced wrk -t{s.threads}, {s.step_seconds}s each after a {s.warmup_seconds}s warm-up at"
            f" {s.start_rate} req/s; holds when p99 < {s.p99_below_ms} ms, no error, no non-2xx answer and"
            f" >= 95% of the offered rate sent. Measured {self.measured_seconds}s in all (budget {s.budget_seconds}s).",
            "",
            "| offered req/s | sent req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | non-2xx | socket errors"
            " | other CPU | drained in | verdict |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
            *(self._row(step) for step in self.steps),
            "",
            *self._discarded(),
            *self._cpu_table(),
            "",
            self._verdict(),
        ]
        if self.problems:
            lines += ["", "Problems:", *(f"  {problem}" for problem in self.problems)]
        return "\n".join(lines)

    def _verdict(self) -> str:
        s = self.settings
        if self.best_rate is None:
            return f"No step held (the first at {s.start_rate} req/s already failed)"
        times = sum(step.rate == self.best_rate for step in self.steps)
        line = f"Highest rate held: {self.best_rate} req/s (p99 < {s.p99_below_ms} ms, 0 errors"
        line += f", in each of its {times} steps)" if times > 1 else ")"
        if all(step.held for step in self.steps):
            line += "; no step failed before the steps ran out, so the capacity is higher than this"
        return line

    @staticmethod
    def _row(step: StepRecord) -> str:
        latency = step.wrk.latency_ms
        socket = step.wrk.error_count - step.wrk.errors.get("status", 0)
        drained = "not in time" if step.drain_seconds is None else f"{step.drain_seconds:.0f}s"
        verdict = "held" if step.held else "failed: " + "; ".join(step.failures)
        return (
            f"| {step.rate} | {step.wrk.requests_per_second:.0f} | {latency['p50']:.1f} | {latency['p90']:.1f}"
            f" | {latency['p99']:.1f} | {latency['p99.9']:.1f} | {step.mix.non_2xx} | {socket}"
            f" | {step.cpu_cores.get(OTHER, 0.0):.2f} | {drained} | {verdict} |"
        )

    def _discarded(self) -> list[str]:
        if not self.discarded:
            return []
        runs = [
            f"{step.rate} req/s (p99 {step.wrk.latency_ms['p99']:.0f} ms, other programs"
            f" {step.cpu_cores.get(OTHER, 0.0):.2f} cores)"
            for step in self.discarded
        ]
        return ["Failed while other programs took CPU, measured again: " + "; ".join(runs), ""]

    def _cpu_table(self) -> list[str]:
        """Cores used per component in the best step and the first one above it that failed."""
        shown = [step for step in self.steps if step.rate == self.best_rate][:1]
        shown += [step for step in self.steps if not step.held and (self.best_rate is None or step.rate > self.best_rate)][:1]  # fmt: skip
        if not shown:
            return []
        totals: dict[str, float] = {}
        for step in shown:
            for name, cores in step.cpu_cores.items():
                totals[name] = max(totals.get(name, 0.0), cores)
        names = sorted((n for n in totals if n not in (OTHER, SOFTIRQ, WRK)), key=lambda n: -totals[n])
        names = [*names[:CPU_COLUMNS_SHOWN], WRK, SOFTIRQ, OTHER]
        lines = [
            f"CPU (cores used on average during the step; the machine has {self.machine.get('nproc')}):",
            "",
            "| step | " + " | ".join(names) + " | total |",
            "|---|" + "---:|" * (len(names) + 1),
        ]
        for step in shown:
            cores = step.cpu_cores
            lines.append(
                f"| {step.rate} req/s | "
                + " | ".join(f"{cores.get(name, 0.0):.2f}" for name in names)
                + f" | {sum(cores.values()):.2f} |"
            )
        return lines
