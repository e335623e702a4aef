"""StudentServiceIntegration's pure parts: the XP bar and the texts built from student-service's answers
(no fleet), and the calls it makes (a stub client records them)."""

from __future__ import annotations

from typing import Any

import pytest

from services.student_service.domain.xp import level_for_xp, xp_for_level
from services.telegram_bot.api import ApiError, UserSession
from services.telegram_bot.integrations import (
    StudentServiceIntegration,
    level_floor,
    progress_text,
    tip_text,
    xp_bar,
)

SESSION = UserSession(1, "u", "student", "Petya", "en", "Europe/Moscow", "a", "r", 0.0)


def test_the_level_threshold_is_student_services_own() -> None:
    for level in range(1, 60):
        assert level_floor(level) == xp_for_level(level)


@pytest.mark.parametrize(
    ("xp", "bar"),
    [
        (0, "▱▱▱▱▱▱▱▱▱▱"),  # level 1 starts at 0, level 2 at 100
        (9, "▱▱▱▱▱▱▱▱▱▱"),
        (10, "▰▱▱▱▱▱▱▱▱▱"),
        (55, "▰▰▰▰▰▱▱▱▱▱"),
        (99, "▰▰▰▰▰▰▰▰▰▱"),
        (100, "▱▱▱▱▱▱▱▱▱▱"),  # level 2: the bar starts again from its threshold (100), not from 0
        (150, "▰▰▱▱▱▱▱▱▱▱"),  # 50 of 182 (level 3 at 282)
        (281, "▰▰▰▰▰▰▰▰▰▱"),
        (282, "▱▱▱▱▱▱▱▱▱▱"),
    ],
)
def test_the_xp_bar_fills_from_the_levels_threshold_to_the_next(xp: int, bar: str) -> None:
    level = level_for_xp(xp)
    assert xp_bar(xp, level, xp_for_level(level + 1)) == bar


def test_the_xp_bar_stays_within_its_cells() -> None:
    assert xp_bar(500, 2, 282) == "▰" * 10  # stale numbers: full, never longer
    assert xp_bar(0, 3, 519) == "▱" * 10  # below the threshold: empty
    assert xp_bar(0, 1, 0) == "▱" * 10  # a zero span does not divide by zero
    assert xp_bar(50, 1, 100, cells=4) == "▰▰▱▱"


def test_the_progress_card_has_level_bar_achievements_and_neighbours() -> None:
    data = {
        "profile": {"level": 2, "xp": 150, "next_level_xp": 282, "current_streak": 3, "longest_streak": 5},
        "achievements": [
            {"code": "first_lesson", "rarity": "common", "title": "First lesson", "unlocked_at": "2026-01-01T10:00Z"},
            {"code": "unknown_code", "rarity": "epic", "title": "Something new", "unlocked_at": "2026-01-02T10:00Z"},
            {"code": "locked", "rarity": "rare", "title": "Not yet", "unlocked_at": None},
        ],
        "leaderboard": [
            {"rank": 1, "name": "Anna", "xp": 300, "you": False},
            {"rank": 2, "name": "Petya", "xp": 150, "you": True},
        ],
    }
    text = progress_text("en", data)
    assert "▰▰▱▱▱▱▱▱▱▱ 150/282 XP" in text
    assert "Something new" in text and "Not yet" not in text  # an unknown code: the service's title
    assert "👉" in text.splitlines()[-1] and "Petya" in text.splitlines()[-1]
    assert "Anna" in text.splitlines()[-2] and "👉" not in text.splitlines()[-2]
    empty = progress_text("ru", data | {"achievements": [], "leaderboard": []})
    assert "Anna" not in empty and "▰▰▱▱▱▱▱▱▱▱" in empty


def test_tips_are_rendered_by_code_and_unknown_ones_keep_the_services_words() -> None:
    due = {"code": "homework_due_soon", "params": {"title": "Verbs", "hours_left": 5}, "message": "x"}
    assert "Verbs" in tip_text("en", due) and "5" in tip_text("en", due) and tip_text("ru", due) != tip_text("en", due)
    assert tip_text("en", {"code": "brand_new_rule", "params": {}, "message": "Do this"}) == "Do this"
    broken = {"code": "streak_at_risk", "params": {}, "message": "Keep the streak"}
    assert tip_text("en", broken) == "Keep the streak"


class StubApi:
    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def get(self, session: UserSession, path: str, **params: Any) -> Any:
        self.calls.append((path, params))
        answer = self.answers[path]
        if isinstance(answer, Exception):
            raise answer
        return answer


async def test_the_calls_and_a_missing_board_leaves_the_rest_of_the_progress() -> None:
    api = StubApi(
        {
            "/api/v1/students/me/profile": {"level": 1},
            "/api/v1/students/me/achievements": {"items": [{"code": "a"}]},
            "/api/v1/students/leaderboard": ApiError(404, "not_found", "Leaderboard not found"),
            "/api/v1/students/s1/xp": {"items": [], "next_cursor": None},
            "/api/v1/students/me/recommendations": {"items": [{"code": "c"}]},
        }
    )
    students = StudentServiceIntegration(api)  # type: ignore[arg-type]
    progress = await students.progress(SESSION)
    assert progress == {"profile": {"level": 1}, "achievements": [{"code": "a"}], "leaderboard": []}
    assert ("/api/v1/students/leaderboard", {"period": "weekly", "view": "neighbours"}) in api.calls
    assert await students.xp_history(SESSION, "s1", limit=5) == {"items": [], "next_cursor": None}
    assert api.calls[-1] == ("/api/v1/students/s1/xp", {"limit": 5, "cursor": None})
    assert await students.recommendations(SESSION) == [{"code": "c"}]
