"""GET/PUT /api/v1/notifications/preferences: the caller's own, an admin reads anyone's; every field
validated with a 422 naming it."""

from __future__ import annotations

import asyncio
import importlib
import json
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import asyncpg
import httpx
import pytest
from alembic import command

from services.notification_service.domain.delivery import KINDS, decide
from services.notification_service.tests.conftest import Events, prefer
from shared.fleet import by_name
from shared.migrations import alembic_config, upgrade
from shared.testing import infra

KINDS_THEN = importlib.import_module(
    "services.notification_service.migrations.versions.20261127_notification_service_disabled_kinds"
).KINDS_THEN

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


async def test_a_kind_added_later_is_on_for_a_user_who_switched_others_off(
    client: httpx.AsyncClient, events: Events, db: asyncpg.Pool
) -> None:
    """What is kept is the kinds switched off: a kind the service learns later is sent to everyone, also
    to a user who had changed their preferences before it existed."""
    family = await events.family()
    await prefer(client, family.student, enabled_kinds=[k for k in KINDS if k != "weekly_summary"])
    stored = await db.fetchval("SELECT disabled_kinds FROM recipients WHERE user_id = $1", uuid.UUID(family.student.id))
    assert json.loads(stored) == ["weekly_summary"]
    recipient = SimpleNamespace(disabled_kinds=["weekly_summary"], quiet_hours_start=None, quiet_hours_end=None)
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    assert decide(recipient, "a_kind_from_next_year", now).status == "requested"  # type: ignore[arg-type]
    assert decide(recipient, "weekly_summary", now).status == "suppressed"  # type: ignore[arg-type]
    # the API still speaks of the kinds left on, in the service's order
    seen = (await client.get(URL, headers=family.student.headers)).json()["enabled_kinds"]
    assert seen == [k for k in KINDS if k != "weekly_summary"]


async def test_the_migration_turns_kinds_left_on_into_kinds_switched_off_and_back(run_id: str) -> None:
    spec = by_name("notification-service")
    name = f"repitbot_test_notification_kinds_{run_id}"
    url = await infra.create_database(name)
    try:
        await asyncio.to_thread(upgrade, spec, url, "526548718e18")  # enabled_kinds, before
        people = {label: uuid.uuid4() for label in ("default", "some_off", "all_on", "none_on")}
        some_on = [k for k in KINDS_THEN if k not in ("weekly_summary", "alert")]
        connection = await asyncpg.connect(url)
        try:
            await connection.executemany(
                "INSERT INTO recipients (user_id, enabled_kinds) VALUES ($1, $2::jsonb)",
                [
                    (people["default"], None),
                    (people["some_off"], json.dumps(some_on)),
                    (people["all_on"], json.dumps(list(KINDS_THEN))),
                    (people["none_on"], "[]"),
                ],
            )
            await asyncio.to_thread(upgrade, spec, url, "7c1e2d4b9a30")
            rows = await connection.fetch("SELECT user_id, disabled_kinds FROM recipients")
            disabled = {r["user_id"]: json.loads(r["disabled_kinds"]) if r["disabled_kinds"] else None for r in rows}
            assert disabled == {
                people["default"]: None,
                people["some_off"]: ["alert", "weekly_summary"],
                people["all_on"]: None,
                people["none_on"]: sorted(KINDS_THEN),
            }
            await asyncio.to_thread(command.downgrade, alembic_config(spec, url), "526548718e18")
            rows = await connection.fetch("SELECT user_id, enabled_kinds FROM recipients")
            enabled = {r["user_id"]: json.loads(r["enabled_kinds"]) if r["enabled_kinds"] else None for r in rows}
            assert enabled[people["default"]] is None and enabled[people["none_on"]] == []
            assert enabled[people["some_off"]] == sorted(some_on)
        finally:
            await connection.close()
    finally:
        await infra.drop_database(name)
