"""The game rules as pure functions: the level formula and the XP of each source (DESIGN.md §6)."""

from __future__ import annotations

import pytest

from services.student_service.domain.xp import homework_xp, lesson_xp, level_for_xp, top_up_xp, xp_for_level


@pytest.mark.parametrize(("level", "xp"), [(1, 0), (2, 100), (3, 282), (10, 2_700), (50, 34_300)])
def test_xp_needed_for_a_level_is_floor_100_times_l_minus_1_to_the_1_5(level: int, xp: int) -> None:
    assert xp_for_level(level) == xp


@pytest.mark.parametrize(
    ("xp", "level"),
    [(0, 1), (99, 1), (100, 2), (281, 2), (282, 3), (2_699, 9), (2_700, 10), (34_299, 49), (34_300, 50)],
)
def test_level_for_xp_is_the_highest_level_reached(xp: int, level: int) -> None:
    assert level_for_xp(xp) == level


def test_negative_xp_is_level_one() -> None:
    assert level_for_xp(-50) == 1


@pytest.mark.parametrize(
    ("lesson_type", "grade", "xp"),
    [
        ("regular", None, 100),
        ("regular", 1, 100),
        ("regular", 3, 100),
        ("regular", 4, 150),
        ("regular", 5, 200),
        ("trial", 5, 200),
        ("exam_prep", None, 150),
        ("exam_prep", 4, 200),
        ("exam_prep", 5, 300),
    ],
)
def test_lesson_xp_by_type_and_grade(lesson_type: str, grade: int | None, xp: int) -> None:
    assert lesson_xp(lesson_type, grade) == xp
    assert lesson_xp(lesson_type, grade) <= 300


@pytest.mark.parametrize(("grade", "xp"), [(1, 50), (3, 50), (4, 75), (5, 100)])
def test_homework_xp_by_grade(grade: int, xp: int) -> None:
    assert homework_xp(grade) == xp


@pytest.mark.parametrize(("lessons", "xp"), [(0, 0), (1, 50), (4, 200), (10, 500), (11, 500), (40, 500)])
def test_top_up_xp_is_50_per_covered_lesson_at_most_500(lessons: int, xp: int) -> None:
    assert top_up_xp(lessons) == xp
