"""Schema-driven fuzzing of every endpoint through the gateway (issue 9, "Security").

The gateway's combined ``/openapi.json`` (every service's paths, merged) is loaded into
schemathesis, and every operation in it gets ``FUZZ_EXAMPLES`` generated requests through
the test fleet's gateway: valid ones and, for operations that take input (a token counts),
ones that break the schema on purpose (schemathesis' negative mode: wrong types, missing
fields, no token...). Every response must

- not be a server error (``not_a_server_error``: bad input is 4xx, never 5xx),
- have a documented status (``status_code_conformance``), and
- match the schema documented for its status (``response_schema_conformance``) and its media
  type (``content_type_conformance``). 2xx answers have their response models; every 422, 4XX
  and 5XX answer is documented as the one error shape (shared/errors.py), so error bodies are
  checked too.

To get past 401 into the handlers, every request carries a real token: a tutor's, or a
student's of that tutor, drawn per example. Half the examples put the ids of that tutor's
real student, lesson, homework and material in place of generated ones (in the path, the
query and a JSON body's ``student_id``, ``material_ids``...), so handlers run on rows that
exist, not only 404. An operation that never got past 401 fails the test.

The gateway limits each user, and each address without a token, to ``RATE_LIMIT_REQUESTS``
per minute (100 in the test fleet, as in production): the fuzzer moves on to a fresh tutor,
student and loopback address (a new "world") before any of them runs out, and after it
deleted one of the world's rows. A 429 fails the test, since it would hide what the handler does.

Sizes follow ``PROOF_SCALE`` (shared/testing/scale.py): ``proof_scale() // 20`` examples per
operation, at least 3 (10 in CI, 50 in ``make soak``). Hypothesis is derandomised (the same
requests every run), keeps no example database and does not shrink, so a run is bounded; a
failure prints the request as a curl command.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from shared.testing.accounts import Account, invite, register
from shared.testing.fleet import TestFleet
from shared.testing.scale import proof_scale

FUZZ_EXAMPLES = max(3, proof_scale() // 20)
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, content_type_conformance]
# requests left to an account (or an address) before the fuzzer moves to a fresh world
SPARE_REQUESTS = 5
REQUEST_TIMEOUT_SECONDS = 15

HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch"})

pytestmark = [pytest.mark.proof, pytest.mark.timeout(max(300, 6 * FUZZ_EXAMPLES))]


class _FromAddress(requests.adapters.HTTPAdapter):
    """Connections from one loopback address: the gateway counts anonymous requests per address."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


@dataclass
class World:
    """A tutor with one student, a lesson, a homework and a material of theirs (real ids to fuzz
    with), and a loopback address of its own for the requests that go without a token."""

    tutor: Account
    student: Account
    ids: dict[str, str]
    session: requests.Session  # from the world's own address
    remaining: dict[str, int] = field(default_factory=dict)  # tutor/student/address → requests left
    retired: bool = False  # one of its rows was deleted

    def account(self, role: str) -> Account:
        return self.tutor if role == "tutor" else self.student

    def spent(self) -> bool:
        return self.retired or any(left <= SPARE_REQUESTS for left in self.remaining.values())


def _address(number: int) -> str:
    """World ``number``'s loopback address (127.0.0.0/8 is all loopback; other modules use 127.0.0.x)."""
    return f"127.9.{number // 250}.{number % 250 + 1}"


async def _new_world(base_url: str, number: int) -> World:
    transport = httpx.AsyncHTTPTransport(local_address=_address(number))
    async with httpx.AsyncClient(base_url=base_url, transport=transport, timeout=REQUEST_TIMEOUT_SECONDS) as gateway:
        tutor = await register(gateway, f"fuzz tutor {number}")
        student = await register(gateway, f"fuzz student {number}", await invite(gateway, tutor, "student"))
        soon = (datetime.now(UTC) + timedelta(days=30 + number)).replace(hour=12, minute=0, second=0, microsecond=0)

        async def created(path: str, **kwargs: Any) -> dict[str, Any]:
            response = await gateway.post(path, headers=tutor.headers, **kwargs)
            assert response.status_code in (200, 201), f"{path}: {response.status_code} {response.text}"
            return dict(response.json())

        lesson = await created(
            "/api/v1/lessons",
            json={"student_id": student.id, "starts_at": soon.isoformat(), "duration_minutes": 60, "subject": "Maths"},
        )
        homework = await created(
            "/api/v1/homework",
            json={"student_id": student.id, "title": "Exercises", "due_at": soon.isoformat()},
        )
        material = await created(
            "/api/v1/materials",
            data={"title": "Worksheet"},
            files={"file": ("worksheet.txt", b"1 + 1 = ?\n", "text/plain")},
        )
        await created(f"/api/v1/materials/{material['id']}/share", json={"student_ids": [student.id]})
    ids = {
        "student_id": student.id,
        "user_id": student.id,
        "tutor_id": tutor.id,
        "lesson_id": lesson["id"],
        "homework_id": homework["id"],
        "material_id": material["id"],
    }
    session = requests.Session()
    session.mount("http://", _FromAddress(_address(number)))
    return World(tutor, student, ids, session)


class Worlds:
    """The current world, and a fresh one whenever an account of it is about to be throttled."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.made = 0
        self._current: World | None = None

    def current(self) -> World:
        if self._current is None or self._current.spent():
            self.close()
            self.made += 1
            self._current = asyncio.run(_new_world(self.base_url, self.made))
        return self._current

    def close(self) -> None:
        if self._current is not None:
            self._current.session.close()


@dataclass
class Run:
    requests: int = 0
    statuses: dict[str, dict[int, int]] = field(default_factory=dict)  # operation → status → count
    failures: list[str] = field(default_factory=list)

    def answered(self, operation: str, status: int) -> None:
        self.requests += 1
        counts = self.statuses.setdefault(operation, {})
        counts[status] = counts.get(status, 0) + 1

    def totals(self) -> dict[int, int]:
        totals: dict[int, int] = {}
        for counts in self.statuses.values():
            for status, count in counts.items():
                totals[status] = totals.get(status, 0) + count
        return dict(sorted(totals.items()))


@pytest.fixture(scope="module")
def document(fleet: TestFleet) -> dict[str, Any]:
    with fleet.sync_client("api-gateway") as gateway:
        response = gateway.get("/openapi.json")
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    assert set(document["x-services"].values()) == {"current"}, document["x-services"]
    return document


def _operations(schema: schemathesis.BaseSchema) -> Iterator[schemathesis.APIOperation]:
    for result in schema.get_all_operations():
        yield result.ok()  # a part of the document schemathesis cannot read fails here


def _takes_input(operation: schemathesis.APIOperation) -> bool:
    return bool(list(operation.iter_parameters())) or bool(operation.body)


def _use_real_ids(case: schemathesis.Case, world: World) -> None:
    """The world's ids in place of generated ones: in the path, the query and a JSON body's fields."""
    containers = [case.path_parameters, case.query, case.body if isinstance(case.body, dict) else None]
    for container in containers:
        for name in list(container or ()):
            if name in world.ids:
                container[name] = world.ids[name]  # type: ignore[index]
            elif name.endswith("_ids") and name[:-1] in world.ids:  # student_ids, material_ids
                container[name] = [world.ids[name[:-1]]]  # type: ignore[index]


def _fuzz(operation: schemathesis.APIOperation, worlds: Worlds, base_url: str, run: Run) -> None:
    strategy = operation.as_strategy(GenerationMode.POSITIVE)
    if _takes_input(operation):
        strategy = st.one_of(strategy, operation.as_strategy(GenerationMode.NEGATIVE))

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: a bounded run; the failing request is printed
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
        report_multiple_bugs=False,
    )
    @given(case=strategy, role=st.sampled_from(("tutor", "student")), real_ids=st.booleans())
    def fuzz(case: schemathesis.Case, role: str, real_ids: bool) -> None:
        world = worlds.current()
        if real_ids:
            _use_real_ids(case, world)
        headers = world.account(role).headers
        response = case.call(base_url=base_url, session=world.session, headers=headers, timeout=REQUEST_TIMEOUT_SECONDS)
        run.answered(operation.label, response.status_code)
        if real_ids and case.method.upper() == "DELETE" and response.status_code < 300:
            world.retired = True  # a real row (the student's link, the material) is gone: fresh ids from here
        left = response.headers.get("x-ratelimit-remaining")
        if left:
            # without a token (schemathesis' negative cases drop it) the request counted for the address
            who = role if "Authorization" in response.request.headers else "address"
            world.remaining[who] = int(left[0])
        assert response.status_code != 429, f"throttled: the fuzzer should have moved to a fresh world: {response.text}"
        case.validate_response(response, checks=CHECKS, headers=headers)

    try:
        fuzz()
    except (Exception, BaseExceptionGroup) as failure:  # every operation is fuzzed; failures are reported together
        run.failures.append(f"{operation.label}: {failure}")


def test_every_operation_survives_fuzzing_through_the_gateway(fleet: TestFleet, document: dict[str, Any]) -> None:
    schema = schemathesis.openapi.from_dict(document, config=schemathesis.Config())
    base_url = fleet.url("api-gateway")
    worlds, run = Worlds(base_url), Run()
    try:
        for operation in _operations(schema):
            _fuzz(operation, worlds, base_url, run)
    finally:
        worlds.close()
    print(
        f"fuzzed {len(run.statuses)} operations, up to {FUZZ_EXAMPLES} examples each: {run.requests} requests "
        f"as {worlds.made} tutor/student pairs; statuses {json.dumps(run.totals())}"
    )
    assert not run.failures, "\n\n".join(run.failures)
    paths = document["paths"]
    documented = {
        f"{method.upper()} {path}" for path, item in paths.items() for method in item if method in HTTP_METHODS
    }
    assert set(run.statuses) == documented
    only_401 = sorted(label for label, counts in run.statuses.items() if set(counts) == {401})
    assert only_401 == [], "these never got past authentication"
