"""GET/PUT /api/v1/notifications/preferences: the caller's own, an admin reads anyone's; every field
validated with a 422 naming it."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from services.notification_service.domain.delivery import KINDS
from services.notification_service.tests.conftest import Events, prefer

URL = "/api/v1/notifications/preferences"


async def test_defaults_then_a_round_trip(client: httpx.AsyncClient, events: Events) -> None:
    family = await events.family()
    first = await client.get(URL, headers=family.parent.headers)
    assert first.status_code == 200, first.text
    assert first.json() == {
        "user_id": family.parent.id,
        "timezone": "Asia/Tokyo",
        "enabled_kinds": list(KINDS),
        "quiet_hours": None,
        "language": None,
        "reminder_offsets_minutes": None,
        "kinds": list(KINDS),
    }

    chosen = {
        "enabled_kinds": ["lesson_reminder", "balance_low", "balance_low"],
        "quiet_hours": {"start": "22:30", "end": "07:00"},
        "language": "ru",
        "reminder_offsets_minutes": [120, 30],
    }
    saved = await prefer(client, family.parent, **chosen)
    again = (await client.get(URL, headers=family.parent.headers)).json()
    assert saved == again
    assert again["enabled_kinds"] == ["lesson_reminder", "balance_low"]  # duplicates dropped
    assert again["quiet_hours"] == {"start": "22:30", "end": "07:00"}
    assert again["language"] == "ru" and again["reminder_offsets_minutes"] == [120, 30]

    # PUT replaces: what is left out goes back to its default
    assert await prefer(client, family.parent) == first.json()


async def test_a_user_the_service_has_not_heard_of_yet_can_save_theirs(
    client: httpx.AsyncClient, events: Events
) -> None:
    newcomer = events.person("student")
    saved = await prefer(client, newcomer, language="en")
    assert saved["language"] == "en" and saved["timezone"] == "UTC"
    await events.register(newcomer, timezone="Europe/Berlin")  # the user's facts arrive later, the choice stays
    after = (await client.get(URL, headers=newcomer.headers)).json()
    assert after["language"] == "en" and after["timezone"] == "Europe/Berlin"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"enabled_kinds": ["lesson_reminder", "spam"]}, "enabled_kinds.1"),
        ({"quiet_hours": {"start": "24:00", "end": "07:00"}}, "quiet_hours.start"),
        ({"quiet_hours": {"start": "22:00", "end": "7"}}, "quiet_hours.end"),
        ({"quiet_hours": {"start": "22:00", "end": "22:00"}}, "quiet_hours"),
        ({"language": "de"}, "language"),
        ({"reminder_offsets_minutes": [0]}, "reminder_offsets_minutes.0"),
        ({"reminder_offsets_minutes": [10_081]}, "reminder_offsets_minutes.0"),
        ({"reminder_offsets_minutes": [1, 2, 3, 4, 5, 6]}, "reminder_offsets_minutes"),
        ({"reminder_offsets_minutes": []}, "reminder_offsets_minutes"),
        ({"colour": "blue"}, "colour"),
    ],
)
async def test_bad_input_is_422_naming_the_field(
    client: httpx.AsyncClient, events: Events, body: dict[str, Any], field: str
) -> None:
    student = events.person("student")
    response = await client.put(URL, json=body, headers=student.headers)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in {d["field"] for d in error["details"]}, error
    assert "Traceback" not in response.text


async def test_an_admin_reads_anyones_and_nobody_else_does(client: httpx.AsyncClient, events: Events) -> None:
    family = await events.family()
    await prefer(client, family.student, language="en")
    admin = events.person("admin")
    read = await client.get(URL, params={"user_id": family.student.id}, headers=admin.headers)
    assert read.status_code == 200 and read.json()["language"] == "en", read.text
    assert (await client.get(URL, params={"user_id": str(uuid.uuid4())}, headers=admin.headers)).status_code == 404
    for other in (family.tutor, family.parent):  # even their tutor and parent: preferences are the user's own
        refused = await client.get(URL, params={"user_id": family.student.id}, headers=other.headers)
        assert refused.status_code == 404, refused.text
    own = await client.get(URL, params={"user_id": family.student.id}, headers=family.student.headers)
    assert own.status_code == 200
    assert (await client.get(URL)).status_code == 401
