"""The workload: which requests, in what shares, as whom; the users file wrk's script reads; the wrk command.

:data:`MIX` lists the operations with their shares of 100 requests (85 reads, 15 writes); each request is
made as a random seeded user of the operation's role. The reads are what the bot and the web app ask
most: a week's schedule, a balance, the profile, the homework list. The writes go through the whole
event path: a scheduled lesson is announced to payment-, notification- and analytics-service, a top-up
to student- (XP), notification- and analytics-service, a hand-in to student-, notification- and
analytics-service.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.gateway.wrk import RESULT_MARKER, WrkError, WrkResult, parse_wrk_output
from shared.seeding import World

LUA_SCRIPT = Path(__file__).resolve().parent / "lua" / "mixed.lua"
CAPACITY_MARKER = "CAPACITY_RESULT "
TIMEOUT_SECONDS = 5  # wrk --timeout: an answer slower than this is a timeout error
LESSON_SLOTS_FROM = timedelta(days=400)  # new lessons start this far after the world's now...
LESSON_SLOTS_PER_RUN = timedelta(days=60)  # ...each wrk run in a window of its own


@dataclass(frozen=True)
class Operation:
    name: str  # the key in mixed.lua's `operations`
    weight: int
    role: str  # tutor, student, parent
    write: bool
    request: str


MIX: tuple[Operation, ...] = (
    Operation("student_schedule", 17, "student", False, "GET /api/v1/lessons/schedule (this week)"),
    Operation("tutor_schedule", 8, "tutor", False, "GET /api/v1/lessons/schedule (this week)"),
    Operation("parent_schedule", 2, "parent", False, "GET /api/v1/lessons/schedule (this week)"),
    Operation("student_balance", 10, "student", False, "GET /api/v1/payments/balances/{own id}"),
    Operation("tutor_balance", 6, "tutor", False, "GET /api/v1/payments/balances/{a student's id}"),
    Operation("parent_balance", 3, "parent", False, "GET /api/v1/payments/balances/{a child's id}"),
    Operation("student_profile", 12, "student", False, "GET /api/v1/students/me/profile"),
    Operation("student_homework", 10, "student", False, "GET /api/v1/homework"),
    Operation("tutor_homework", 5, "tutor", False, "GET /api/v1/homework (first page of 50)"),
    Operation("tutor_students", 4, "tutor", False, "GET /api/v1/users/students"),
    Operation("student_me", 8, "student", False, "GET /api/v1/users/me"),
    Operation("schedule_lesson", 5, "tutor", True, "POST /api/v1/lessons (a student of theirs, a free hour)"),
    Operation("top_up", 4, "tutor", True, "POST /api/v1/payments/top-ups (1,500 RUB, cash)"),
    Operation("submit_homework", 6, "student", True, "POST /api/v1/homework/{an open one}/submissions"),
)
assert sum(op.weight for op in MIX) == 100


def mix_table(mix: tuple[Operation, ...] = MIX) -> str:
    """The mix as a Markdown table's rows."""
    return "\n".join(f"| {op.name} | {op.role}: `{op.request}` | {op.weight} |" for op in mix)


def mix_argument(mix: tuple[Operation, ...] = MIX) -> str:
    """The mix as mixed.lua reads it: ``name=weight,...``."""
    return ",".join(f"{op.name}={op.weight}" for op in mix)


def write_users_file(path: Path, world: World, tokens: Mapping[uuid.UUID, str]) -> dict[str, int]:
    """One line per seeded user with their token and what they act on (mode 0600: it holds tokens);
    the lines written per role."""
    open_homework: dict[uuid.UUID, list[str]] = {}
    for work in world.homework:
        if work.status != "graded":
            open_homework.setdefault(work.student_id, []).append(str(work.id))
    lines: list[str] = []
    counts = {"tutor": 0, "student": 0, "parent": 0}
    for tutor in world.tutors:
        lines.append(_line("T", tokens[tutor.id], tutor.id, world.students_of.get(tutor.id, [])))
        counts["tutor"] += 1
    for student in world.students:
        if student.id in open_homework:  # every seeded student has one; a student without any is left out
            lines.append(_line("S", tokens[student.id], student.id, open_homework[student.id]))
            counts["student"] += 1
    children: dict[uuid.UUID, list[uuid.UUID]] = {}
    for student_id, parents in world.parents_of.items():
        for parent_id in parents:
            children.setdefault(parent_id, []).append(student_id)
    for parent in world.parents:
        lines.append(_line("P", tokens[parent.id], parent.id, children.get(parent.id, [])))
        counts["parent"] += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return counts


def _line(kind: str, token: str, user_id: uuid.UUID, others: list[Any]) -> str:
    if not others:
        raise ValueError(f"{kind} {user_id} has nothing to act on")
    return "\t".join((kind, token, str(user_id), ",".join(str(other) for other in others)))


def slot_base(as_of: datetime, run_index: int) -> int:
    """Epoch seconds from which run ``run_index`` schedules its lessons (whole hours, far from the seeded ones)."""
    start = (as_of + LESSON_SLOTS_FROM + run_index * LESSON_SLOTS_PER_RUN).replace(minute=0, second=0, microsecond=0)
    return int(start.timestamp())


def connections_for(rate: int) -> int:
    """Enough connections that one is free whenever a request's turn comes while answers take up to a
    second on average (a step that slow has failed anyway)."""
    return max(16, min(1024, rate))


def wrk_command(
    wrk: str, url: str, users_file: Path, *, rate: int, seconds: int, threads: int, slot_base: int
) -> list[str]:
    """The paced wrk run: ``rate`` requests per second in all, over ``threads`` threads."""
    connections = connections_for(rate)
    threads = min(threads, connections)
    return [
        wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", f"{TIMEOUT_SECONDS}s",
        "-s", str(LUA_SCRIPT), url,
        "--", f"{rate / threads:g}", str(users_file), mix_argument(), str(threads), str(slot_base),
    ]  # fmt: skip


@dataclass(frozen=True)
class MixResult:
    """What mixed.lua counted: requests per operation, answers per status and a body per non-2xx status."""

    sent: dict[str, int]
    statuses: dict[int, int]
    samples: dict[int, str]

    @property
    def non_2xx(self) -> int:
        return sum(count for status, count in self.statuses.items() if not 200 <= status < 300)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sent": dict(sorted(self.sent.items())),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "samples": {str(k): v for k, v in sorted(self.samples.items())},
        }


def parse_output(output: str) -> tuple[WrkResult, MixResult]:
    """wrk's stdout with mixed.lua: the ``BENCH_RESULT`` numbers and the ``CAPACITY_RESULT`` counts."""
    wrk_result = parse_wrk_output(output)
    lines = [line for line in output.splitlines() if line.startswith(CAPACITY_MARKER)]
    if len(lines) != 1:
        raise WrkError(f"{len(lines)} {CAPACITY_MARKER.strip()} lines in wrk's output (one {RESULT_MARKER.strip()})")
    try:
        raw = json.loads(lines[0].removeprefix(CAPACITY_MARKER))
        mix = MixResult(
            sent={str(name): int(count) for name, count in raw["sent"].items()},
            statuses={int(status): int(count) for status, count in raw["statuses"].items()},
            samples={int(status): str(body) for status, body in raw["samples"].items()},
        )
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise WrkError(f"unreadable {CAPACITY_MARKER.strip()} line ({error!r}): {lines[0][:300]}") from error
    return wrk_result, mix
