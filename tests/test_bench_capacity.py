"""The capacity benchmark's own logic: wrk's output → numbers, a step's verdict, the rate stepping, the users
file and the report. No fleet, no wrk run, no timing."""

from __future__ import annotations

import json
import re
import stat
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from benchmarks.capacity import workload
from benchmarks.capacity.report import CapacityReport, StepRecord
from benchmarks.capacity.settings import CapacitySettings
from benchmarks.capacity.stepping import Criteria, RateSearch
from benchmarks.gateway.wrk import WrkError, WrkResult
from shared.seeding import build_world

# wrk 4.1.0 (Debian) with lua/mixed.lua, 100 req/s for 2 s, against a stand-in server answering 200 to GET,
# 201 to POST and 404 to /api/v1/users/students; copied verbatim
MIXED_OUTPUT = """\
Running 2s test @ http://127.0.0.1:39123
  2 threads and 200 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.14ms    0.99ms   9.12ms   88.00%
    Req/Sec    48.67      9.93    60.00     83.33%
  150 requests in 2.01s, 27.13KB read
  Non-2xx or 3xx responses: 3
Requests/sec:     74.71
Transfer/sec:     13.51KB
BENCH_RESULT {"requests":150,"duration_us":2007885,"bytes":27786,"errors":{"connect":0,"read":0,"write":0,"status":3,"timeout":0},"latency_us":{"min":310,"mean":1141.1,"stdev":994.6,"max":9123,"p50":860,"p75":1517,"p90":2237,"p99":4173,"p99.9":9123}}
CAPACITY_RESULT {"sent":{"top_up":5,"parent_balance":9,"submit_homework":9,"student_homework":12,"student_profile":15,"tutor_homework":5,"tutor_students":3,"student_schedule":26,"student_me":15,"tutor_schedule":11,"schedule_lesson":5,"student_balance":17,"parent_schedule":8,"tutor_balance":11},"statuses":{"201":19,"200":128,"404":3},"samples":{"404":"{\\u0022error\\u0022: {\\u0022code\\u0022: \\u0022not_found\\u0022, \\u0022message\\u0022: \\u0022Student \\u005c\\u0022x\\u005c\\u0022 not found\\u0022}}"}}
"""

AS_OF = datetime(2026, 3, 11, 14, 37, tzinfo=UTC)


def wrk_result(*, rps: float = 100.0, p99: float = 120.0, errors: dict[str, int] | None = None) -> WrkResult:
    kinds = {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0, **(errors or {})}
    latency = {"min": 1.0, "mean": 20.0, "stdev": 5.0, "max": p99 * 2, "p50": 15.0, "p75": 30.0, "p90": 60.0}
    return WrkResult(
        requests=int(rps * 10), duration_seconds=10.0, bytes_read=1, errors=kinds, latency_ms={**latency, "p99": p99, "p99.9": p99 * 1.5}
    )  # fmt: skip


# --- wrk's output ---------------------------------------------------------------------------------


def test_the_output_of_a_mixed_run_gives_the_latencies_and_the_answers_per_operation_and_status() -> None:
    result, mix = workload.parse_output(MIXED_OUTPUT)
    assert (result.requests, result.latency_ms["p99"], result.errors["status"]) == (150, 4.173, 3)
    assert mix.statuses == {200: 128, 201: 19, 404: 3}
    assert mix.non_2xx == 3
    assert mix.sent["student_schedule"] == 26 and set(mix.sent) == {op.name for op in workload.MIX}
    assert mix.samples[404] == '{"error": {"code": "not_found", "message": "Student \\"x\\" not found"}}'
    json.dumps(mix.as_dict())


def test_an_output_without_its_capacity_line_or_with_a_broken_one_is_an_error() -> None:
    without = "\n".join(line for line in MIXED_OUTPUT.splitlines() if not line.startswith("CAPACITY_RESULT"))
    with pytest.raises(WrkError, match="0 CAPACITY_RESULT lines"):
        workload.parse_output(without)
    with pytest.raises(WrkError, match="unreadable CAPACITY_RESULT"):
        workload.parse_output(without + '\nCAPACITY_RESULT {"sent":{}}\n')


# --- a step's verdict -----------------------------------------------------------------------------


def test_a_step_holds_with_p99_under_the_bound_no_error_and_the_offered_rate_sent() -> None:
    assert Criteria().failures(100, wrk_result(rps=97.0, p99=299.9), non_2xx=0) == []


def test_a_step_fails_at_the_bound_on_any_error_or_when_the_sender_fell_behind() -> None:
    criteria = Criteria()
    assert criteria.failures(100, wrk_result(p99=300.0), 0) == ["p99 300 ms >= 300 ms"]
    assert criteria.failures(100, wrk_result(), non_2xx=1) == ["1 answers outside 2xx"]
    assert criteria.failures(100, wrk_result(errors={"timeout": 2, "read": 1}), 0) == [
        "socket errors read 1, timeout 2"
    ]
    assert criteria.failures(100, wrk_result(rps=94.0), 0) == ["sent 94 req/s of 100"]
    assert len(criteria.failures(100, wrk_result(rps=50.0, p99=900.0, errors={"status": 4}), 4)) == 3


# --- the rate stepping ----------------------------------------------------------------------------


def test_the_rate_grows_while_steps_hold() -> None:
    search = RateSearch(start=40, max_steps=10)
    assert search.next_rate([]) == 40
    assert search.next_rate([(40, True)]) == 60
    assert search.next_rate([(40, True), (60, True)]) == 90


def test_after_a_failure_it_bisects_into_the_resolution_then_measures_the_best_rate_again() -> None:
    search = RateSearch(start=40, max_steps=10, resolution=0.1)
    steps = [(40, True), (60, True), (90, False)]
    assert search.next_rate(steps) == 75
    steps.append((75, True))
    assert search.next_rate(steps) == 82
    steps.append((82, False))
    assert search.next_rate(steps) == 75  # 75 held, 82 did not: within 10%, so 75 once more
    steps.append((75, True))
    assert search.next_rate(steps) is None
    assert RateSearch.best(steps) == 75


def test_a_best_rate_that_fails_its_second_measurement_no_longer_counts_and_the_search_goes_below() -> None:
    search = RateSearch(start=40, max_steps=10, resolution=0.1)
    steps = [(40, True), (60, True), (90, False), (75, True), (82, False), (75, False)]
    assert RateSearch.best(steps) == 60
    assert search.next_rate(steps) == 67
    assert RateSearch(start=40, max_steps=10, confirm=False).next_rate(steps[:5]) is None


def test_when_the_first_step_fails_it_halves_down_to_the_floor() -> None:
    search = RateSearch(start=40, max_steps=10, floor=5)
    steps = [(40, False)]
    for expected in (20, 10, 5):
        assert search.next_rate(steps) == expected
        steps.append((expected, False))
    assert search.next_rate(steps) is None
    assert RateSearch.best(steps) is None


def test_a_step_that_holds_above_a_failure_moves_the_bracket_up_and_the_steps_are_bounded() -> None:
    search = RateSearch(start=40, max_steps=6)
    steps = [(40, True), (60, False), (50, True), (55, True)]
    assert search.next_rate(steps) == 55  # 55 held, 60 failed: 55 once more
    assert search.next_rate([*steps, (55, True)]) is None
    assert RateSearch.best(steps) == 55
    assert search.next_rate([(40, True), (60, True), (90, True), (135, True), (202, True), (303, True)]) is None


# --- the workload -----------------------------------------------------------------------------------


def test_every_operation_of_the_mix_is_one_the_lua_script_knows() -> None:
    script = workload.LUA_SCRIPT.read_text()
    body = script[script.index("operations = {") : script.index("\nfunction init")]
    assert set(re.findall(r"^  (\w+) = function", body, re.MULTILINE)) == {op.name for op in workload.MIX}
    assert workload.mix_argument().count(",") == len(workload.MIX) - 1


def test_the_users_file_gives_each_user_a_token_and_what_they_act_on(tmp_path: Path) -> None:
    world = build_world(2, 3, as_of=AS_OF, parent_every=2)
    tokens = {person.id: f"token-{person.id}" for person in world.people}
    path = tmp_path / "users.tsv"
    assert workload.write_users_file(path, world, tokens) == {"tutor": 2, "student": 6, "parent": 3}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    students_of = {str(tutor): {str(s) for s in students} for tutor, students in world.students_of.items()}
    children_of: dict[str, set[str]] = defaultdict(set)
    for child, parents in world.parents_of.items():
        for parent in parents:
            children_of[str(parent)].add(str(child))
    open_work: dict[str, set[str]] = defaultdict(set)
    for work in world.homework:
        if work.status != "graded":
            open_work[str(work.student_id)].add(str(work.id))
    expected = {"T": students_of, "S": open_work, "P": children_of}
    for kind, token, user_id, others in (line.split("\t") for line in path.read_text().splitlines()):
        assert token == f"token-{user_id}"
        assert set(others.split(",")) == expected[kind][user_id] != set()


def test_each_run_schedules_its_lessons_in_whole_hours_of_a_window_of_its_own() -> None:
    first, second = workload.slot_base(AS_OF, 0), workload.slot_base(AS_OF, 1)
    assert first % 3600 == 0 and second % 3600 == 0
    assert first >= (AS_OF + timedelta(days=400) - timedelta(hours=1)).timestamp()
    assert second - first == workload.LESSON_SLOTS_PER_RUN.total_seconds()


def test_the_wrk_command_paces_each_thread_at_its_share_of_the_rate() -> None:
    command = workload.wrk_command("wrk", "http://gw", Path("/u.tsv"), rate=150, seconds=25, threads=2, slot_base=7)
    assert command[:4] == ["wrk", "-t2", "-c150", "-d25s"]
    assert command[command.index("--") + 1 :] == ["75", "/u.tsv", workload.mix_argument(), "2", "7"]
    assert workload.connections_for(3) == 16 and workload.connections_for(5000) == 1024


# --- settings and report ---------------------------------------------------------------------------


def test_the_settings_default_to_the_issues_world_and_five_minutes_of_measuring() -> None:
    settings = CapacitySettings.from_environment({})
    assert (settings.tutors, settings.students_per_tutor, settings.p99_below_ms) == (200, 25, 300)
    assert settings.warmup_seconds + settings.max_steps * settings.step_seconds <= 300
    assert CapacitySettings.from_environment({"BENCH_QUICK": "1"}).quick
    assert CapacitySettings.from_environment({"BENCH_CAPACITY_TUTORS": "3"}).tutors == 3
    assert CapacitySettings.from_environment({"BENCH_CAPACITY_RETRIES": "0"}).retries == 0
    for bad in (
        {"BENCH_CAPACITY_TUTORS": "0"},
        {"BENCH_THREADS": "two"},
        {"BENCH_CAPACITY_RETRIES": "-1"},
        {"BENCH_CAPACITY_BUDGET_SECONDS": "20"},
    ):
        with pytest.raises(ValueError):
            CapacitySettings.from_environment(bad)


def test_the_report_names_the_highest_rate_that_held_and_every_step() -> None:
    _, mix = workload.parse_output(MIXED_OUTPUT)
    cores = {"api-gateway": 0.9, "lesson-service": 0.4, "postgres": 0.3, "wrk": 0.1, "softirq": 0.05, "other": 0.0}
    held = StepRecord(60, 25, wrk_result(rps=60.0), mix, cores, [], drain_seconds=2.0)
    failed = StepRecord(90, 25, wrk_result(rps=90.0, p99=450.0), mix, cores, ["p99 450 ms >= 300 ms"])
    disturbed = StepRecord(90, 25, wrk_result(p99=900.0), mix, {**cores, "other": 0.4}, ["p99 900 ms"], True)
    report = CapacityReport(AS_OF, CapacitySettings(), {"nproc": 2, "cpu_model": "test", "memory_gib": 4})
    report.steps, report.discarded, report.best_rate = [held, failed, held], [disturbed], 60
    text = report.render()
    assert "Highest rate held: 60 req/s (p99 < 300 ms, 0 errors, in each of its 2 steps)\n" in text + "\n"
    assert "| 90 | 90 |" in text and "failed: p99 450 ms >= 300 ms" in text and "not in time" in text
    assert "| 60 req/s | 0.90 | 0.40 | 0.30 |" in text
    assert "measured again: 90 req/s (p99 900 ms, other programs 0.40 cores)" in text
    data = json.loads(json.dumps(report.as_dict()))
    assert data["highest_rate_held"] == 60 and data["measured_seconds"] == 100
    assert data["discarded_steps"][0]["disturbed"] is True


def test_a_report_whose_steps_all_held_says_the_capacity_is_higher() -> None:
    _, mix = workload.parse_output(MIXED_OUTPUT)
    report = CapacityReport(AS_OF, CapacitySettings(), {"nproc": 2})
    report.steps = [StepRecord(rate, 25, wrk_result(rps=rate), mix, {}, []) for rate in (40, 60)]
    report.best_rate = 60
    assert report.render().endswith(
        "60 req/s (p99 < 300 ms, 0 errors); no step failed before the steps ran out, so the capacity is higher than this"
    )
