"""The gateway benchmark's own arithmetic: wrk's output → numbers → ratios. No wrk, no fleet, no timing."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from benchmarks.common.cpu import OTHER, CpuUsage
from benchmarks.common.fleet import bench_layout
from benchmarks.gateway.gateway import gateway_overrides
from benchmarks.gateway.nginx import NginxPlan, render_config
from benchmarks.gateway.report import (
    DIRECT,
    GATEWAY,
    NGINX,
    PACED,
    THROUGHPUT,
    BenchReport,
    Comparison,
    TargetResult,
)
from benchmarks.gateway.run import SERVICES as GATEWAY_BENCH_SERVICES
from benchmarks.gateway.settings import BenchSettings, parse_settings_list
from benchmarks.gateway.wrk import (
    ERROR_KINDS,
    PERCENTILES,
    REPORT_SCRIPT,
    WrkError,
    WrkResult,
    WrkRunner,
    parse_wrk_output,
)
from shared.fleet import ServiceSpec, by_name
from shared.runner.layout import FleetLayout

# wrk 4.1.0 (Debian) with lua/report.lua against a local server, copied verbatim
THROUGHPUT_OUTPUT = """\
Running 1s test @ http://127.0.0.1:39123/
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.06ms    0.85ms   6.77ms   73.60%
    Req/Sec     1.29k    57.23     1.43k    81.82%
  1410 requests in 1.10s, 2.62MB read
Requests/sec:   1282.62
Transfer/sec:      2.38MB
BENCH_RESULT {"requests":1410,"duration_us":1099315,"bytes":2745270,"errors":{"connect":0,"read":0,"write":0,"status":0,"timeout":0},"latency_us":{"min":673,"mean":3060.2,"stdev":852.2,"max":6772,"p50":3021,"p75":3592,"p90":4109,"p99":5413,"p99.9":6615}}
"""

# the same with lua/paced.lua (-- 50 per thread, 2 threads) on a path that answers 404
PACED_404_OUTPUT = """\
Running 2s test @ http://127.0.0.1:39123/nope
  2 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   406.35us    1.08ms   9.80ms   96.02%
    Req/Sec    50.20      5.32    60.00     72.50%
  201 requests in 2.00s, 102.07KB read
  Non-2xx or 3xx responses: 201
Requests/sec:    100.30
Transfer/sec:     50.94KB
BENCH_RESULT {"requests":201,"duration_us":2003924,"bytes":104520,"errors":{"connect":0,"read":0,"write":0,"status":201,"timeout":0},"latency_us":{"min":140,"mean":406.4,"stdev":1083.6,"max":9797,"p50":192,"p75":231,"p90":415,"p99":5177,"p99.9":9797}}
"""


def test_throughput_output_becomes_requests_rate_and_percentiles_in_ms() -> None:
    result = parse_wrk_output(THROUGHPUT_OUTPUT)

    assert result.requests == 1410
    assert result.duration_seconds == pytest.approx(1.099315)
    assert result.requests_per_second == pytest.approx(1410 / 1.099315)
    assert result.bytes_read == 2745270
    assert result.error_count == 0
    assert result.latency_ms == pytest.approx(
        {
            "min": 0.673,
            "mean": 3.0602,
            "stdev": 0.8522,
            "max": 6.772,
            "p50": 3.021,
            "p75": 3.592,
            "p90": 4.109,
            "p99": 5.413,
            "p99.9": 6.615,
        }
    )


def test_error_answers_are_counted_not_hidden() -> None:
    result = parse_wrk_output(PACED_404_OUTPUT)

    assert result.errors == {"connect": 0, "read": 0, "write": 0, "status": 201, "timeout": 0}
    assert result.error_count == 201
    assert result.requests_per_second == pytest.approx(100.3, abs=0.1)


def test_the_result_as_json_keeps_the_rate_and_milliseconds() -> None:
    as_dict = parse_wrk_output(THROUGHPUT_OUTPUT).as_dict()

    assert as_dict["requests_per_second"] == pytest.approx(1282.6, abs=0.1)
    assert as_dict["latency_ms"]["p99"] == 5.413


@pytest.mark.parametrize(
    "output, complaint",
    [
        (THROUGHPUT_OUTPUT.replace("BENCH_RESULT ", "SOMETHING "), "no BENCH_RESULT line"),
        (THROUGHPUT_OUTPUT + PACED_404_OUTPUT, "2 BENCH_RESULT line"),
        ('BENCH_RESULT {"requests": 3}\n', "unreadable BENCH_RESULT line"),
        ("BENCH_RESULT {not json\n", "unreadable BENCH_RESULT line"),
    ],
)
def test_output_without_one_readable_result_line_is_an_error(output: str, complaint: str) -> None:
    with pytest.raises(WrkError, match=complaint):
        parse_wrk_output(output)


def test_report_script_prints_every_percentile_the_parser_reads() -> None:
    listed = re.search(r"local percentiles = \{([^}]*)\}", REPORT_SCRIPT.read_text())
    assert listed is not None
    assert tuple(f"p{value.strip()}" for value in listed.group(1).split(",")) == PERCENTILES


def test_paced_command_splits_the_rate_over_the_threads() -> None:
    runner = WrkRunner("wrk", threads=2)

    command = runner.paced_command("http://127.0.0.1:1/x", "TOKEN", connections=16, seconds=15, rate=300)

    assert command[:4] == ["wrk", "-t2", "-c16", "-d15s"]
    assert command[-3:] == ["http://127.0.0.1:1/x", "--", "150"]
    assert "Authorization: Bearer TOKEN" in command


def test_wrk_never_gets_more_threads_than_connections() -> None:
    command = WrkRunner("wrk", threads=4).throughput_command("http://h/x", "T", connections=2, seconds=1)

    assert "-t2" in command


def _run(requests: int, p50_ms: float, p99_ms: float, *, seconds: float = 10.0, status_errors: int = 0) -> WrkResult:
    latency = {"min": 0.1, "mean": p50_ms, "stdev": 1.0, "max": p99_ms * 2}
    latency |= {key: p50_ms for key in PERCENTILES} | {"p99": p99_ms, "p99.9": p99_ms * 1.5}
    errors = dict.fromkeys(ERROR_KINDS, 0) | {"status": status_errors}
    return WrkResult(requests, seconds, bytes_read=100 * requests, errors=errors, latency_ms=latency)


def _target(key: str, requests: int, p50_ms: float, p99_ms: float) -> TargetResult:
    """A target whose throughput and paced phases each had one 10 s round with these figures."""
    target = TargetResult(key, key, "http://127.0.0.1:1/x")
    for phase in (THROUGHPUT, PACED):
        target.phases[phase].rounds.append(_run(requests, p50_ms, p99_ms))
    return target


def test_comparison_gives_ratios_and_added_latency_against_direct() -> None:
    direct = _target(DIRECT, requests=10_000, p50_ms=1.0, p99_ms=2.0)
    nginx = _target(NGINX, requests=8_000, p50_ms=1.5, p99_ms=2.5)
    gateway = _target(GATEWAY, requests=6_000, p50_ms=3.0, p99_ms=6.5)

    comparison = Comparison.of({DIRECT: direct, NGINX: nginx, GATEWAY: gateway})

    assert comparison.nginx_vs_direct == pytest.approx(0.8)
    assert comparison.gateway_vs_direct == pytest.approx(0.6)
    assert comparison.gateway_vs_nginx == pytest.approx(0.75)
    assert comparison.added_ms[GATEWAY]["paced p99"] == pytest.approx(4.5)
    assert comparison.added_ms[NGINX]["throughput p50"] == pytest.approx(0.5)


def test_comparison_without_the_gateway_says_not_available() -> None:
    direct = _target(DIRECT, requests=10_000, p50_ms=1.0, p99_ms=2.0)
    missing = TargetResult(GATEWAY, GATEWAY, None, problems=["not in the tree yet"])

    comparison = Comparison.of({DIRECT: direct, GATEWAY: missing})

    assert comparison.gateway_vs_direct is None
    assert comparison.gateway_vs_nginx is None
    assert comparison.added_ms[GATEWAY]["paced p99"] is None


def test_rounds_pool_their_counts_and_take_the_median_percentile() -> None:
    rounds = [_run(1000, 1.0, 2.0, status_errors=1), _run(1200, 1.2, 30.0), _run(800, 1.1, 2.4, seconds=5.0)]

    combined = WrkResult.combine(rounds)

    assert combined.requests == 3000
    assert combined.duration_seconds == 25.0
    assert combined.requests_per_second == pytest.approx(120.0)
    assert combined.errors["status"] == 1
    assert combined.latency_ms["p50"] == pytest.approx(1.1)
    assert combined.latency_ms["p99"] == pytest.approx(2.4)  # one round's hiccup (30 ms) does not decide it
    assert combined.latency_ms["max"] == pytest.approx(60.0)
    assert combined.latency_ms["mean"] == pytest.approx((1000 * 1.0 + 1200 * 1.2 + 800 * 1.1) / 3000)
    with pytest.raises(ValueError):
        WrkResult.combine([])


def test_cpu_usage_adds_up_rounds_as_cores() -> None:
    total = CpuUsage()
    total.add(CpuUsage({"user-service": 5.0, "wrk": 1.0}, wall_seconds=5.0))
    total.add(CpuUsage({"user-service": 4.0, "postgres": 1.5}, wall_seconds=5.0))

    assert total.cores() == pytest.approx({"user-service": 0.9, "wrk": 0.1, "postgres": 0.15})
    assert CpuUsage().cores() == {}
    assert not total.disturbed
    assert CpuUsage({OTHER: 1.0}, wall_seconds=5.0).disturbed


def test_the_report_renders_every_target_and_flags_a_disturbed_phase() -> None:
    direct = _target(DIRECT, requests=10_000, p50_ms=1.0, p99_ms=2.0)
    direct.phases[THROUGHPUT].cpu.add(CpuUsage({"user-service": 9.5, OTHER: 4.0}, wall_seconds=10.0))
    nginx = _target(NGINX, requests=9_000, p50_ms=1.2, p99_ms=2.5)
    missing = TargetResult(GATEWAY, "(c) gateway", None, problems=["the API gateway is not in the tree yet"])
    machine = {"nproc": 2, "cpu_model": "Test CPU", "memory_gib": 4.0, "git_commit": "abc1234", "uncommitted": []}
    report = BenchReport(
        datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
        BenchSettings(),
        machine,
        {DIRECT: direct, NGINX: nginx, GATEWAY: missing},
    )

    text = report.render()

    assert "| direct | 1,000 | 1.00 |" in text
    assert "| (c) gateway | not measured |" in text
    assert "(b)/(a) nginx vs direct throughput:   0.90x" in text
    assert "the API gateway is not in the tree yet" in text
    assert "other programs used 0.40 cores" in text
    assert report.as_dict()["comparison"]["throughput_gateway_vs_nginx"] is None


def test_the_bench_fleet_shares_nothing_with_a_developers_or_a_test_fleet() -> None:
    bench, dev, test = bench_layout(), FleetLayout.development(), FleetLayout.for_test_run("r1")
    user_service = by_name("user-service")

    assert {spec.name for spec in bench_layout(GATEWAY_BENCH_SERVICES).specs} == set(GATEWAY_BENCH_SERVICES)
    assert bench.port(user_service) == 28001
    assert bench.database_name(user_service) == "repitbot_bench_user"
    for other in (dev, test):
        assert {bench.port(s) for s in bench.specs}.isdisjoint({other.port(s) for s in other.specs})
        assert bench.database_name(user_service) != other.database_name(user_service)
        assert bench.vhost != other.vhost and bench.redis_db != other.redis_db
        assert bench.state_dir != other.state_dir


def test_settings_from_the_environment_and_quick_mode() -> None:
    assert BenchSettings.from_environment({}) == BenchSettings()
    assert BenchSettings.from_environment({"BENCH_CONNECTIONS": "32"}).connections == 32
    quick = BenchSettings.from_environment({"BENCH_QUICK": "1", "BENCH_RATE": "100"})
    assert quick.quick and quick.rounds == 1 and quick.paced_rate == 100
    with pytest.raises(ValueError, match="BENCH_THREADS"):
        BenchSettings.from_environment({"BENCH_THREADS": "0"})


def test_gateway_limits_are_raised_through_its_own_prefixed_settings() -> None:
    spec = ServiceSpec("api-gateway", "api_gateway", 8000, has_database=False)

    extra = BenchSettings.from_environment({"BENCH_GATEWAY_SETTINGS": "rate_limit_requests=7,LOG_LEVEL=WARNING"})

    overrides = gateway_overrides(spec, extra.gateway_settings)

    assert overrides == {
        "API_GATEWAY_RATE_LIMIT_REQUESTS": "7",
        "API_GATEWAY_SERVICE_RATE_LIMIT_REQUESTS": "1000000000",
        "API_GATEWAY_LOG_LEVEL": "WARNING",
    }
    assert gateway_overrides(spec, {})["API_GATEWAY_RATE_LIMIT_REQUESTS"] == "1000000000"
    with pytest.raises(ValueError, match="NAME=value"):
        BenchSettings.from_environment({"BENCH_GATEWAY_SETTINGS": "oops"})


def test_gateway_settings_list() -> None:
    assert parse_settings_list("rate_limit_per_minute=5, LOG_LEVEL=WARNING") == {
        "RATE_LIMIT_PER_MINUTE": "5",
        "LOG_LEVEL": "WARNING",
    }
    assert parse_settings_list("") == {}
    with pytest.raises(ValueError, match="NAME=value"):
        parse_settings_list("oops")


def test_nginx_config_keeps_upstream_connections_alive() -> None:
    config = render_config(NginxPlan(prefix=Path("/tmp/b"), listen_port=4000, upstream_port=28001, keepalive=32))

    assert "server 127.0.0.1:28001;" in config
    assert "keepalive 32;" in config
    assert "proxy_http_version 1.1;" in config
    assert 'proxy_set_header Connection "";' in config
    assert "listen 127.0.0.1:4000;" in config
    assert "pid /tmp/b/nginx.pid;" in config
