"""The benchmarks' pure helpers: which benchmarks ``make bench`` runs, percentiles, reports. No fleet, no timing."""

from __future__ import annotations

import fcntl
import os
import platform
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from benchmarks.__main__ import available, chosen
from benchmarks.common import gc_pauses
from benchmarks.common.cli import MissingTool, bench_main
from benchmarks.common.cpu import OTHER, CpuUsage
from benchmarks.common.lock import try_lock
from benchmarks.common.machine import describe_host_speed, host_speed
from benchmarks.common.seed import Pair, interleaved, series_chunks
from benchmarks.common.stats import Summary, percentile, percentile_label, rate, ratio
from benchmarks.events.probe import STAGES, OutboxTimes, stage_latencies_ms
from benchmarks.events.report import EventReport, LatencyPhase, ThroughputPhase
from benchmarks.events.settings import EventSettings
from benchmarks.failfast import report as failfast_report
from benchmarks.failfast.run import HANGING, OPEN, FailFastResult
from benchmarks.failfast.run import Phase as FailFastPhase
from benchmarks.failfast.settings import FailFastSettings
from benchmarks.relay import report as relay_report
from benchmarks.relay.run import HANDOVER, NOTIFY, RelayResult, Round
from benchmarks.relay.settings import RelaySettings
from shared.runner.lifecycle import FleetError
from shared.testing.accounts import Account


def _package(root: Path, name: str, *, runnable: bool = True) -> None:
    (root / name).mkdir()
    (root / name / "__init__.py").write_text("")
    if runnable:
        (root / name / "__main__.py").write_text("")


def test_the_dispatcher_finds_every_runnable_benchmark_package_known_ones_first(tmp_path: Path) -> None:
    for name in ("zeta", "memory", "gateway", "common"):
        _package(tmp_path, name)
    _package(tmp_path, "helpers", runnable=False)
    (tmp_path / "loose.py").write_text("")

    assert available(tmp_path) == ["gateway", "memory", "zeta"]


def test_the_dispatcher_runs_the_named_benchmarks_or_all_and_names_an_unknown_one() -> None:
    known = ["gateway", "events", "memory"]

    assert chosen([""], known) == known
    assert chosen([], known) == known
    assert chosen(["memory,events", "events"], known) == ["memory", "events"]
    with pytest.raises(ValueError, match="unknown benchmark.*nope.*known: gateway, events, memory"):
        chosen(["events,nope"], known)


def test_this_repository_has_the_gateway_benchmark() -> None:
    assert available()[0] == "gateway"


# --- percentiles and summaries ---------------------------------------------------------------


def test_percentiles_interpolate_between_the_closest_ranks() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([4, 1, 3, 2], 0) == 1
    assert percentile([4, 1, 3, 2], 100) == 4
    assert percentile(list(range(1, 101)), 99) == pytest.approx(99.01)
    assert percentile([7.0], 95) == 7.0
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 50)
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1], 101)


def test_a_summary_has_count_mean_max_and_the_usual_percentiles() -> None:
    summary = Summary.of([10.0, 20.0, 30.0, 40.0])

    assert (summary.count, summary.mean, summary.maximum) == (4, 25.0, 40.0)
    assert summary["p50"] == 25.0 and summary["p99"] == pytest.approx(39.7)
    assert summary.as_dict() == {
        "count": 4,
        "mean": 25.0,
        "p50": 25.0,
        "p90": 37.0,
        "p95": 38.5,
        "p99": 39.7,
        "max": 40.0,
    }
    assert percentile_label(99.9) == "p99.9"
    assert rate(600, 2.0) == 300 and rate(5, 0) == 0
    assert ratio(1.0, 4.0) == 0.25 and ratio(None, 4.0) is None and ratio(1.0, 0) is None


# --- seeding -------------------------------------------------------------------------------------


def test_series_chunks_hold_every_lesson_in_the_past_back_to_back() -> None:
    today = datetime(2026, 11, 26, 13, 0, tzinfo=UTC)

    chunks = series_chunks(1200, 500, today=today)

    assert [count for _, count in chunks] == [500, 500, 200]
    assert chunks[0][0] == date(2026, 11, 26) - timedelta(days=1201)
    assert [first for first, _ in chunks[1:]] == [
        chunks[0][0] + timedelta(days=500),
        chunks[0][0] + timedelta(days=1000),
    ]
    last_day = chunks[-1][0] + timedelta(days=199)
    assert last_day == date(2026, 11, 24)  # the day before yesterday


def test_completions_alternate_between_pairs() -> None:
    a = Pair(Account("t1", "tutor", "x"), Account("s1", "student", "y"), ["a1", "a2", "a3"])
    b = Pair(Account("t2", "tutor", "x"), Account("s2", "student", "y"), ["b1"])

    assert [(pair.student.id, lesson) for pair, lesson in interleaved([a, b])] == [
        ("s1", "a1"),
        ("s2", "b1"),
        ("s1", "a2"),
        ("s1", "a3"),
    ]


# --- settings ------------------------------------------------------------------------------------


def test_event_settings_from_the_environment_and_quick_mode() -> None:
    full = EventSettings.from_environment({})
    assert (full.rate, full.duration_seconds, full.backlog, full.pairs) == (100, 30, 6000, 100)
    assert full.paced_events(full.rate) == 3500 and full.paced_events(full.low_rate) == 700
    assert full.lessons_needed == 10_200 and full.lessons_per_pair == 102
    quick = EventSettings.from_environment({"BENCH_QUICK": "1", "BENCH_EVENTS_RATE": "50"})
    assert quick.quick and quick.rate == 50 and quick.backlog == 600
    with pytest.raises(ValueError, match="BENCH_EVENTS_BACKLOG"):
        EventSettings.from_environment({"BENCH_EVENTS_BACKLOG": "0"})
    with pytest.raises(ValueError, match="at most 12"):
        EventSettings.from_environment({"BENCH_EVENTS_STUDENTS": "13"})


def test_failfast_settings_keep_the_gateways_timeout_unless_quick_or_told() -> None:
    assert FailFastSettings.from_environment({}).timeout_seconds is None
    assert FailFastSettings.from_environment({"BENCH_QUICK": "yes"}).timeout_seconds == 3.0
    assert FailFastSettings.from_environment({"BENCH_FAILFAST_TIMEOUT": "1.5"}).timeout_seconds == 1.5
    with pytest.raises(ValueError, match="BENCH_FAILFAST_RATE must be an integer of at least 1, not '2.5'"):
        FailFastSettings.from_environment({"BENCH_FAILFAST_RATE": "2.5"})
    with pytest.raises(ValueError, match="BENCH_FAILFAST_TIMEOUT must be a number above 0, not 'soon'"):
        FailFastSettings.from_environment({"BENCH_FAILFAST_TIMEOUT": "soon"})


# --- reports -------------------------------------------------------------------------------------

MACHINE = {"nproc": 2, "cpu_model": "Test CPU", "memory_gib": 8.0, "git_commit": "abc1234", "uncommitted": []}


def test_the_event_report_compares_the_full_path_with_the_bare_bus_and_the_targets() -> None:
    report = EventReport(datetime(2026, 11, 26, 13, 0, tzinfo=UTC), EventSettings(), MACHINE)
    report.bare_latency = LatencyPhase("bare", 3000, 100.0, Summary.of([1.0, 2.0, 3.0, 4.0]))
    report.low_latency = LatencyPhase("low", 600, 20.0, Summary.of([5.0, 6.0]))
    report.full_latency = LatencyPhase(
        "full",
        3000,
        99.5,
        Summary.of([10.0, 20.0, 30.0, 80.0]),
        cpu=CpuUsage({"student-service": 3.0}, 10.0),
        gc_pauses={
            "lesson-service": {"0": {"count": 40, "ms": 12.0}, "2": {"count": 2, "ms": 31.4}},
            "user-service": {},
        },
        stages_ms={STAGES[0]: Summary.of([4.0, 6.0])},
    )
    report.bare_throughput = ThroughputPhase("bare", 6000, 5.0)
    report.full_throughput = ThroughputPhase("full", 6000, 12.0, first_seconds=0.05, missing=0)

    assert report.comparison() == {
        "p50_full_vs_bare": 10.0,
        "p99_full_vs_bare": pytest.approx(78.5 / 3.97),
        "p50_low_rate_vs_bare": 2.2,
        "p99_low_rate_vs_bare": pytest.approx(5.99 / 3.97),
        "rate_full_vs_bare": pytest.approx(500 / 1200),
    }
    text = report.render()
    assert "| full | 4 | 100 | 25.00 | 65.00 | 72.50 | 78.50 | 80.00 | 0 |" in text
    assert "| full | 6,000 | 12.00 | 500 | 0.05 | 0 |" in text
    assert "full path p99 at 100 events/s: 78.50 ms   (target <= 50 ms: MISSED)" in text
    assert "full path p50 / p99 at 20 events/s: 5.50 ms / 5.99 ms; full / bare p50: 2.20x, p99: 1.51x" in text
    assert "| low | 2 | 20 | 5.50 |" in text
    assert "full path sustained: 500.0 events/s   (target >= 600/s: MISSED)" in text
    report.full_throughput = ThroughputPhase("full", 6000, 10.001)  # 599.94 a second
    assert "full path sustained: 599.9 events/s   (target >= 600/s: MISSED)" in report.render()
    assert "| full | 0.30 | 0.30 |" in text  # the CPU table: student-service's 3 s over 10 s
    assert "(full garbage collections during 'full': lesson-service 2 (31 ms), user-service 0)" in text
    assert f"| {STAGES[0]} | 5.00 |" in text
    assert report.as_dict()["comparison"]["p50_full_vs_bare"] == 10.0


def test_a_phase_during_which_other_programs_used_the_cpu_is_reported_as_disturbed() -> None:
    report = EventReport(datetime(2026, 11, 26, 13, 0, tzinfo=UTC), EventSettings(), MACHINE)
    report.full_throughput = ThroughputPhase("full", 10, 1.0, cpu=CpuUsage({OTHER: 5.0}, 10.0))

    assert report.disturbances() == [
        "full: other programs used 0.50 cores meanwhile; its figures are disturbed (run again on a quiet machine)"
    ]
    assert "target >= 600/s: MISSED" in report.render() and "p99 at 100 events/s: n/a" in report.render()


def test_the_failfast_report_divides_the_open_breakers_p95_by_the_timeouts() -> None:
    result = FailFastResult(datetime(2026, 11, 26, 13, 0, tzinfo=UTC), FailFastSettings(), MACHINE, {})
    result.phases[HANGING] = _failfast_phase(HANGING, [30_000.0] * 19 + [30_010.0], 504)
    result.phases[OPEN] = _failfast_phase(OPEN, [2.0] * 19 + [3.0], 503)
    result.breaker_after_hang = "open"

    assert failfast_report.comparison(result)["p95_open_vs_hanging"] == pytest.approx(2.05 / 30_000.5)
    text = failfast_report.render(result)
    assert "(1 : 14,634)" in text and "20x 503" in text and "Problems" not in text


def test_the_relay_report_measures_each_way_from_its_commits_and_divides_hand_over_by_notify() -> None:
    result = RelayResult(datetime(2026, 12, 8, 1, 0, tzinfo=UTC), RelaySettings(), MACHINE)
    result.rounds = [
        _relay_round(NOTIFY, publish_after_ms=[10.0, 20.0, 30.0], relay_cpu=0.0018 * 3, postgres_cpu=0.0009 * 3),
        _relay_round(HANDOVER, publish_after_ms=[2.0, 4.0], relay_cpu=0.0009 * 2, postgres_cpu=0.0003 * 2),
        _relay_round(HANDOVER, publish_after_ms=[6.0], relay_cpu=0.0009, postgres_cpu=0.0003),
    ]
    result.rounds[0].confirmed.pop(next(iter(result.rounds[0].confirmed)))  # one never confirmed: not counted

    notify = result.latency_ms(NOTIFY, "publishing")
    assert notify is not None and (notify.count, notify["p50"]) == (3, pytest.approx(20.0))
    handover = result.latency_ms(HANDOVER, "publishing")
    assert handover is not None and (handover.count, handover["p50"]) == (3, pytest.approx(4.0))  # both rounds
    assert result.latency_ms(NOTIFY, "confirmed").count == 2  # type: ignore[union-attr]
    assert result.cpu_us_per_event(HANDOVER, "relay") == pytest.approx(900.0)
    comparison = relay_report.comparison(result)
    assert comparison["publishing_p50"] == pytest.approx(0.2)
    assert comparison["relay_cpu"] == pytest.approx(0.5) and comparison["postgres_cpu"] == pytest.approx(1 / 3)
    text = relay_report.render(result)
    assert "| notify | commit -> publish begins | 3 | 20.00 |" in text and "relay thread CPU 0.50x" in text
    assert relay_report.as_dict(result)["ways"][HANDOVER]["events"] == 3


def _relay_round(way: str, publish_after_ms: list[float], relay_cpu: float, postgres_cpu: float) -> Round:
    round_ = Round(way, relay_cpu_seconds=relay_cpu, postgres_cpu_seconds=postgres_cpu)
    for index, after_ms in enumerate(publish_after_ms):
        event_id = uuid.uuid4()
        round_.committed[event_id] = float(index)
        round_.publishing[event_id] = index + after_ms / 1000
        round_.confirmed[event_id] = index + 2 * after_ms / 1000
    round_.measured_events = len(publish_after_ms)
    return round_


def test_unexpected_answers_in_a_failfast_phase_are_counted() -> None:
    phase = _failfast_phase(OPEN, [2.0, 2.0], 503)
    phase.statuses[200] += 1

    assert phase.unexpected == 1


def _failfast_phase(key: str, latencies: list[float], status: int) -> FailFastPhase:
    phase = FailFastPhase(key, key)
    phase.latencies_ms.extend(latencies)
    phase.statuses[status] += len(latencies)
    return phase


def test_a_lock_held_elsewhere_is_not_taken_until_it_is_released(tmp_path: Path) -> None:
    path = tmp_path / "fleet.lock"
    with open(path, "a") as first, open(path, "a") as second:
        assert try_lock(first)
        assert not try_lock(second)  # another open file description: as another process would see it
        fcntl.flock(first, fcntl.LOCK_UN)
        assert try_lock(second)


# --- the shared command line (benchmarks/common/cli.py) ---


@dataclass
class _FakeReport:
    folder: Path
    wall_seconds: float = 3.0

    def write_json(self) -> Path:
        path = self.folder / "result.json"
        path.write_text("{}")
        return path

    def render(self) -> str:
        return "the table"


def _settings(quick: bool) -> dict[str, bool]:
    if os.environ.get("BENCH_TEST_BAD_SETTING"):
        raise ValueError("BENCH_TEST_BAD_SETTING must be a number")
    return {"quick": quick}


def test_the_benchmark_command_line_runs_reports_and_exits_by_what_happened(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[dict[str, bool]] = []

    def run(settings: dict[str, bool]) -> _FakeReport:
        seen.append(settings)
        return _FakeReport(tmp_path)

    common = {"name": "fake", "description": "a fake", "quick_help": "short", "settings_from_environment": _settings}
    assert bench_main(["--quick"], run=run, **common) == 0
    assert seen == [{"quick": True}]
    out = capsys.readouterr().out
    assert "the table" in out and f"results: {tmp_path / 'result.json'}  (whole run 3s)" in out

    def missing(settings: dict[str, bool]) -> _FakeReport:
        raise MissingTool("wrk not found; install with: apt-get install -y wrk")

    def broken(settings: dict[str, bool]) -> _FakeReport:
        raise FleetError("user-service did not become ready")

    def harness_bug(settings: dict[str, bool]) -> _FakeReport:
        raise KeyError("not a known bench error")

    assert bench_main([], run=missing, **common) == 2
    assert "wrk not found" in capsys.readouterr().err
    assert bench_main([], run=broken, **common) == 1
    assert "error: user-service did not become ready" in capsys.readouterr().err
    with pytest.raises(KeyError):  # an unexpected error is not swallowed into an exit code
        bench_main([], run=harness_bug, **common)
    monkeypatch.setenv("BENCH_TEST_BAD_SETTING", "1")
    assert bench_main([], run=run, **common) == 2
    assert "must be a number" in capsys.readouterr().err
    assert len(seen) == 1  # nothing ran with a bad setting


def test_the_host_speed_is_recorded_with_every_run_and_said_in_one_line() -> None:
    speed = host_speed(tries=2)

    assert 0 < speed["loop_ms_min"] <= speed["loop_ms_median"] <= speed["loop_ms_max"]
    steal = speed["steal_percent_since_boot"]
    assert steal is None or 0 <= steal <= 100  # a container without /proc/stat still gets the loop
    line = describe_host_speed({"host_speed": speed})
    assert f"took {speed['loop_ms_min']}-{speed['loop_ms_max']} ms" in line
    # the loop's time depends on the interpreter's build as much as on the host: the line says which ran it
    assert f"on Python {platform.python_version()} ({os.path.realpath(sys.executable)})" in line
    assert describe_host_speed({}) == "host speed: not measured"  # a result from before the figure existed


def test_gc_pauses_are_read_from_the_services_metrics_and_differenced() -> None:
    def exposition(full_count: int, full_seconds: float) -> str:
        return "\n".join(
            [
                "# HELP python_gc_pause_seconds How long the process stood still for a garbage collection",
                "# TYPE python_gc_pause_seconds histogram",
                'python_gc_pause_seconds_bucket{generation="0",le="+Inf",service="s"} 7.0',
                'python_gc_pause_seconds_count{generation="0",service="s"} 7.0',
                'python_gc_pause_seconds_sum{generation="0",service="s"} 0.002',
                f'python_gc_pause_seconds_bucket{{generation="2",le="+Inf",service="s"}} {full_count}.0',
                f'python_gc_pause_seconds_count{{generation="2",service="s"}} {full_count}.0',
                f'python_gc_pause_seconds_sum{{generation="2",service="s"}} {full_seconds}',
                "",
            ]
        )

    before = {"s": gc_pauses._pauses(exposition(1, 0.150))}
    after = {"s": gc_pauses._pauses(exposition(3, 0.190))}
    assert after["s"]["2"] == gc_pauses.Pauses(3, 0.190)
    assert gc_pauses.difference(after, before) == {"s": {"2": {"count": 2, "ms": 40.0}}}  # gen 0 unchanged: left out


def test_the_event_path_is_split_at_the_relays_pass_and_the_consumers_transaction() -> None:
    outbox = {
        "a": OutboxTimes("e-a", committed=100.000, claimed=100.004),
        "b": OutboxTimes("e-b", committed=100.010, claimed=None),  # not published yet: left out
        "c": OutboxTimes("e-c", committed=100.020, claimed=100.021),
    }
    received = {"e-a": 100.010, "e-c": 100.031}
    visible = {"a": 100.013, "b": 100.5, "c": 100.036}

    stages = stage_latencies_ms(["a", "b", "c", "d"], outbox, received, visible)

    assert list(stages) == list(STAGES)
    assert [round(v, 3) for v in stages[STAGES[0]]] == [4.0, 1.0]
    assert [round(v, 3) for v in stages[STAGES[1]]] == [6.0, 10.0]
    assert [round(v, 3) for v in stages[STAGES[2]]] == [3.0, 5.0]
