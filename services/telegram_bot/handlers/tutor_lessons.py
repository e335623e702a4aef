"""Lessons: the schedule (today, the next 7 days), scheduling a lesson or a weekly series, and one
lesson's actions (complete, cancel, reschedule, missed), all through lesson-service behind the gateway.

``sched:day`` / ``sched:week`` (and /schedule) serve every role: a tutor sees their lessons with a
button to open each, a student or parent sees their own lessons read-only. Multi-step work runs as
flows (handlers/flows.py) whose answers live in Redis at every step, so a bot restart carries on.
Buttons of a flow are ``flow:<flow>:<step>:<value>``; a button of an earlier step re-asks the current one.

Every write the user may repeat (a lost answer, the fleet briefly down) carries an Idempotency-Key
chosen when the flow begins and kept with its answers: "Try again" re-sends the same body with the same
key, so it has one effect.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler

from services.telegram_bot.api import ApiError, Unavailable
from services.telegram_bot.handlers.common import (
    Button,
    Caller,
    Context,
    answer,
    callback_args,
    read_view,
    signed_in,
    stale_mark,
)
from services.telegram_bot.handlers.flows import flow, pressed
from services.telegram_bot.state import Conversation

NEW, DONE, CANCEL, MOVE, MISSED = "lesson_new", "lesson_done", "lesson_cancel", "lesson_move", "lesson_missed"
WEEKDAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
DURATIONS = (45, 60, 90)
SERIES_COUNTS = (4, 8, 12)
ATTENDANCE = ("present", "late", "absent")  # "absent" is a no-show: POST /missed, not /complete
MASTERY = ("not_learned", "learned", "mastered")
MAX_OPEN_BUTTONS = 20
PAGE = 200
MAX_PAGES = 5
_TIME = re.compile(r"^(\d{1,2})[:.](\d{2})$")
_DATE = re.compile(r"^(\d{1,2})[./](\d{1,2})(?:[./](\d{2}|\d{4}))?$")


# --- small helpers ---------------------------------------------------------------------------------


def _cancel_row(who: Caller) -> list[Button]:
    return [(who.t("btn_cancel"), "flow:cancel")]


def _btn(name: str, step: str, value: str) -> str:
    return f"flow:{name}:{step}:{value}"


def _lesson_id(update: Update) -> str | None:
    """The lesson id in ``lesson:<action>:<id>``, only if it is a UUID (callback data can be forged)."""
    args = callback_args(update)
    try:
        return str(uuid.UUID(args[0])) if args else None
    except ValueError:
        return None


def _today(who: Caller) -> date:
    return who.local(who.bot.clock.now()).date()


def _weekday(who: Caller, day: date) -> str:
    return who.t("tl_weekdays").split()[day.weekday()]


def _day_label(who: Caller, day: date) -> str:
    today = _today(who)
    name = (
        who.t("tl_today")
        if day == today
        else who.t("tl_tomorrow")
        if day == today + timedelta(days=1)
        else _weekday(who, day)
    )
    return f"{name} {day:%d.%m}"


def _hhmm(who: Caller, moment: str) -> str:
    return who.local(moment).strftime("%H:%M")


def parse_time(text: str | None) -> time | None:
    match = _TIME.match((text or "").strip())
    if not match:
        return None
    hour, minute = int(match[1]), int(match[2])
    return time(hour, minute) if hour < 24 and minute < 60 else None


def parse_date(text: str | None, today: date) -> date | None:
    """``DD.MM`` (the nearest such day to today, past or future) or ``DD.MM.YYYY`` / ``DD.MM.YY``."""
    match = _DATE.match((text or "").strip())
    if not match:
        return None
    day, month, year = int(match[1]), int(match[2]), match[3]
    try:
        if year:
            return date(int(year) + (2000 if len(year) == 2 else 0), month, day)
        candidates = []
        for y in (today.year - 1, today.year, today.year + 1):
            try:
                candidates.append(date(y, month, day))
            except ValueError:  # 29.02 outside a leap year
                continue
    except ValueError:
        return None
    return min(candidates, key=lambda d: abs((d - today).days)) if candidates else None


def _local_start(who: Caller, day: str, at: str) -> datetime:
    return datetime.combine(date.fromisoformat(day), time.fromisoformat(at), who.zone)


def _status(who: Caller, status: str) -> str:
    key = f"tl_status_{status}"
    return who.t(key) if key in _STATUS_KEYS else status


_STATUS_KEYS = {f"tl_status_{s}" for s in ("scheduled", "completed", "cancelled", "missed")}


async def _student_name(who: Caller, student_id: str) -> str:
    try:
        user = await who.bot.api.get(who.user, f"/api/v1/users/{student_id}")
    except ApiError:
        return "—"
    return str(user.get("full_name") or "—")


async def _students(who: Caller) -> dict[str, str]:
    page = await who.bot.api.get(who.user, "/api/v1/users/students", limit=PAGE)
    return {str(s["id"]): s.get("full_name") or "—" for s in page["items"]}


async def _lessons_between(who: Caller, start: datetime, end: datetime, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(MAX_PAGES):
        page = await who.bot.api.get(
            who.user,
            "/api/v1/lessons",
            **{"from": start.astimezone(UTC).isoformat(), "to": end.astimezone(UTC).isoformat()},
            limit=PAGE,
            cursor=cursor,
            **params,
        )
        items += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    return items


# --- schedule views --------------------------------------------------------------------------------


@signed_in()
async def schedule(update: Update, context: Context, who: Caller) -> None:
    """Today or the next 7 days (from today, in the caller's zone): every role, buttons for tutors."""
    data = update.callback_query.data if update.callback_query else ""
    view = "day" if data == "sched:day" else "week"
    first = _today(who)
    last = first + timedelta(days=0 if view == "day" else 6)
    start = datetime.combine(first, time(), who.zone)
    end = datetime.combine(last + timedelta(days=1), time(), who.zone)
    role = who.user.role

    async def fetch() -> dict[str, Any]:
        lessons = await _lessons_between(who, start, end)
        if role == "tutor":
            names = await _students(who)
        elif role == "parent":  # their children: readable one by one
            names = {sid: await _student_name(who, sid) for sid in {x["student_id"] for x in lessons}}
        else:
            names = {}
        keep = ("id", "student_id", "starts_at", "ends_at", "subject", "topic", "status")
        return {"lessons": [{k: x.get(k) for k in keep} for x in lessons], "names": names}

    found, fetched_at = await read_view(who, f"schedule_{view}", fetch)
    lessons, names = found["lessons"], found["names"]
    title = (
        who.t("tl_sched_day_title", date=f"{_weekday(who, first)} {first:%d.%m}")
        if view == "day"
        else who.t("tl_sched_week_title", start=f"{first:%d.%m}", end=f"{last:%d.%m}")
    )
    lines = [stale_mark(who, fetched_at) + title]
    if not lessons:
        lines.append(who.t("tl_sched_empty"))
    current: date | None = None
    buttons: list[Button] = []
    for lesson in lessons:
        day = who.local(lesson["starts_at"]).date()
        if day != current and view == "week":
            lines.append(f"\n{_weekday(who, day)} {day:%d.%m}")
        current = day
        parts = [f"{_hhmm(who, lesson['starts_at'])}–{_hhmm(who, lesson['ends_at'])}"]
        if role != "student":
            parts.append(names.get(lesson["student_id"], "—"))
        parts.append(lesson["subject"] + (f" — {lesson['topic']}" if lesson.get("topic") else ""))
        parts.append(_status(who, lesson["status"]))
        lines.append(" · ".join(parts))
        if role == "tutor" and (lesson["status"] == "scheduled" or day == first):
            label = f"{_hhmm(who, lesson['starts_at'])} {names.get(lesson['student_id'], '')}".strip()
            if view == "week":
                label = f"{_weekday(who, day)} {label}"
            buttons.append((label, f"lesson:open:{lesson['id']}"))
    if len(buttons) > MAX_OPEN_BUTTONS:
        buttons = buttons[:MAX_OPEN_BUTTONS]
        lines.append("\n" + who.t("tl_sched_more", count=MAX_OPEN_BUTTONS))
    rows: list[list[Button]] = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    if role == "tutor":
        rows += [
            [(who.t("btn_today"), "sched:day"), (who.t("btn_week"), "sched:week")],
            [(who.t("btn_schedule_lesson"), "lesson:new")],
        ]
    rows.append([(who.t("btn_menu"), "menu:main")])
    await answer(update, "\n".join(lines), rows)


# --- scheduling a lesson -----------------------------------------------------------------------------


@signed_in("tutor")
async def new_lesson(update: Update, context: Context, who: Caller) -> None:
    """``lesson:new`` (choose the student) or ``lesson:new:<student id>`` (straight to the date)."""
    students = await _students(who)
    if not students:
        await answer(update, who.t("tl_no_students"), [[(who.t("btn_invite"), "invite:new")]])
        return
    chosen = _lesson_id(update)  # the optional argument is a student's UUID
    conversation = await who.bot.conversations.begin(
        who.chat_id, NEW, "student", students=students, key=who.bot.api.new_key()
    )
    if chosen in students:
        await _choose_student(who, conversation, chosen)
        await who.bot.conversations.save(who.chat_id, conversation)
    await _ask(update, who, conversation)


async def _choose_student(who: Caller, conversation: Conversation, student_id: str) -> None:
    """Remember the student and their latest subject (a one-press answer at the subject step)."""
    data = conversation.data
    data["student_id"] = student_id
    data["student"] = data["students"][student_id]
    now = who.bot.clock.now()
    try:
        recent = await _lessons_between(who, now - timedelta(days=90), now + timedelta(days=30), student_id=student_id)
    except ApiError:
        recent = []
    data["last_subject"] = max(recent, key=lambda x: x["starts_at"])["subject"] if recent else None
    conversation.step = "date"


def _date_rows(who: Caller, name: str) -> list[list[Button]]:
    today = _today(who)
    days = [today + timedelta(days=i) for i in range(7)]
    buttons = [(_day_label(who, d), _btn(name, "date", d.isoformat())) for d in days]
    return [buttons[i : i + 2] for i in range(0, len(buttons), 2)]


async def _ask(update: Update, who: Caller, conversation: Conversation, error: str | None = None) -> None:
    """The current step's question and buttons (after ``error``, if the last answer was not accepted)."""
    data, step, name = conversation.data, conversation.step, conversation.flow
    rows: list[list[Button]] = []
    if step == "send":
        text = who.t("tl_retry")
        rows.append([(who.t("tl_btn_retry"), _btn(name, "send", "retry"))])
    elif name == NEW and step == "student":
        text = who.t("tl_ask_student")
        items = list(data["students"].items())
        buttons = [(label, _btn(NEW, "student", sid)) for sid, label in items[:30]]
        rows += [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    elif step == "date":
        text = (
            who.t("tl_ask_date", student=data["student"])
            if name == NEW
            else who.t("tl_ask_new_date", when=who.when(data["starts_at"]), student=data["student"])
        )
        rows += _date_rows(who, name)
    elif step == "time":
        day = date.fromisoformat(data["date"])
        text = who.t("tl_ask_time", date=_day_label(who, day))
    elif step == "duration":
        text = who.t("tl_ask_duration")
        rows.append([(who.t("tl_minutes", minutes=m), _btn(NEW, "duration", str(m))) for m in DURATIONS])
    elif step == "subject":
        text = who.t("tl_ask_subject")
        if data.get("last_subject"):
            rows.append([(f"📘 {data['last_subject']}", _btn(NEW, "subject", "last"))])
    elif name == NEW and step == "confirm":
        start = _local_start(who, data["date"], data["time"])
        text = who.t(
            "tl_confirm",
            student=data["student"],
            when=f"{_day_label(who, start.date())} {data['time']}",
            duration=who.t("tl_minutes", minutes=data["duration"]),
            subject=data["subject"],
        )
        rows.append([(who.t("tl_btn_once"), _btn(NEW, "confirm", "once"))])
        rows.append([(who.t("tl_btn_weekly", count=n), _btn(NEW, "confirm", f"w{n}")) for n in SERIES_COUNTS])
    elif step == "attendance":
        text = who.t("tl_ask_attendance", when=who.when(data["starts_at"]), student=data["student"])
        rows.append([(who.t(f"tl_att_{a}"), _btn(DONE, "attendance", a)) for a in ATTENDANCE])
    elif step == "grade":
        text = who.t("tl_ask_grade")
        rows.append([(str(g), _btn(DONE, "grade", str(g))) for g in range(1, 6)])
        rows.append([(who.t("tl_btn_skip"), _btn(DONE, "grade", "skip"))])
    elif step == "mastery":
        text = who.t("tl_ask_mastery")
        rows += [[(who.t(f"tl_mastery_{m}"), _btn(DONE, "mastery", m))] for m in MASTERY]
        rows.append([(who.t("tl_btn_skip"), _btn(DONE, "mastery", "skip"))])
    elif step == "notes":
        text = who.t("tl_ask_notes")
        rows.append([(who.t("tl_btn_skip"), _btn(DONE, "notes", "skip"))])
    elif step == "kind":
        text = who.t("tl_ask_cancel_kind", when=who.when(data["starts_at"]), student=data["student"])
        rows.append(
            [
                (who.t("tl_btn_excused"), _btn(CANCEL, "kind", "free")),
                (who.t("tl_btn_chargeable"), _btn(CANCEL, "kind", "charge")),
            ]
        )
    elif step == "reason":  # CANCEL
        text = who.t("tl_ask_cancel_reason")
        rows.append([(who.t("tl_btn_skip"), _btn(CANCEL, "reason", "skip"))])
    elif step == "confirm":  # MISSED
        text = who.t("tl_ask_missed", when=who.when(data["starts_at"]), student=data["student"])
        rows.append([(who.t("tl_btn_confirm_missed"), _btn(MISSED, "confirm", "yes"))])
    else:  # an unknown step (a newer bot's state): start over
        await who.bot.conversations.end(who.chat_id)
        await answer(update, who.t("flow_expired"))
        return
    rows.append(_cancel_row(who))
    await answer(update, f"{error}\n\n{text}" if error else text, rows)


def _input(update: Update, step: str) -> tuple[str | None, str | None, bool]:
    """(this step's button value, typed text, a button of another step was pressed)."""
    parts = pressed(update)
    if parts is not None:
        if parts and parts[0] == step:
            return ":".join(parts[1:]), None, False
        return None, None, True
    message = update.effective_message
    return None, (message.text if message is not None and message.text else None), False


async def _advance(update: Update, who: Caller, conversation: Conversation, step: str) -> None:
    conversation.step = step
    await who.bot.conversations.save(who.chat_id, conversation)
    await _ask(update, who, conversation)


async def _date_and_time(update: Update, who: Caller, conversation: Conversation) -> bool:
    """The date and time steps shared by scheduling and rescheduling; True if the input was one of them."""
    data, step = conversation.data, conversation.step
    value, typed, _ = _input(update, step)
    if step == "date":
        day = None
        if value:
            try:
                day = date.fromisoformat(value)
            except ValueError:
                day = None
        elif typed:
            day = parse_date(typed, _today(who))
        if day is None:
            await _ask(update, who, conversation, who.t("tl_bad_date" if typed else "tl_press_buttons"))
            return True
        data["date"] = day.isoformat()
        await _advance(update, who, conversation, "time")
        return True
    if step == "time":
        at = parse_time(typed)
        if at is None:
            await _ask(update, who, conversation, who.t("tl_bad_time"))
            return True
        data["time"] = at.strftime("%H:%M")
        if conversation.flow == MOVE:
            start = _local_start(who, data["date"], data["time"])
            await _send(
                update,
                who,
                conversation,
                "PATCH",
                f"/api/v1/lessons/{data['lesson_id']}",
                {"starts_at": start.isoformat()},
            )
        else:  # after an overlap the duration and subject are known: straight back to the check
            await _advance(update, who, conversation, "confirm" if "subject" in data else "duration")
        return True
    return False


@flow(NEW)
async def _new_step(update: Update, context: Context, who: Caller, conversation: Conversation) -> None:
    if await _date_and_time(update, who, conversation):
        return
    data, step = conversation.data, conversation.step
    value, typed, _ = _input(update, step)
    if step == "student":
        if value in data["students"]:
            await _choose_student(who, conversation, value)
            await who.bot.conversations.save(who.chat_id, conversation)
            await _ask(update, who, conversation)
            return
        await _ask(update, who, conversation, who.t("tl_press_buttons"))
    elif step == "duration":
        raw = value or (typed or "").strip()
        minutes = int(raw) if raw.isdigit() else 0
        if 15 <= minutes <= 600:
            data["duration"] = minutes
            await _advance(update, who, conversation, "subject")
            return
        await _ask(update, who, conversation, who.t("tl_bad_duration"))
    elif step == "subject":
        subject = data.get("last_subject") if value == "last" else (typed or "").strip()
        if subject and len(subject) <= 200:
            data["subject"] = subject
            await _advance(update, who, conversation, "confirm")
            return
        await _ask(update, who, conversation, who.t("tl_bad_subject" if typed else "tl_press_buttons"))
    elif step == "confirm":
        if value != "once" and value not in {f"w{n}" for n in SERIES_COUNTS}:
            await _ask(update, who, conversation, who.t("tl_press_buttons"))
            return
        start = _local_start(who, data["date"], data["time"])
        body: dict[str, Any] = {
            "student_id": data["student_id"],
            "starts_at": start.isoformat(),
            "duration_minutes": data["duration"],
            "subject": data["subject"],
        }
        path = "/api/v1/lessons"
        if value != "once":
            path += "/series"
            body |= {"weekdays": [WEEKDAY_CODES[start.weekday()]], "count": int(value[1:]), "timezone": who.zone.key}
        data["key"] = f"{data['key'].split(':')[0]}:{value}"  # once and weekly are different requests
        await _send(update, who, conversation, "POST", path, body)
    elif step == "send":
        await _retry(update, who, conversation)


# --- one lesson: open, complete, cancel, reschedule, missed ------------------------------------------


def _card(who: Caller, lesson: dict[str, Any], student: str) -> str:
    lines = [
        who.t(
            "tl_card",
            subject=lesson["subject"],
            student=student,
            when=who.when(lesson["starts_at"]),
            end=_hhmm(who, lesson["ends_at"]),
            duration=who.t("tl_minutes", minutes=lesson["duration_minutes"]),
            status=_status(who, lesson["status"]),
        )
    ]
    if lesson.get("topic"):
        lines.append(who.t("tl_card_topic", topic=lesson["topic"]))
    if lesson.get("attendance"):
        lines.append(who.t("tl_card_attendance", attendance=who.t(f"tl_att_{lesson['attendance']}")))
    if lesson.get("grade"):
        lines.append(who.t("tl_card_grade", grade=lesson["grade"]))
    if lesson.get("mastery") in MASTERY:
        lines.append(who.t("tl_card_mastery", mastery=who.t(f"tl_mastery_{lesson['mastery']}")))
    if lesson.get("notes"):
        lines.append(who.t("tl_card_notes", notes=lesson["notes"]))
    if lesson["status"] == "cancelled" and lesson.get("chargeable"):
        lines.append(who.t("tl_card_chargeable"))
    return "\n".join(lines)


async def _load(update: Update, who: Caller) -> tuple[dict[str, Any], str] | None:
    lesson_id = _lesson_id(update)
    if lesson_id is None:
        await answer(update, who.t("tl_bad_lesson"))
        return None
    lesson = await who.bot.api.get(who.user, f"/api/v1/lessons/{lesson_id}")
    return lesson, await _student_name(who, lesson["student_id"])


@signed_in("tutor")
async def open_lesson(update: Update, context: Context, who: Caller) -> None:
    loaded = await _load(update, who)
    if loaded is None:
        return
    lesson, student = loaded
    rows: list[list[Button]] = []
    if lesson["status"] == "scheduled":
        lid = lesson["id"]
        rows += [
            [(who.t("tl_btn_complete"), f"lesson:done:{lid}"), (who.t("tl_btn_missed"), f"lesson:missed:{lid}")],
            [
                (who.t("tl_btn_reschedule"), f"lesson:move:{lid}"),
                (who.t("tl_btn_cancel_lesson"), f"lesson:cancel:{lid}"),
            ],
        ]
    rows.append([(who.t("btn_week"), "sched:week"), (who.t("btn_menu"), "menu:main")])
    await answer(update, _card(who, lesson, student), rows)


_ACTIONS = {
    "done": (DONE, "attendance"),
    "cancel": (CANCEL, "kind"),
    "move": (MOVE, "date"),
    "missed": (MISSED, "confirm"),
}


@signed_in("tutor")
async def lesson_action(update: Update, context: Context, who: Caller) -> None:
    """``lesson:<done|cancel|move|missed>:<id>``: begin that flow for a lesson still scheduled."""
    action = (update.callback_query.data or "").split(":")[1] if update.callback_query else ""
    loaded = await _load(update, who)
    if loaded is None:
        return
    lesson, student = loaded
    if lesson["status"] != "scheduled":
        await answer(update, who.t("tl_not_open", status=_status(who, lesson["status"])))
        return
    name, step = _ACTIONS[action]
    conversation = await who.bot.conversations.begin(
        who.chat_id,
        name,
        step,
        lesson_id=lesson["id"],
        starts_at=lesson["starts_at"],
        student=student,
        key=who.bot.api.new_key(),
    )
    await _ask(update, who, conversation)


@flow(DONE)
async def _done_step(update: Update, context: Context, who: Caller, conversation: Conversation) -> None:
    data, step = conversation.data, conversation.step
    value, typed, _ = _input(update, step)
    path = f"/api/v1/lessons/{data['lesson_id']}"
    if step == "attendance" and value in ATTENDANCE:
        if value == "absent":
            await _send(update, who, conversation, "POST", f"{path}/missed", {}, done="missed")
            return
        data["attendance"] = value
        await _advance(update, who, conversation, "grade")
    elif step == "grade" and (value == "skip" or (value or typed or "").strip() in {"1", "2", "3", "4", "5"}):
        grade = (value or typed or "").strip()
        data["grade"] = None if grade == "skip" else int(grade)
        await _advance(update, who, conversation, "mastery")
    elif step == "mastery" and (value == "skip" or value in MASTERY):
        data["mastery"] = None if value == "skip" else value
        await _advance(update, who, conversation, "notes")
    elif step == "notes" and (value == "skip" or typed):
        notes = None if value == "skip" else (typed or "").strip()
        if notes is not None and len(notes) > 5000:
            await _ask(update, who, conversation, who.t("tl_bad_notes"))
            return
        body = {"attendance": data["attendance"], "grade": data["grade"], "mastery": data["mastery"], "notes": notes}
        await _complete(update, who, conversation, f"{path}/complete", {k: v for k, v in body.items() if v})
    elif step == "send":
        await _retry(update, who, conversation)
    else:
        await _ask(update, who, conversation, who.t("tl_press_buttons"))


async def _complete(update: Update, who: Caller, conversation: Conversation, path: str, body: dict[str, Any]) -> None:
    """The completion through the offline queue with the flow's Idempotency-Key: sent now when the fleet
    answers; while it does not, kept (the tutor told so, the flow over) and sent once later by the
    replay, which tells the tutor "sent" or why it was refused (payment-service charges it once)."""
    from services.telegram_bot import fallback  # only this write of the module is queued

    if who.bot.offline is None:  # before start-up: no queue, sent as the other writes ("Try again")
        await _send(update, who, conversation, "POST", path, body)
        return
    data = conversation.data
    what = who.t("tl_queued_complete", when=who.when(data["starts_at"]), student=data["student"])
    try:
        result = await fallback.queue_or_send(
            who, "lesson.complete", what, "POST", path, json_body=body, key=data["key"]
        )
    except fallback.Queued:
        await who.bot.conversations.end(who.chat_id)
        return
    except ApiError:
        await who.bot.conversations.end(who.chat_id)
        raise
    await who.bot.conversations.end(who.chat_id)
    await _done(update, who, data, DONE, result)


@flow(CANCEL)
async def _cancel_step(update: Update, context: Context, who: Caller, conversation: Conversation) -> None:
    value, typed, _ = _input(update, conversation.step)
    data = conversation.data
    if conversation.step == "kind" and value in ("free", "charge"):
        data["chargeable"] = value == "charge"
        await _advance(update, who, conversation, "reason")
    elif conversation.step == "reason" and (value == "skip" or (typed and typed.strip())):
        reason = None if value == "skip" else (typed or "").strip()
        if reason is not None and len(reason) > 1000:  # lesson-service's limit
            await _ask(update, who, conversation, who.t("tl_bad_reason"))
            return
        body = {"chargeable": data["chargeable"]} | ({"reason": reason} if reason else {})
        await _send(update, who, conversation, "POST", f"/api/v1/lessons/{data['lesson_id']}/cancel", body)
    elif conversation.step == "send":
        await _retry(update, who, conversation)
    else:
        await _ask(update, who, conversation, who.t("tl_press_buttons"))


@flow(MISSED)
async def _missed_step(update: Update, context: Context, who: Caller, conversation: Conversation) -> None:
    value, _, _ = _input(update, conversation.step)
    if conversation.step == "confirm" and value == "yes":
        await _send(update, who, conversation, "POST", f"/api/v1/lessons/{conversation.data['lesson_id']}/missed", {})
    elif conversation.step == "send":
        await _retry(update, who, conversation)
    else:
        await _ask(update, who, conversation, who.t("tl_press_buttons"))


@flow(MOVE)
async def _move_step(update: Update, context: Context, who: Caller, conversation: Conversation) -> None:
    if await _date_and_time(update, who, conversation):
        return
    if conversation.step == "send":
        await _retry(update, who, conversation)
        return
    await _ask(update, who, conversation, who.t("tl_press_buttons"))


# --- sending a flow's write ----------------------------------------------------------------------------


async def _send(
    update: Update,
    who: Caller,
    conversation: Conversation,
    method: str,
    path: str,
    body: dict[str, Any],
    done: str | None = None,
) -> None:
    """Keep the request with the flow's answers, then send it (``_resend`` sends it again as it was)."""
    conversation.data["request"] = {"method": method, "path": path, "body": body, "done": done or conversation.flow}
    await _resend(update, who, conversation)


async def _retry(update: Update, who: Caller, conversation: Conversation) -> None:
    """The "send" step: only "Try again" re-sends; anything else re-asks."""
    value, _, _ = _input(update, "send")
    if value == "retry":
        await _resend(update, who, conversation)
    else:
        await _ask(update, who, conversation, who.t("tl_press_buttons"))


async def _resend(update: Update, who: Caller, conversation: Conversation) -> None:
    data = conversation.data
    request = data.get("request")
    if request is None:
        await _ask(update, who, conversation, who.t("tl_press_buttons"))
        return
    key = data["key"] if request["method"] == "POST" else None
    try:
        result = await who.bot.api.call(
            who.user, request["method"], request["path"], json_body=request["body"], idempotency_key=key
        )
    except Unavailable:
        # the answers stay; "Try again" re-sends this very request with the same key
        conversation.step = "send"
        await who.bot.conversations.save(who.chat_id, conversation)
        await _ask(update, who, conversation)
        return
    except ApiError as refused:
        if refused.status == 409 and refused.code == "lesson_overlap" and "time" in data:
            await _overlap(update, who, conversation, refused)
            return
        await who.bot.conversations.end(who.chat_id)
        raise
    await who.bot.conversations.end(who.chat_id)
    await _done(update, who, data, request["done"], result)


async def _overlap(update: Update, who: Caller, conversation: Conversation, refused: ApiError) -> None:
    """The slot is taken: say by what (in the user's zone) and ask for another time, with a fresh key."""
    details = refused.details if isinstance(refused.details, dict) else {}
    if details.get("conflicting_starts_at") and details.get("conflicting_ends_at"):
        end = _hhmm(who, details["conflicting_ends_at"])
        try:  # name the lesson in the way: its student and subject after its end time
            other = await who.bot.api.get(who.user, f"/api/v1/lessons/{details['conflicting_lesson_id']}")
            end += f" ({await _student_name(who, other['student_id'])}, {other['subject']})"
        except (ApiError, KeyError):
            pass
        error = who.t("tl_overlap", start=who.when(details["conflicting_starts_at"]), end=end)
    else:
        error = who.t("tl_overlap_unknown")
    conversation.data["key"] = who.bot.api.new_key()
    conversation.data.pop("request", None)
    conversation.step = "time"
    await who.bot.conversations.save(who.chat_id, conversation)
    await _ask(update, who, conversation, error)


async def _done(update: Update, who: Caller, data: dict[str, Any], done: str, result: Any) -> None:
    menu = [(who.t("btn_week"), "sched:week"), (who.t("btn_menu"), "menu:main")]
    if done == NEW:
        lessons = result["lessons"] if "lessons" in result else [result]
        first = lessons[0]
        params = {"when": who.when(first["starts_at"]), "student": data["student"], "subject": first["subject"]}
        text = (
            who.t("tl_scheduled_one", **params)
            if "lessons" not in result
            else who.t("tl_scheduled_series", count=len(lessons), **params)
        )
        rows = [
            [(who.t("tl_btn_open"), f"lesson:open:{first['id']}")],
            [(who.t("tl_btn_another"), f"lesson:new:{data['student_id']}")],
            menu,
        ]
        await answer(update, text, rows)
        return
    when, student = who.when(data["starts_at"]), data["student"]
    if done == DONE:
        text = who.t("tl_completed", when=when, student=student) + "\n\n" + _card(who, result, student)
    elif done in ("missed", MISSED):
        text = who.t("tl_marked_missed", when=when, student=student)
    elif done == CANCEL:
        text = who.t(
            "tl_cancelled_charged" if result.get("chargeable") else "tl_cancelled_free", when=when, student=student
        )
    else:  # MOVE
        text = who.t("tl_moved", when=who.when(result["starts_at"]), student=student)
    await answer(update, text, [[(who.t("tl_btn_open"), f"lesson:open:{result['id']}")], menu])


def register(app: Application) -> None:  # type: ignore[type-arg]
    """Adds this area's handlers."""
    app.add_handler(CommandHandler("schedule", schedule))
    app.add_handler(CallbackQueryHandler(schedule, pattern=r"^sched:(day|week)$"))
    app.add_handler(CallbackQueryHandler(new_lesson, pattern=r"^lesson:new(:[0-9a-f-]{36})?$"))
    app.add_handler(CallbackQueryHandler(open_lesson, pattern=r"^lesson:open:"))
    app.add_handler(CallbackQueryHandler(lesson_action, pattern=r"^lesson:(done|cancel|move|missed):"))
