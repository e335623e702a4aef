"""One benchmark run: fleet and nginx up, a user and its token, wrk against each target, all torn down.

The same endpoint is measured three ways in one run with the same wrk settings:
(a) straight to user-service, (b) through nginx, (c) through the gateway. The
throughput phase saturates each target; the paced phase then drives each at a
constant rate to compare latency where nothing is saturated. In both, every target
is warmed up once and then measured in interleaved rounds.
"""

from __future__ import annotations

import secrets
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from benchmarks.common import cpu
from benchmarks.common.fleet import running_bench_fleet, say
from benchmarks.common.lock import fleet_lock
from benchmarks.gateway import gateway, nginx
from benchmarks.gateway.report import DIRECT, GATEWAY, NGINX, PACED, THROUGHPUT, BenchReport, TargetResult
from benchmarks.gateway.settings import BenchSettings
from benchmarks.gateway.wrk import WrkError, WrkResult, WrkRunner
from shared.fleet import by_name
from shared.runner.layout import VAR_DIR, FleetLayout

ENDPOINT = "/api/v1/users/me"
NGINX_PREFIX = VAR_DIR / "bench-nginx"
SERVICES = ("api-gateway", "user-service")  # what the measured request passes through


class BenchError(RuntimeError):
    """The run cannot go on: the bench user could not be made."""


def run_benchmark(settings: BenchSettings, *, wrk: str, nginx_executable: str, machine: dict[str, Any]) -> BenchReport:
    started_at = datetime.now(UTC)
    started = time.monotonic()
    gateway_spec, gateway_missing = gateway.gateway_spec()
    overrides = gateway.gateway_overrides(gateway_spec, settings.gateway_settings) if gateway_spec else {}
    if overrides:
        say("gateway settings for the run: " + ", ".join(f"{k}={v}" for k, v in sorted(overrides.items())))
    report = BenchReport(started_at, settings, machine, results={})

    with ExitStack() as stack:
        layout = stack.enter_context(running_bench_fleet(SERVICES, overrides)).layout
        user_service = by_name("user-service")
        token, user_id = register_user(layout.base_url(user_service))
        plan = nginx.NginxPlan(
            prefix=NGINX_PREFIX,
            listen_port=nginx.free_loopback_port(),
            upstream_port=layout.port(user_service),
            workers=settings.nginx_workers,
            keepalive=settings.nginx_keepalive,
        )
        proxy = stack.enter_context(nginx.running_nginx(nginx_executable, plan))
        say(f"nginx ({plan.workers} worker(s), upstream keepalive {plan.keepalive}) on {proxy.url}")

        results = report.results
        results[DIRECT] = TargetResult(DIRECT, "(a) user-service direct", layout.base_url(user_service) + ENDPOINT)
        results[NGINX] = TargetResult(NGINX, "(b) nginx -> user-service", proxy.url + ENDPOINT)
        gateway_url = layout.base_url(gateway_spec) + ENDPOINT if gateway_spec else None
        results[GATEWAY] = TargetResult(GATEWAY, "(c) gateway -> user-service", gateway_url)
        if gateway_missing:
            results[GATEWAY].problems.append(gateway_missing)
            say(f"(c) not measured: {gateway_missing}")

        for result in results.values():
            if result.url and (problem := check_answer(result.url, token, user_id)):
                result.problems.append(problem)
        measurable = [result for result in results.values() if result.url and not result.problems]

        phases = Phases(WrkRunner(wrk, settings.threads), settings, token, report.commands, _components(layout, proxy))
        with fleet_lock():
            phases.run(THROUGHPUT, measurable)
            phases.run(PACED, measurable)

    report.wall_seconds = time.monotonic() - started
    return report


@dataclass(frozen=True)
class Phases:
    """Runs a phase: each target warmed up once, then ``rounds`` measured runs, the order rotating per round."""

    runner: WrkRunner
    settings: BenchSettings
    token: str
    commands: dict[str, list[str]]  # the report's record of what ran, token redacted
    components: cpu.Groups

    def run(self, phase: str, targets: list[TargetResult]) -> None:
        s = self.settings
        seconds = s.duration_seconds if phase == THROUGHPUT else s.paced_duration_seconds
        load = f"{s.paced_rate} req/s" if phase == PACED else f"{s.connections} connections"
        say(f"{phase} phase ({load}): warm-up {s.warmup_seconds}s per target, then {s.rounds} x {seconds}s each")
        for target in targets:
            self._wrk(self._command(phase, target, s.warmup_seconds), s.warmup_seconds, problems=[])  # discarded
        retries = s.rounds  # measuring a disturbed round again, for the whole phase: the run stays bounded
        for round_index in range(s.rounds):
            shift = round_index % len(targets) if targets else 0
            for target in targets[shift:] + targets[:shift]:
                retries = self._round(phase, target, seconds, retries)
        for target in targets:
            target.problems.extend(self._doubts(phase, target))

    def _round(self, phase: str, target: TargetResult, seconds: int, retries: int) -> int:
        """One measured round, again while other programs disturb it and ``retries`` last; returns those left."""
        command = self._command(phase, target, seconds)
        self.commands[f"{target.key} {phase}"] = [part.replace(self.token, "<token>") for part in command]
        while True:
            with cpu.measuring(self.components) as usage:
                measured = self._wrk(command, seconds, problems=target.problems)
            if measured is None or not usage.disturbed or retries == 0:
                break
            retries -= 1
            target.phases[phase].discarded += 1
            say(f"{target.label}: other programs used {usage.cores()[cpu.OTHER]:.2f} cores; measuring again")
        if measured is not None:
            target.phases[phase].rounds.append(measured)
            target.phases[phase].cpu.add(usage)
        return retries

    def _command(self, phase: str, target: TargetResult, seconds: int) -> list[str]:
        s = self.settings
        assert target.url is not None
        if phase == THROUGHPUT:
            return self.runner.throughput_command(target.url, self.token, connections=s.connections, seconds=seconds)
        return self.runner.paced_command(
            target.url, self.token, connections=s.paced_connections, seconds=seconds, rate=s.paced_rate
        )

    def _wrk(self, command: list[str], seconds: int, *, problems: list[str]) -> WrkResult | None:
        try:
            return self.runner.run(command, seconds=seconds)
        except WrkError as error:
            problems.append(str(error))
            return None

    def _doubts(self, phase: str, target: TargetResult) -> list[str]:
        """What makes a phase's figures suspect: error answers, socket errors, a rate not reached."""
        combined = target.phases[phase].combined
        if combined is None:
            return []
        doubts = []
        if combined.errors["status"]:
            doubts.append(
                f"{phase}: {combined.errors['status']} of {combined.requests} answers had a status >= 400"
                " (rate limited? token expired?): its figures are not comparable"
            )
        if socket_errors := combined.error_count - combined.errors["status"]:
            doubts.append(f"{phase}: {socket_errors} socket errors/timeouts: {combined.errors}")
        if phase == PACED and combined.requests_per_second < 0.9 * self.settings.paced_rate:
            doubts.append(
                f"paced: reached {combined.requests_per_second:.0f} req/s of {self.settings.paced_rate}:"
                " too few connections (BENCH_PACED_CONNECTIONS) or the target is saturated"
            )
        return doubts


def _components(layout: FleetLayout, proxy: nginx.RunningNginx) -> cpu.Groups:
    return cpu.fleet_components(layout, nginx=lambda: cpu.with_children(proxy.pid))


def register_user(user_service_url: str) -> tuple[str, str]:
    """A fresh tutor in the bench database; returns its access token and id."""
    body = {
        "email": f"bench-{uuid.uuid4().hex[:12]}@example.com",
        "password": secrets.token_urlsafe(18),
        "full_name": "Bench Tutor",
    }
    response = httpx.post(f"{user_service_url}/api/v1/auth/register", json=body, timeout=30)
    if response.status_code != 201:
        raise BenchError(f"registering the bench user failed: {response.status_code} {response.text[:300]}")
    answer = response.json()
    return answer["access_token"], answer["user"]["id"]


def check_answer(url: str, token: str, user_id: str) -> str | None:
    """None when ``url`` answers 200 with the bench user; otherwise what it answered instead."""
    try:
        response = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    except httpx.HTTPError as error:
        return f"no answer from {url}: {error!r}"
    if response.status_code != 200:
        return f"{url} answered {response.status_code} {response.text[:200]}"
    if response.json().get("id") != user_id:
        return f"{url} answered 200 but not with the bench user: {response.text[:200]}"
    return None
