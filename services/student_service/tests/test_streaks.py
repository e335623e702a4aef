"""Streak rules as a pure function: consecutive days, freezes earned every 7 days (at most 2) covering
missed days, tutor-cancelled days not breaking it, late days counted for their own day."""

from __future__ import annotations

from datetime import date, timedelta

from services.student_service.domain.streaks import compute

D0 = date(2026, 3, 1)


def days(*offsets: int) -> set[date]:
    return {D0 + timedelta(days=n) for n in offsets}


def test_no_days_no_streak() -> None:
    assert compute(set(), set(), D0) == (0, 0, 0, 0)


def test_consecutive_days_count_and_today_without_activity_yet_keeps_it() -> None:
    streak = compute(days(0, 1, 2), set(), D0 + timedelta(days=3))
    assert (streak.current, streak.longest) == (3, 3)


def test_a_missed_day_without_a_freeze_breaks_it() -> None:
    streak = compute(days(0, 1, 3), set(), D0 + timedelta(days=3))
    assert (streak.current, streak.longest, streak.freezes_held) == (1, 2, 0)
    assert compute(days(0, 1), set(), D0 + timedelta(days=3)).current == 0


def test_seven_days_earn_a_freeze_that_covers_one_missed_day() -> None:
    streak = compute(days(*range(7), 8), set(), D0 + timedelta(days=8))
    assert (streak.current, streak.freezes_held, streak.freezes_used) == (8, 0, 1)


def test_at_most_two_freezes_are_held() -> None:
    streak = compute(days(*range(28)), set(), D0 + timedelta(days=27))
    assert (streak.current, streak.freezes_held) == (28, 2)
    # three missed days: two frozen, the third breaks it
    assert compute(days(*range(28), 31), set(), D0 + timedelta(days=31)).current == 1
    assert compute(days(*range(28), 30), set(), D0 + timedelta(days=30)).current == 29


def test_a_tutor_cancelled_day_does_not_break_it() -> None:
    streak = compute(days(0, 1, 3), days(2), D0 + timedelta(days=3))
    assert (streak.current, streak.freezes_used) == (3, 0)


def test_a_late_event_fills_its_own_day() -> None:
    before = compute(days(0, 1, 3, 4), set(), D0 + timedelta(days=4))
    after = compute(days(0, 1, 2, 3, 4), set(), D0 + timedelta(days=4))
    assert (before.current, after.current) == (2, 5)
