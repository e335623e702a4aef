"""The leaderboard among one tutor's students: lesson, homework and correction XP only, weekly (the
last 7 days) and all-time, hidden students, the neighbours view, anonymised names, who sees which board."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from services.student_service.domain.leaderboard import Entry, Member, anonymise, neighbours, rank
from services.student_service.tests.conftest import NOW, Events
from services.student_service.tests.test_awards import completed, graded, linked, top_up, viewed
from shared.events.catalogue import UserRegistered
from shared.testing.service import People, Person

URL = "/api/v1/students/leaderboard"


def test_rank_gives_equal_xp_equal_rank_and_leaves_hidden_students_out_but_the_viewer() -> None:
    a, b, c, d = (uuid.UUID(int=n) for n in range(1, 5))
    members = [Member(a, "A", 50, True), Member(b, "B", 90, True), Member(c, None, 50, True), Member(d, "D", 70, False)]
    assert [(e.rank, e.name, e.xp) for e in rank(members, None)] == [(1, "B", 90), (2, "A", 50), (2, "Student #3", 50)]
    # the hidden viewer sees themself where they would stand
    seen_by_d = rank(members, d)
    assert [(e.rank, e.name, e.you) for e in seen_by_d] == [
        (1, "B", False),
        (2, "D", True),
        (3, "A", False),
        (3, "Student #4", False),
    ]
    assert [(e.student_id, e.name) for e in anonymise(seen_by_d)] == [
        (None, "Student #1"),
        (d, "D"),
        (None, "Student #3"),
        (None, "Student #4"),
    ]


def test_neighbours_are_two_places_either_side_of_the_viewer() -> None:
    entries = [Entry(n, uuid.UUID(int=n), str(n), 100 - n, you=n == 4) for n in range(1, 9)]
    assert [e.rank for e in neighbours(entries)] == [2, 3, 4, 5, 6]
    first = [Entry(n, uuid.UUID(int=n), str(n), 100 - n, you=n == 1) for n in range(1, 9)]
    assert [e.rank for e in neighbours(first)] == [1, 2, 3]
    assert neighbours([Entry(1, None, "x", 1, you=False)]) == []


async def board(client: httpx.AsyncClient, who: Person, **params: Any) -> dict[str, Any]:
    response = await client.get(URL, params=params, headers=who.headers)
    assert response.status_code == 200, response.text
    return response.json()


def rows(answer: dict[str, Any]) -> list[tuple[int, str, int]]:
    return [(item["rank"], item["name"], item["xp"]) for item in answer["items"]]


@pytest.fixture
async def practice(client: httpx.AsyncClient, events: Events, people: People) -> dict[str, Person]:
    """One tutor's students with XP of every kind; another tutor's student with more."""
    tutor = people.tutor()
    s = {name: people.student_of(tutor) for name in "ABCDEF"}
    other_tutor = people.tutor()
    outsider = people.student_of(other_tutor)
    recent, old = NOW - timedelta(hours=1), NOW - timedelta(days=10)
    await events.send(
        *(events.wrap(linked(tutor, student)) for student in s.values()),
        events.wrap(linked(other_tutor, outsider)),
        events.wrap(
            UserRegistered(
                user_id=uuid.UUID(s["B"].id), role="student", full_name="Boris Brown", timezone="UTC", language="en"
            )
        ),
    )
    await events.send(
        events.wrap(completed(tutor, s["A"], grade=5), occurred_at=recent),  # 200
        events.wrap(graded(tutor, s["B"], 5), occurred_at=recent),  # 100
        events.wrap(top_up(tutor, s["B"], 10, uuid.uuid4()), occurred_at=recent),  # 500: never counts
        events.wrap(viewed(tutor, s["B"], uuid.uuid4()), occurred_at=recent),  # 25: not lesson or homework
        events.wrap(completed(tutor, s["C"]), occurred_at=old),  # 100, ten days ago
        events.wrap(completed(tutor, s["D"], grade=5, lesson_type="exam_prep"), occurred_at=recent),  # 300, hidden
        events.wrap(completed(other_tutor, outsider, grade=5), occurred_at=recent),
    )
    for body in (
        {"amount": 500, "reason": "a bonus does not count"},
        {"amount": 30, "reason": "fix", "kind": "correction"},
    ):
        response = await client.post(f"/api/v1/students/{s['E'].id}/xp-adjustments", json=body, headers=tutor.headers)
        assert response.status_code == 201, response.text
    named = await client.patch("/api/v1/students/me/profile", json={"display_name": "Ann"}, headers=s["A"].headers)
    hidden = await client.patch(
        "/api/v1/students/me/profile", json={"leaderboard_visible": False}, headers=s["D"].headers
    )
    assert named.status_code == hidden.status_code == 200
    return {"tutor": tutor, "other_tutor": other_tutor, "outsider": outsider, **s}


async def test_the_tutors_board_weekly_and_all_time(client: httpx.AsyncClient, practice: dict[str, Person]) -> None:
    p = practice
    weekly = await board(client, p["tutor"])
    assert weekly["period"] == "weekly" and weekly["tutor_id"] == p["tutor"].id
    assert weekly["since"].startswith((NOW - timedelta(days=7)).isoformat()[:19])
    # D is hidden; B's top-up and material view and E's bonus do not count; C's lesson is older than 7 days
    assert rows(weekly)[:3] == [(1, "Ann", 200), (2, "Boris Brown", 100), (3, "Student #3", 30)]  # E has no name yet
    assert [r[0] for r in rows(weekly)] == [1, 2, 3, 4, 4] and [r[2] for r in rows(weekly)] == [200, 100, 30, 0, 0]
    ids = [item["student_id"] for item in weekly["items"]]
    assert ids[:3] == [p["A"].id, p["B"].id, p["E"].id] and set(ids[3:]) == {p["C"].id, p["F"].id}
    assert p["D"].id not in ids and p["outsider"].id not in ids
    assert not any(item["you"] for item in weekly["items"])

    all_time = await board(client, p["tutor"], period="all_time")
    assert all_time["since"] is None
    # C's old lesson counts now: B and C share second place
    assert [(r[0], r[2]) for r in rows(all_time)] == [(1, 200), (2, 100), (2, 100), (4, 30), (5, 0)]
    assert {item["student_id"] for item in all_time["items"][1:3]} == {p["B"].id, p["C"].id}
    assert [r[0] for r in rows(all_time)] == [1, 2, 2, 4, 5]


async def test_students_see_their_tutors_board_hidden_ones_only_themselves(
    client: httpx.AsyncClient, practice: dict[str, Person]
) -> None:
    p = practice
    as_b = await board(client, p["B"])
    assert as_b["tutor_id"] == p["tutor"].id
    assert [item["student_id"] for item in as_b["items"]] == [
        item["student_id"] for item in (await board(client, p["tutor"]))["items"]
    ]
    assert [item["you"] for item in as_b["items"]][:2] == [False, True]

    as_d = await board(client, p["D"])  # hidden: first place, for their own eyes only
    assert (as_d["items"][0]["student_id"], as_d["items"][0]["rank"], as_d["items"][0]["you"]) == (p["D"].id, 1, True)
    assert [item["rank"] for item in as_d["items"]] == [1, 2, 3, 4, 5, 5]

    near_a = await board(client, p["A"], view="neighbours")
    assert [item["student_id"] for item in near_a["items"]] == [p["A"].id, p["B"].id, p["E"].id]
    near_e = await board(client, p["E"], view="neighbours")
    assert len(near_e["items"]) == 5 and near_e["items"][2]["student_id"] == p["E"].id
    assert near_e["view"] == "neighbours"


async def test_anonymised_names_for_students_when_the_tutor_chooses(
    client: httpx.AsyncClient, practice: dict[str, Person]
) -> None:
    p = practice
    settings_url = f"{URL}/settings"
    assert (await client.get(settings_url, headers=p["tutor"].headers)).json() == {
        "tutor_id": p["tutor"].id,
        "anonymise": False,
    }
    changed = await client.put(settings_url, json={"anonymise": True}, headers=p["tutor"].headers)
    assert changed.status_code == 200 and changed.json()["anonymise"] is True

    as_b = await board(client, p["B"])
    assert as_b["anonymised"] is True
    assert [(item["student_id"], item["name"]) for item in as_b["items"]][:3] == [
        (None, "Student #1"),
        (p["B"].id, "Boris Brown"),
        (None, "Student #3"),
    ]
    assert all(item["student_id"] is None for item in as_b["items"] if not item["you"])
    as_tutor = await board(client, p["tutor"])  # the tutor knows their students
    assert as_tutor["items"][0]["name"] == "Ann" and as_tutor["items"][0]["student_id"] == p["A"].id

    assert (await client.put(settings_url, json={"anonymise": "yes"}, headers=p["tutor"].headers)).status_code == 422
    assert (await client.put(settings_url, json={"anonymise": False}, headers=p["B"].headers)).status_code == 403
    await client.put(settings_url, json={"anonymise": False}, headers=p["tutor"].headers)
    assert (await board(client, p["B"]))["items"][0]["name"] == "Ann"


async def test_who_sees_which_board(client: httpx.AsyncClient, people: People, practice: dict[str, Person]) -> None:
    p = practice
    tutor_id = p["tutor"].id
    assert (await client.get(URL, params={"tutor_id": tutor_id}, headers=p["other_tutor"].headers)).status_code == 404
    assert (await client.get(URL, params={"tutor_id": tutor_id}, headers=p["outsider"].headers)).status_code == 404
    parent = people.parent_of(p["A"])
    assert (await client.get(URL, headers=parent.headers)).status_code == 403
    admin = people.admin()
    needs_tutor = await client.get(URL, headers=admin.headers)
    assert needs_tutor.status_code == 422 and needs_tutor.json()["error"]["details"][0]["field"] == "tutor_id"
    assert [i["xp"] for i in (await board(client, admin, tutor_id=tutor_id))["items"]] == [200, 100, 30, 0, 0]
    mine = await board(client, p["tutor"], tutor_id=tutor_id)
    assert len(mine["items"]) == 5
    for params, field in (
        ({"view": "neighbours"}, "view"),
        ({"period": "monthly"}, "period"),
        ({"view": "top"}, "view"),
    ):
        response = await client.get(URL, params=params, headers=p["tutor"].headers)
        assert response.status_code == 422 and response.json()["error"]["details"][0]["field"] == field, response.text
    assert (await client.get(URL)).status_code == 401
