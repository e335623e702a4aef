"""student-service in the test fleet, through the gateway: a real student linked by invite gets a game
profile, and a lesson completed with grade 5 earns exactly the table's XP once the events settle; the
leaderboard, the recommendations and PATCH /me/profile reach student-service through the gateway."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.testing.accounts import register
from shared.testing.events import eventually
from shared.testing.fleet import TestFleet


async def test_a_completed_lesson_with_grade_5_earns_the_tables_xp(fleet: TestFleet) -> None:
    async with fleet.client("api-gateway") as gateway:
        tutor, stranger = await register(gateway, "tutor"), await register(gateway, "other tutor")
        invite = await gateway.post("/api/v1/users/invites", json={"role": "student"}, headers=tutor.headers)
        assert invite.status_code == 201, invite.text
        student = await register(gateway, "student", invite.json()["code"])
        profile_url = f"/api/v1/students/{student.id}/profile"

        async def profile_exists() -> bool:
            return (await gateway.get(profile_url, headers=student.headers)).status_code == 200

        await eventually(profile_exists, timeout=20, what="the profile created on student.linked")
        empty = (await gateway.get("/api/v1/students/me/profile", headers=student.headers)).json()
        assert (empty["xp"], empty["level"], empty["next_level_xp"]) == (0, 1, 100)

        starts_at = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
        lesson = await gateway.post(
            "/api/v1/lessons",
            json={"student_id": student.id, "starts_at": starts_at, "duration_minutes": 60, "subject": "Maths"},
            headers=tutor.headers,
        )
        assert lesson.status_code == 201, lesson.text
        done = await gateway.post(
            f"/api/v1/lessons/{lesson.json()['id']}/complete", json={"grade": 5}, headers=tutor.headers
        )
        assert done.status_code == 200, done.text

        async def awarded() -> bool:
            return (await gateway.get(profile_url, headers=tutor.headers)).json()["xp"] > 0

        await eventually(awarded, timeout=20, what="the lesson's XP awarded")
        profile = (await gateway.get(profile_url, headers=tutor.headers)).json()
        assert profile["xp"] == 200  # regular 100 + grade-5 bonus 100 (DESIGN.md §6)
        assert profile["level"] == 2 and profile["next_level_xp"] == 282
        assert (await gateway.get(profile_url, headers=stranger.headers)).status_code == 404

        # the leaderboard and the recommendations answer through the gateway (static paths, not student ids)
        named = await gateway.patch(
            "/api/v1/students/me/profile", json={"display_name": "Fleet Student"}, headers=student.headers
        )
        assert named.status_code == 200, named.text
        board = await gateway.get("/api/v1/students/leaderboard", headers=student.headers)
        assert board.status_code == 200, board.text
        assert [(i["rank"], i["name"], i["xp"], i["you"]) for i in board.json()["items"]] == [
            (1, "Fleet Student", 200, True)
        ]
        assert board.json()["tutor_id"] == tutor.id
        tutors_board = await gateway.get(
            "/api/v1/students/leaderboard", params={"period": "all_time"}, headers=tutor.headers
        )
        assert [i["student_id"] for i in tutors_board.json()["items"]] == [student.id]
        advice = await gateway.get("/api/v1/students/me/recommendations", headers=student.headers)
        assert advice.status_code == 200 and isinstance(advice.json()["items"], list), advice.text
