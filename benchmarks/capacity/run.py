"""One capacity run: the whole fleet up, the world seeded and its tokens minted, then paced steps of the mix.

Under the fleet lock: wait until the event path is idle, warm up at the start rate (discarded),
then step the offered rate as :class:`~benchmarks.capacity.stepping.RateSearch` says; after each step,
wait (bounded) until the events its writes caused are consumed, so the next step starts from an
idle fleet. The warm-up and the steps together measure at most the settings' budget.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from benchmarks.capacity import workload
from benchmarks.capacity.report import CapacityReport, StepRecord
from benchmarks.capacity.settings import CapacitySettings
from benchmarks.capacity.stepping import Criteria, RateSearch
from benchmarks.capacity.tokens import mint_tokens, token_issuer
from benchmarks.common import cpu
from benchmarks.common.fleet import ALL_SERVICES, running_bench_fleet, say
from benchmarks.common.lock import fleet_lock
from benchmarks.common.quiet import NotQuiet, wait_until_quiet
from shared.fleet import by_name
from shared.runner.layout import VAR_DIR
from shared.seeding import build_world, seed_fleet

STATE_DIR = VAR_DIR / "bench-capacity"
USERS_FILE = STATE_DIR / "users.tsv"  # holds tokens: removed at the end of the run


class CapacityError(RuntimeError):
    """The run cannot go on (the workload fails even at the warm-up rate, wrk cannot run)."""


def run_benchmark(settings: CapacitySettings, *, wrk: str, machine: dict[str, Any]) -> CapacityReport:
    started = time.monotonic()
    report = CapacityReport(datetime.now(UTC), settings, machine)
    with running_bench_fleet(ALL_SERVICES) as prepared:
        layout = prepared.layout
        world = build_world(settings.tutors, settings.students_per_tutor, as_of=datetime.now(UTC))
        report.world = world.counts()
        database_urls = {
            name: env["DATABASE_URL"] for name, env in prepared.environments.items() if "DATABASE_URL" in env
        }
        seeding_started = time.monotonic()
        report.seeded = asyncio.run(seed_fleet(world, database_urls, say=say))
        report.seed_seconds = time.monotonic() - seeding_started
        issuer = token_issuer(prepared.environments["user-service"])
        steps = Steps(
            settings=settings,
            wrk=wrk,
            url=layout.base_url(by_name("api-gateway")),
            as_of=world.as_of,
            components=cpu.fleet_components(layout),
            database_urls=database_urls,
            rabbit_url=prepared.rabbit_url,
            report=report,
        )
        try:
            with fleet_lock():  # the tokens are minted once it is held: waiting for it may take long
                tokens = mint_tokens(world, issuer, now=datetime.now(UTC))
                report.users = workload.write_users_file(USERS_FILE, world, tokens)
                say(f"{len(tokens)} tokens minted; users file {USERS_FILE}")
                steps.run()
        finally:
            USERS_FILE.unlink(missing_ok=True)
    report.wall_seconds = time.monotonic() - started
    return report


@dataclass
class Steps:
    settings: CapacitySettings
    wrk: str
    url: str
    as_of: datetime
    components: cpu.Groups
    database_urls: Mapping[str, str]
    rabbit_url: str
    report: CapacityReport
    runs: int = field(default=0)  # wrk runs so far: each schedules its lessons in a window of its own

    def run(self) -> None:
        s = self.settings
        criteria = Criteria(p99_below_ms=s.p99_below_ms)
        search = RateSearch(
            start=s.start_rate,
            max_steps=s.max_steps,
            growth=1 + s.growth_percent / 100,
            resolution=s.resolution_percent / 100,
        )
        self._drain("before measuring")
        say(f"warm-up: {s.start_rate} req/s for {s.warmup_seconds}s (discarded)")
        warmup = self._step(s.start_rate, s.warmup_seconds, criteria)
        self.report.warmup = warmup
        if warmup.mix.non_2xx or warmup.wrk.error_count:
            raise CapacityError(
                f"the workload fails at {s.start_rate} req/s already: statuses {warmup.mix.statuses},"
                f" errors {warmup.wrk.errors}, first bodies {warmup.mix.samples}"
            )
        warmup.drain_seconds = self._drain("after the warm-up")
        history: list[tuple[int, bool]] = []
        retries = s.retries
        while self.report.measured_seconds + s.step_seconds <= s.budget_seconds:
            rate = search.next_rate(history)
            if rate is None:
                break
            say(f"step {len(history) + 1}: {rate} req/s for {s.step_seconds}s")
            record = self._step(rate, s.step_seconds, criteria)
            say(
                f"  {record.wrk.requests_per_second:.0f} req/s sent, p99 {record.wrk.latency_ms['p99']:.0f} ms,"
                f" non-2xx {record.mix.non_2xx}: " + ("held" if record.held else "; ".join(record.failures))
            )
            record.drain_seconds = self._drain(f"after {rate} req/s")
            if not record.held and record.disturbed and retries > 0:
                retries -= 1
                self.report.discarded.append(record)
                say(f"  other programs used {record.cpu_cores.get(cpu.OTHER, 0):.2f} cores meanwhile: measuring again")
                continue
            self.report.steps.append(record)
            history.append((rate, record.held))
        self.report.best_rate = RateSearch.best(history)

    def _step(self, rate: int, seconds: int, criteria: Criteria) -> StepRecord:
        command = workload.wrk_command(
            self.wrk,
            self.url,
            USERS_FILE,
            rate=rate,
            seconds=seconds,
            threads=self.settings.threads,
            slot_base=workload.slot_base(self.as_of, self.runs),
        )
        self.runs += 1
        self.report.command = command
        with cpu.measuring(self.components) as usage:
            output = _run_wrk(command, seconds)
        wrk_result, mix = workload.parse_output(output)
        return StepRecord(
            rate=rate,
            seconds=seconds,
            wrk=wrk_result,
            mix=mix,
            cpu_cores=usage.cores(),
            disturbed=usage.disturbed,
            failures=criteria.failures(rate, wrk_result, mix.non_2xx),
        )

    def _drain(self, when: str) -> float | None:
        """Seconds until the event path was idle; None when it was not within the timeout."""
        try:
            waited = asyncio.run(
                wait_until_quiet(self.database_urls, self.rabbit_url, limit_seconds=self.settings.drain_timeout_seconds)
            )
        except NotQuiet as error:
            say(f"{when}: {error}")
            self.report.problems.append(f"{when}: {error}")
            return None
        if waited >= 1:
            say(f"{when}: the event path went quiet after {waited:.0f}s")
        return waited


def _run_wrk(command: list[str], seconds: int) -> str:
    try:
        finished = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise CapacityError(f"wrk did not finish within {seconds + 60}s") from error
    if finished.returncode != 0:
        tail = "\n".join((finished.stderr + finished.stdout).rstrip().splitlines()[-15:])
        raise CapacityError(f"wrk exited {finished.returncode}:\n{tail}")
    return finished.stdout
