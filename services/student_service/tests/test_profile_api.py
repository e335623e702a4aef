"""The student's own settings (display name, leaderboard visibility) and the XP history a page at a time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx

from services.student_service.tests.conftest import Events, profile_of
from services.student_service.tests.test_awards import linked, viewed
from shared.testing.service import People


async def test_a_student_sets_their_display_name_and_visibility(
    client: httpx.AsyncClient, events: Events, people: People
) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    await events.send(events.wrap(linked(tutor, student)))
    url = "/api/v1/students/me/profile"

    changed = await client.patch(url, json={"display_name": "  Ann K.  "}, headers=student.headers)
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"student_id": student.id, "display_name": "Ann K.", "leaderboard_visible": True}
    hidden = await client.patch(url, json={"leaderboard_visible": False}, headers=student.headers)
    assert hidden.json() == {"student_id": student.id, "display_name": "Ann K.", "leaderboard_visible": False}
    assert (await profile_of(client, student, viewer=tutor))["display_name"] == "Ann K."

    cleared = await client.patch(url, json={"display_name": None}, headers=student.headers)
    assert cleared.json()["display_name"] is None and cleared.json()["leaderboard_visible"] is False


async def test_bad_profile_changes_are_422_naming_the_field_and_others_may_not(
    client: httpx.AsyncClient, events: Events, people: People
) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    await events.send(events.wrap(linked(tutor, student)))
    url = "/api/v1/students/me/profile"
    for body, field in (
        ({"display_name": "   "}, "display_name"),
        ({"display_name": "x" * 51}, "display_name"),
        ({"display_name": "bad\nname"}, "display_name"),
        ({"leaderboard_visible": "yes"}, "leaderboard_visible"),
        ({"xp": 1_000_000}, "xp"),
    ):
        response = await client.patch(url, json=body, headers=student.headers)
        assert response.status_code == 422, (body, response.text)
        error = response.json()["error"]
        assert field in str(error["details"]), error
    assert (await profile_of(client, student))["display_name"] is None

    assert (await client.patch(url, json={"display_name": "T"}, headers=tutor.headers)).status_code == 403
    no_profile = people.student_of(tutor)  # no student.linked yet: nothing to change
    assert (await client.patch(url, json={"display_name": "N"}, headers=no_profile.headers)).status_code == 404


async def test_the_xp_history_pages_through_every_row_once_even_with_equal_times(
    client: httpx.AsyncClient, events: Events, people: People
) -> None:
    tutor = people.tutor()
    student = people.student_of(tutor)
    await events.send(events.wrap(linked(tutor, student)))
    same_time = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    await events.send(
        *(events.wrap(viewed(tutor, student, uuid.uuid4()), occurred_at=same_time) for _ in range(5)),
        events.wrap(viewed(tutor, student, uuid.uuid4()), occurred_at=datetime(2026, 3, 1, 13, 0, tzinfo=UTC)),
    )
    url = f"/api/v1/students/{student.id}/xp"

    pages, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        response = await client.get(url, params=params, headers=tutor.headers)
        assert response.status_code == 200, response.text
        pages.append(response.json()["items"])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [2, 2, 2]
    items = [item for page in pages for item in page]
    assert len({item["id"] for item in items}) == 6
    assert items[0]["occurred_at"].startswith("2026-03-01T13:00")  # newest first
    everything = (await client.get(url, params={"limit": 200}, headers=tutor.headers)).json()
    assert everything["items"] == items and everything["next_cursor"] is None

    bad = await client.get(url, params={"cursor": "not-a-cursor"}, headers=tutor.headers)
    assert bad.status_code == 422 and "cursor" in str(bad.json()["error"]["details"])
    assert (await client.get(url, params={"limit": 201}, headers=tutor.headers)).status_code == 422
