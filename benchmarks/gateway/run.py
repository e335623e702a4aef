"""One benchmark run: fleet and nginx up, a user and its token, wrk against each target, all torn down.

The same endpoint is measured three ways in one run, one after another, with the
same wrk settings: (a) straight to user-service, (b) through nginx, (c) through the
gateway. Then each is driven at a constant rate to compare latency where nothing
is saturated.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from benchmarks.gateway import gateway, nginx
from benchmarks.gateway.fleet import running_bench_fleet, say
from benchmarks.gateway.report import DIRECT, GATEWAY, NGINX, BenchReport, TargetResult
from benchmarks.gateway.settings import BenchSettings
from benchmarks.gateway.wrk import WrkError, WrkResult, WrkRunner
from shared.fleet import by_name
from shared.runner.layout import VAR_DIR

ENDPOINT = "/api/v1/users/me"
NGINX_PREFIX = VAR_DIR / "bench-nginx"


class BenchError(RuntimeError):
    """The run cannot go on: the bench user could not be made."""


def run_benchmark(settings: BenchSettings, *, wrk: str, nginx_executable: str, machine: dict) -> BenchReport:
    started_at = datetime.now(UTC)
    started = time.monotonic()
    gateway_spec, gateway_missing = gateway.gateway_spec()
    overrides = gateway.gateway_overrides(gateway_spec) if gateway_spec else {}
    if overrides:
        say("gateway settings for the run: " + ", ".join(f"{k}={v}" for k, v in sorted(overrides.items())))
    runner = WrkRunner(wrk, settings.threads)
    report = BenchReport(started_at, settings, machine, results={})

    with ExitStack() as stack:
        prepared = stack.enter_context(running_bench_fleet(overrides))
        layout = prepared.layout
        user_service = by_name("user-service")
        token, user_id = register_user(layout.base_url(user_service))
        plan = nginx.NginxPlan(
            prefix=NGINX_PREFIX,
            listen_port=nginx.free_loopback_port(),
            upstream_port=layout.port(user_service),
            workers=settings.nginx_workers,
            keepalive=settings.nginx_keepalive,
        )
        nginx_url = stack.enter_context(nginx.running_nginx(nginx_executable, plan))
        say(
            f"nginx ({plan.workers} worker, upstream keepalive {plan.keepalive}) on {nginx_url}, config {plan.config_path}"
        )

        results = report.results
        results[DIRECT] = TargetResult(DIRECT, "(a) user-service direct", layout.base_url(user_service) + ENDPOINT)
        results[NGINX] = TargetResult(NGINX, "(b) nginx -> user-service", nginx_url + ENDPOINT)
        if gateway_spec is not None:
            results[GATEWAY] = TargetResult(
                GATEWAY, "(c) gateway -> user-service", layout.base_url(gateway_spec) + ENDPOINT
            )
        else:
            results[GATEWAY] = TargetResult(GATEWAY, "(c) gateway -> user-service", None, problems=[gateway_missing])
            say(f"(c) not measured: {gateway_missing}")

        measurable = [result for result in results.values() if result.url is not None]
        for result in measurable:
            problem = check_answer(result.url, token, user_id)
            if problem:
                result.problems.append(problem)
        measurable = [result for result in measurable if not result.problems]

        phases = Phases(runner, settings, token, report.commands)
        for result in measurable:
            result.throughput = phases.throughput(result)
        for result in measurable:
            result.paced = phases.paced(result)

    report.wall_seconds = time.monotonic() - started
    return report


@dataclass(frozen=True)
class Phases:
    """The two wrk phases, each a discarded warm-up then the measured run, with the same settings per target."""

    runner: WrkRunner
    settings: BenchSettings
    token: str
    commands: dict[str, list[str]]  # the report's record of what ran, token redacted

    def throughput(self, result: TargetResult) -> WrkResult | None:
        s = self.settings
        say(f"{result.label}: throughput, warm-up {s.warmup_seconds}s, then {s.duration_seconds}s")

        def command(seconds: int) -> list[str]:
            return self.runner.throughput_command(result.url, self.token, connections=s.connections, seconds=seconds)

        return self._warm_then_measure(result, "throughput", command, s.duration_seconds)

    def paced(self, result: TargetResult) -> WrkResult | None:
        s = self.settings
        say(f"{result.label}: {s.paced_rate} req/s, warm-up {s.warmup_seconds}s, then {s.paced_duration_seconds}s")

        def command(seconds: int) -> list[str]:
            return self.runner.paced_command(
                result.url, self.token, connections=s.paced_connections, seconds=seconds, rate=s.paced_rate
            )

        measured = self._warm_then_measure(result, "paced", command, s.paced_duration_seconds)
        if measured and measured.requests_per_second < 0.9 * s.paced_rate:
            result.problems.append(
                f"paced run reached {measured.requests_per_second:.0f} req/s of {s.paced_rate}:"
                " too few connections (BENCH_PACED_CONNECTIONS) or the target is saturated"
            )
        return measured

    def _warm_then_measure(
        self, result: TargetResult, phase: str, command: Callable[[int], list[str]], seconds: int
    ) -> WrkResult | None:
        warmup = self.settings.warmup_seconds
        _measure(self.runner, command(warmup), warmup, problems=[])  # figures and problems discarded
        measured_command = command(seconds)
        self.commands[f"{result.key} {phase}"] = redact(measured_command, self.token)
        return _measure(self.runner, measured_command, seconds, problems=result.problems)


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


def redact(command: list[str], token: str) -> list[str]:
    return [part.replace(token, "<token>") for part in command]


def _measure(runner: WrkRunner, command: list[str], seconds: int, *, problems: list[str]) -> WrkResult | None:
    """wrk's figures, or None; what makes them suspect (or absent) is added to ``problems``."""
    try:
        measured = runner.run(command, seconds=seconds)
    except WrkError as error:
        problems.append(str(error))
        return None
    if measured.errors["status"]:
        problems.append(
            f"{measured.errors['status']} of {measured.requests} answers had a status >= 400"
            " (rate limited? token expired?): its figures are not comparable"
        )
    socket_errors = measured.error_count - measured.errors["status"]
    if socket_errors:
        problems.append(f"{socket_errors} socket errors/timeouts: {measured.errors}")
    return measured
