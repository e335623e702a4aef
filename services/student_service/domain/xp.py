"""The game rules of DESIGN.md §6 in one place: the XP table and the level formula.

| source | XP |
|---|---|
| lesson completed | regular or trial 100, exam-prep 150; plus 0 / 50 / 100 / 150 for grade ≤ 3 / 4 / 5 (at most 300) |
| homework graded | 50; plus 25 for a 4, 50 for a 5 |
| material viewed | 25, once per material |
| top-up | 50 per future lesson it covers, at most 500 per top-up; reversed on refund |
| tutor bonus or correction | any amount with a reason |

The grade bonus column reads "0 / 50 / 100 / 150" against "≤ 3 / 4 / 5": three grade bands for four
amounts. We read it as ≤ 3 → 0, 4 → 50, 5 → 100, and the 150 as the exam-prep lesson's bonus for a 5
(150 + 150 = 300, the table's stated maximum); see docs/decisions/0013-game-layer.md.
"""

from __future__ import annotations

from math import isqrt

LESSON_BASE_XP = {"regular": 100, "trial": 100, "exam_prep": 150}
LESSON_GRADE_BONUS = {4: 50, 5: 100}
EXAM_PREP_TOP_GRADE_BONUS = 150
LESSON_MAX_XP = 300
HOMEWORK_BASE_XP = 50
HOMEWORK_GRADE_BONUS = {4: 25, 5: 50}
MATERIAL_VIEWED_XP = 25
TOP_UP_XP_PER_LESSON = 50
TOP_UP_MAX_XP = 500


def lesson_xp(lesson_type: str, grade: int | None) -> int:
    base = LESSON_BASE_XP.get(lesson_type, LESSON_BASE_XP["regular"])
    bonus = LESSON_GRADE_BONUS.get(grade or 0, 0)
    if grade == 5 and lesson_type == "exam_prep":
        bonus = EXAM_PREP_TOP_GRADE_BONUS
    return min(base + bonus, LESSON_MAX_XP)


def homework_xp(grade: int) -> int:
    return HOMEWORK_BASE_XP + HOMEWORK_GRADE_BONUS.get(grade, 0)


def top_up_xp(lessons_covered: int) -> int:
    return min(TOP_UP_XP_PER_LESSON * max(lessons_covered, 0), TOP_UP_MAX_XP)


def xp_for_level(level: int) -> int:
    """Total XP needed to reach ``level``: floor(100 × (L − 1) ** 1.5) (exponent, not a multiplier)."""
    if level < 1:
        raise ValueError("levels start at 1")
    # integer-exact: floor(100 * n ** 1.5) = floor(sqrt(10_000 * n ** 3))
    n = level - 1
    return isqrt(10_000 * n**3)


def level_for_xp(xp: int) -> int:
    level = 1
    while xp_for_level(level + 1) <= xp:
        level += 1
    return level
