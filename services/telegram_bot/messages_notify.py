"""Texts of notifications (``notify_<template>``, ``..._parent`` for a parent's copy), their pieces, the
RSVP answers under a lesson reminder and the offline queue's words (merged into ``messages.MESSAGES``).

Placeholders are what ``notifications.render`` computes from the event's params (times already in the
recipient's zone, money formatted), not the raw params.
"""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    # --- lessons ---------------------------------------------------------------------------------
    "notify_lesson_reminder": {
        "ru": "⏰ Напоминание: {subject}{topic} — {time} (через {left}).",
        "en": "⏰ Reminder: {subject}{topic} at {time} (in {left}).",
    },
    "notify_lesson_reminder_parent": {
        "ru": "⏰ У ребёнка урок: {subject}{topic} — {time} (через {left}).",
        "en": "⏰ Your child has a lesson: {subject}{topic} at {time} (in {left}).",
    },
    "notify_lesson_scheduled": {
        "ru": "📅 Назначен урок: {subject}{topic} — {time}.",
        "en": "📅 A lesson is scheduled: {subject}{topic} at {time}.",
    },
    "notify_lesson_scheduled_parent": {
        "ru": "📅 Ребёнку назначен урок: {subject}{topic} — {time}.",
        "en": "📅 A lesson is scheduled for your child: {subject}{topic} at {time}.",
    },
    "notify_lesson_rescheduled": {
        "ru": "🔁 Урок {subject}{topic} перенесён: {previous} → {time}.",
        "en": "🔁 The lesson {subject}{topic} has moved: {previous} → {time}.",
    },
    "notify_lesson_rescheduled_parent": {
        "ru": "🔁 Урок ребёнка {subject}{topic} перенесён: {previous} → {time}.",
        "en": "🔁 Your child's lesson {subject}{topic} has moved: {previous} → {time}.",
    },
    "notify_lesson_cancelled": {
        "ru": "❌ Урок {subject}{topic} ({time}) отменён{by}.{charge}{reason}",
        "en": "❌ The lesson {subject}{topic} ({time}) is cancelled{by}.{charge}{reason}",
    },
    "notify_lesson_cancelled_parent": {
        "ru": "❌ Урок ребёнка {subject}{topic} ({time}) отменён{by}.{charge}{reason}",
        "en": "❌ Your child's lesson {subject}{topic} ({time}) is cancelled{by}.{charge}{reason}",
    },
    "notify_lesson_cancelled_tutor": {
        "ru": "❌ {name}: урок {subject}{topic} ({time}) отменён{by}.{charge}{reason}",
        "en": "❌ {name}: the lesson {subject}{topic} ({time}) is cancelled{by}.{charge}{reason}",
    },
    "notify_chargeable": {
        "ru": " Поздняя отмена — урок оплачивается.",
        "en": " A late cancellation: the lesson is chargeable.",
    },
    "notify_by_tutor": {"ru": " репетитором", "en": " by the tutor"},
    "notify_by_student": {"ru": " учеником", "en": " by the student"},
    "notify_by_parent": {"ru": " родителем", "en": " by a parent"},
    "notify_reason": {"ru": " Причина: {reason}", "en": " Reason: {reason}"},
    "notify_lesson_report": {
        "ru": "📝 Урок {name}: {subject}{topic}, {time}.\nПосещение: {attendance}. Оценка: {grade}. "
        "Усвоение: {mastery}.{comment}\nДомашние задания к уроку: {homework}. Не сдано всего: {open}.",
        "en": "📝 {name}'s lesson: {subject}{topic}, {time}.\nAttendance: {attendance}. Grade: {grade}. "
        "Mastery: {mastery}.{comment}\nHomework set: {homework}. Open in total: {open}.",
    },
    "notify_attendance_present": {"ru": "был(а)", "en": "present"},
    "notify_attendance_late": {"ru": "опоздал(а)", "en": "late"},
    "notify_attendance_absent": {"ru": "не пришёл(ла)", "en": "absent"},
    "notify_mastery_not_learned": {"ru": "не усвоено", "en": "not learned"},
    "notify_mastery_learned": {"ru": "усвоено", "en": "learned"},
    "notify_mastery_mastered": {"ru": "отлично усвоено", "en": "mastered"},
    "notify_none": {"ru": "—", "en": "—"},
    # --- homework --------------------------------------------------------------------------------
    "notify_homework_assigned": {
        "ru": "📚 Новое задание: «{title}», срок — {due}.",
        "en": "📚 New homework: “{title}”, due {due}.",
    },
    "notify_homework_due_tomorrow": {
        "ru": "⏳ Завтра срок сдачи задания «{title}» — {due}.",
        "en": "⏳ Homework “{title}” is due tomorrow, {due}.",
    },
    "notify_homework_submitted": {
        "ru": "📥 {name} сдал(а) задание «{title}»{late}.",
        "en": "📥 {name} handed in “{title}”{late}.",
    },
    "notify_late": {"ru": " (с опозданием)", "en": " (late)"},
    "notify_homework_graded": {
        "ru": "✅ Задание «{title}» проверено: оценка {grade}.",
        "en": "✅ Homework “{title}” is graded: {grade}.",
    },
    "notify_homework_graded_parent": {
        "ru": "✅ Задание ребёнка «{title}» проверено: оценка {grade}.",
        "en": "✅ Your child's homework “{title}” is graded: {grade}.",
    },
    # --- money -----------------------------------------------------------------------------------
    "notify_payment_received": {
        "ru": "💰 Получена оплата {amount}. Баланс: {balance}, этого хватит на уроков: {lessons}.",
        "en": "💰 Payment of {amount} received. Balance: {balance}, enough for {lessons} lesson(s).",
    },
    "notify_payment_received_parent": {
        "ru": "💰 Получена оплата {amount} за занятия ребёнка. Баланс: {balance}, хватит на уроков: {lessons}.",
        "en": "💰 Payment of {amount} received for your child's lessons. Balance: {balance}, "
        "enough for {lessons} lesson(s).",
    },
    "notify_balance_low": {
        "ru": "⚠️ Баланс {name}: {balance} — его не хватает на следующий урок. Пополните, пожалуйста.",
        "en": "⚠️ {name}'s balance is {balance}: not enough for the next lesson. Please top it up.",
    },
    # --- the game layer --------------------------------------------------------------------------
    "notify_level_up": {
        "ru": "🎉 Новый уровень: {level}! У вас {xp} XP.",
        "en": "🎉 Level {level}! You have {xp} XP.",
    },
    "notify_achievement_unlocked": {
        "ru": "🏆 Новое достижение: {title} ({rarity}).",
        "en": "🏆 Achievement unlocked: {title} ({rarity}).",
    },
    "notify_achievement_unlocked_parent": {
        "ru": "🏆 {name} получил(а) достижение: {title} ({rarity}).",
        "en": "🏆 {name} unlocked an achievement: {title} ({rarity}).",
    },
    "rarity_common": {"ru": "обычное", "en": "common"},
    "rarity_rare": {"ru": "редкое", "en": "rare"},
    "rarity_epic": {"ru": "эпическое", "en": "epic"},
    "rarity_legendary": {"ru": "легендарное", "en": "legendary"},
    "ach_first_lesson": {"ru": "Первый урок", "en": "First lesson"},
    "ach_first_homework": {"ru": "Первое задание", "en": "First homework"},
    "ach_first_material": {"ru": "Первый открытый материал", "en": "First material opened"},
    "ach_first_excellent_lesson": {"ru": "Первая пятёрка за урок", "en": "First lesson graded 5"},
    "ach_level_5": {"ru": "Уровень 5", "en": "Level 5"},
    "ach_lessons_50": {"ru": "50 уроков", "en": "50 lessons"},
    "ach_excellent_homeworks_10": {"ru": "10 отличных заданий", "en": "10 excellent homeworks"},
    "ach_homeworks_25": {"ru": "25 заданий", "en": "25 homeworks"},
    "ach_materials_20": {"ru": "20 открытых материалов", "en": "20 materials opened"},
    "ach_streak_7": {"ru": "7 дней подряд", "en": "A 7-day streak"},
    "ach_level_10": {"ru": "Уровень 10", "en": "Level 10"},
    "ach_lessons_100": {"ru": "100 уроков", "en": "100 lessons"},
    "ach_streak_30": {"ru": "30 дней подряд", "en": "A 30-day streak"},
    "ach_excellent_lessons_25": {"ru": "25 пятёрок за уроки", "en": "25 lessons graded 5"},
    "ach_level_25": {"ru": "Уровень 25", "en": "Level 25"},
    "ach_level_50": {"ru": "Уровень 50", "en": "Level 50"},
    "ach_lessons_250": {"ru": "250 уроков", "en": "250 lessons"},
    # --- digests ---------------------------------------------------------------------------------
    "notify_weekly_summary": {
        "ru": "📊 Неделя {start} — {end}, {name}:\n{body}",
        "en": "📊 The week {start} — {end}, {name}:\n{body}",
    },
    "notify_monthly_report": {
        "ru": "📊 Месяц {start} — {end}, {name}:\n{body}",
        "en": "📊 The month {start} — {end}, {name}:\n{body}",
    },
    "notify_digest_body": {
        "ru": "Уроков: {attended} (пропущено {missed}), средняя оценка {grade}.\n"
        "Задания: выдано {assigned}, сдано {submitted}, проверено {graded}, не сдано {open}.\nОплаты: {payments}.",
        "en": "Lessons: {attended} (missed {missed}), average grade {grade}.\n"
        "Homework: {assigned} set, {submitted} handed in, {graded} graded, {open} open.\nPayments: {payments}.",
    },
    # --- operators -------------------------------------------------------------------------------
    "notify_alert_firing": {
        "ru": "🔥 Тревога {alertname} ({severity}), {service}: {summary}\n{description}",
        "en": "🔥 Alert {alertname} ({severity}), {service}: {summary}\n{description}",
    },
    "notify_alert_runbook": {"ru": "📖 Что делать: {runbook}", "en": "📖 What to do: {runbook}"},
    "notify_alert_resolved": {
        "ru": "✅ Тревога снята: {alertname}, {service}: {summary}",
        "en": "✅ Resolved: {alertname}, {service}: {summary}",
    },
    # --- durations -------------------------------------------------------------------------------
    "notify_minutes": {"ru": "{n} мин", "en": "{n} min"},
    "notify_hours": {"ru": "{n} ч", "en": "{n} h"},
    # --- RSVP under a lesson reminder ------------------------------------------------------------
    "btn_rsvp_yes": {"ru": "✅ Приду", "en": "✅ I'll come"},
    "btn_rsvp_no": {"ru": "🚫 Не смогу", "en": "🚫 I can't come"},
    "rsvp_confirmed": {
        "ru": "Отлично, ждём вас на уроке {subject} — {time}.",
        "en": "Great, see you at {subject} at {time}.",
    },
    "rsvp_cancelled": {
        "ru": "Урок {subject} ({time}) отменён. Репетитор уже знает.",
        "en": "The lesson {subject} ({time}) is cancelled. Your tutor has been told.",
    },
    "rsvp_cancelled_chargeable": {
        "ru": "Урок {subject} ({time}) отменён. До начала осталось мало времени, поэтому отмена платная. "
        "Репетитор уже знает.",
        "en": "The lesson {subject} ({time}) is cancelled. It is close to the start, so the cancellation is "
        "chargeable. Your tutor has been told.",
    },
    "rsvp_not_scheduled": {
        "ru": "Этот урок уже не запланирован.",
        "en": "This lesson is no longer scheduled.",
    },
    "rsvp_tutor_coming": {
        "ru": "👍 {name} придёт на урок {subject} — {time}.",
        "en": "👍 {name} is coming to {subject} at {time}.",
    },
    "rsvp_reason": {"ru": "Ученик не сможет прийти", "en": "The student can't come"},
}
