"""The parent's screens: their children (several are possible), and per child the schedule, balance,
homework status, attendance and homework completion, a monthly report and a weekly summary.

A parent's children come from user-service's ``GET /api/v1/users/me/contacts`` (relation ``child``);
every per-child call is checked again by the service that answers it (another family's child → 404).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, time, timedelta
from typing import Any

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler

from services.telegram_bot.handlers.common import Caller, Context, answer, callback_args, money, read_view, stale_mark
from services.telegram_bot.handlers.student import balance_text, for_family

SCHEDULE_DAYS = 14
RATES_DAYS = 30
WEEK_DAYS = 7
MAX_SUBMISSION_READS = 20  # hand-in dates are read per assignment: the most recent ones only
LESSON_CHARGES = ("lesson_charge", "late_cancel_charge", "no_show_charge")
MASTERY = ("not_learned", "learned", "mastered")


async def children_of(who: Caller) -> list[dict[str, Any]]:
    contacts = await who.bot.api.get(who.user, "/api/v1/users/me/contacts")
    return [c for c in contacts["items"] if c["relation"] == "child"]


async def show_children(update: Update, context: Context, who: Caller) -> None:
    children = await children_of(who)
    if not children:
        await answer(update, who.t("par_no_children"))
        return
    rows = [[(child["full_name"][:60], f"child:open:{child['id']}")] for child in children]
    await answer(update, who.t("par_children"), rows)


@for_family
async def children_list(update: Update, context: Context, who: Caller) -> None:
    if who.user.role != "parent":
        await answer(update, who.t("not_allowed"))
        return
    await show_children(update, context, who)


def child_menu(who: Caller, child_id: str) -> list[list[tuple[str, str]]]:
    return [
        [(who.t("par_btn_schedule"), f"child:sched:{child_id}"), (who.t("par_btn_balance"), f"child:bal:{child_id}")],
        [(who.t("par_btn_homework"), f"child:hw:{child_id}"), (who.t("par_btn_rates"), f"child:rates:{child_id}")],
        [(who.t("par_btn_week"), f"child:week:{child_id}"), (who.t("par_btn_report"), f"child:report:{child_id}")],
        [(who.t("btn_back"), "children:list")],
    ]


def _percent(who: Caller, part: int, whole: int) -> str:
    return f"{round(100 * part / whole)}%" if whole else who.t("par_no_data")


def _sum(rows: list[dict[str, Any]], field: str) -> int:
    return sum(int(row.get(field) or 0) for row in rows)


@for_family
async def child_screen(update: Update, context: Context, who: Caller) -> None:
    """``child:<what>:<student id>``: one of the child's screens."""
    if who.user.role != "parent":
        await answer(update, who.t("not_allowed"))
        return
    data = update.callback_query.data if update.callback_query else ""
    what = (data or "").split(":")[1]
    [child_id, *_] = callback_args(update) or [""]
    child = next((c for c in await children_of(who) if c["id"] == child_id), None)
    if child is None:  # unlinked meanwhile, or not this parent's child
        await answer(update, who.t("not_found"))
        return
    name = child["full_name"]
    api = who.bot.api
    if what == "open":
        await answer(update, who.t("par_child_menu", name=name), child_menu(who, child_id))
    elif what == "sched":
        now = who.bot.clock.now()
        page = await api.get(
            who.user,
            "/api/v1/lessons",
            student_id=child_id,
            status="scheduled",
            **{"from": now.isoformat(), "to": (now + timedelta(days=SCHEDULE_DAYS)).isoformat()},
        )
        lessons = page["items"]
        if not lessons:
            await answer(update, who.t("par_no_lessons", name=name), child_menu(who, child_id))
            return
        lines = [who.t("par_schedule", name=name)]
        for lesson in lessons:
            topic = f": {lesson['topic']}" if lesson.get("topic") else ""
            lines.append(
                who.t("par_lesson_row", when=who.when(lesson["starts_at"]), subject=lesson["subject"], topic=topic)
            )
        await answer(update, "\n".join(lines), child_menu(who, child_id))
    elif what == "bal":
        balance, fetched_at = await read_view(
            who, f"balance:{child_id}", lambda: api.get(who.user, f"/api/v1/payments/balances/{child_id}")
        )
        text = stale_mark(who, fetched_at) + who.t("par_balance_of", name=name) + "\n" + balance_text(who, balance)
        await answer(update, text, child_menu(who, child_id))
    elif what == "hw":
        page = await api.get(who.user, "/api/v1/homework", student_id=child_id, limit=200)
        counts = Counter(item["status"] for item in page["items"])
        text = who.t(
            "par_homework",
            name=name,
            total=len(page["items"]),
            assigned=counts["assigned"],
            submitted=counts["submitted"],
            graded=counts["graded"],
            returned=counts["returned"],
            overdue=counts["overdue"],
        )
        await answer(update, text, child_menu(who, child_id))
    elif what == "rates":
        today = who.local(who.bot.clock.now()).date()
        progress = await api.get(
            who.user,
            f"/api/v1/analytics/students/{child_id}/progress",
            **{"from": (today - timedelta(days=RATES_DAYS - 1)).isoformat(), "to": today.isoformat()},
        )
        rows = progress["items"]
        held, missed = _sum(rows, "lessons_held"), _sum(rows, "lessons_missed")
        assigned, completed = _sum(rows, "homework_assigned"), _sum(rows, "homework_completed")
        text = who.t(
            "par_rates",
            name=name,
            attendance=_percent(who, held, held + missed),
            held=held,
            missed=missed,
            completion=_percent(who, completed, assigned),
            completed=completed,
            assigned=assigned,
        )
        await answer(update, text, child_menu(who, child_id))
    elif what == "report":
        await answer(update, await monthly_report(who, child_id, name), child_menu(who, child_id))
    elif what == "week":
        await answer(update, await weekly_summary(who, child_id, name), child_menu(who, child_id))


def _since(moment: str | None, start: datetime) -> bool:
    return moment is not None and datetime.fromisoformat(moment) >= start


async def weekly_summary(who: Caller, child_id: str, name: str) -> str:
    """The last 7 days (today and the 6 before, in the parent's zone): each lesson with its grade and
    mastery, homework handed in or graded with grades, money in and out, and analytics' counts."""
    api = who.bot.api
    now = who.bot.clock.now()
    today = who.local(now).date()
    first = today - timedelta(days=WEEK_DAYS - 1)
    start = datetime.combine(first, time(), who.zone)
    none = who.t("par_no_data")
    lines = [who.t("par_week", name=name, start=f"{first:%d.%m}", end=f"{today:%d.%m}")]

    page = await api.get(
        who.user,
        "/api/v1/lessons",
        student_id=child_id,
        limit=200,
        **{"from": start.isoformat(), "to": now.isoformat()},
    )
    lessons = sorted(page["items"], key=lambda x: x["starts_at"])
    counts = Counter(x["status"] for x in lessons)
    lines.append(
        who.t("par_week_lessons", held=counts["completed"], missed=counts["missed"], cancelled=counts["cancelled"])
    )
    for lesson in lessons:
        if lesson["status"] == "completed":
            parts = [who.t("par_week_late")] if lesson.get("attendance") == "late" else []
            if lesson.get("grade"):
                parts.append(who.t("par_week_grade", grade=lesson["grade"]))
            if lesson.get("mastery") in MASTERY:
                parts.append(who.t(f"tl_mastery_{lesson['mastery']}"))
            result = ", ".join(parts) or who.t("par_week_held")
        elif lesson["status"] in ("missed", "cancelled"):
            result = who.t(f"par_week_{lesson['status']}")
        else:  # today's, not marked yet
            result = who.t("par_week_not_marked")
        lines.append(
            who.t("par_week_row", when=who.when(lesson["starts_at"]), subject=lesson["subject"], result=result)
        )

    homework = (await api.get(who.user, "/api/v1/homework", student_id=child_id, limit=200))["items"]
    handed = [h for h in homework if h["status"] in ("submitted", "graded", "returned")]
    handed.sort(key=lambda h: h["created_at"], reverse=True)
    handed_in: dict[str, str] = {}  # homework id → the latest hand-in this week
    for item in handed[:MAX_SUBMISSION_READS]:
        submissions = (await api.get(who.user, f"/api/v1/homework/{item['id']}/submissions"))["items"]
        recent = [s["submitted_at"] for s in submissions if _since(s["submitted_at"], start)]
        if recent:
            handed_in[item["id"]] = max(recent)
    graded = [h for h in homework if h["status"] == "graded" and _since(h.get("graded_at"), start)]
    lines.append(who.t("par_week_homework", submitted=len(handed_in), graded=len(graded)))
    for item in homework:
        if item["id"] not in handed_in and item not in graded:
            continue
        if item in graded:
            result = who.t("par_week_grade", grade=item["grade"])
        elif item["status"] == "returned":
            result = who.t("par_week_hw_returned")
        else:
            result = who.t("par_week_hw_waiting")
        if item["id"] in handed_in:
            result = (
                who.t("par_week_hw_handed", date=who.local(handed_in[item["id"]]).strftime("%d.%m")) + ", " + result
            )
        lines.append(who.t("par_week_hw_row", title=item["title"], result=result))

    statement = (await api.get(who.user, f"/api/v1/payments/statements/{child_id}", limit=200))["items"]
    week = [e for e in statement if _since(e["created_at"], start)]
    balance = await api.get(who.user, f"/api/v1/payments/balances/{child_id}")
    currency = balance["currency"]
    lines.append(
        who.t(
            "par_week_money",
            top_ups=money(sum(e["amount"] for e in week if e["kind"] == "top_up"), currency),
            charges=money(-sum(e["amount"] for e in week if e["kind"] in LESSON_CHARGES), currency),
            balance=money(balance["balance"], currency),
        )
    )

    progress = await api.get(
        who.user,
        f"/api/v1/analytics/students/{child_id}/progress",
        **{"from": first.isoformat(), "to": today.isoformat()},
    )
    rows = progress["items"]
    held, missed = _sum(rows, "lessons_held"), _sum(rows, "lessons_missed")
    lines.append(
        who.t(
            "par_week_rates",
            attendance=_percent(who, held, held + missed) if held + missed else none,
            completion=_percent(who, _sum(rows, "homework_completed"), _sum(rows, "homework_assigned")),
            mastered=_sum(rows, "topics_mastered"),
        )
    )
    return "\n".join(lines)


async def monthly_report(who: Caller, child_id: str, name: str) -> str:
    """This calendar month so far (in the parent's zone): lessons and homework from analytics, money from
    the payment statement's monthly totals."""
    api = who.bot.api
    today = who.local(who.bot.clock.now()).date()
    first = today.replace(day=1)
    progress = await api.get(
        who.user,
        f"/api/v1/analytics/students/{child_id}/progress",
        **{"from": first.isoformat(), "to": today.isoformat()},
    )
    rows = progress["items"]
    grades = [row for row in rows if row.get("average_lesson_grade")]
    homework_grades = [row for row in rows if row.get("average_homework_grade")]
    none = who.t("par_no_data")
    lines = [
        who.t(
            "par_report",
            name=name,
            month=first.strftime("%m.%Y"),
            held=_sum(rows, "lessons_held"),
            missed=_sum(rows, "lessons_missed"),
            lesson_grade=grades[-1]["average_lesson_grade"] if grades else none,
            completed=_sum(rows, "homework_completed"),
            assigned=_sum(rows, "homework_assigned"),
            homework_grade=homework_grades[-1]["average_homework_grade"] if homework_grades else none,
            mastered=_sum(rows, "topics_mastered"),
        )
    ]
    months = await api.get(who.user, f"/api/v1/payments/statements/{child_id}/monthly", timezone=who.user.timezone)
    this_month = [m for m in months["items"] if m["month"] == first.strftime("%Y-%m")]
    if not this_month:
        lines.append(who.t("par_report_no_money"))
    for month in this_month:
        currency = month["currency"]
        lines.append(
            who.t(
                "par_report_money",
                top_ups=money(month["top_ups"], currency),
                charges=money(month["charges"], currency),
                closing=money(month["closing_balance"], currency),
            )
        )
    return "\n".join(lines)


def register(app: Application) -> None:  # type: ignore[type-arg]
    app.add_handler(CallbackQueryHandler(children_list, pattern=r"^children:list$"), group=-1)
    app.add_handler(
        CallbackQueryHandler(child_screen, pattern=r"^child:(open|sched|bal|hw|rates|report|week):"), group=-1
    )
    app.add_handler(CommandHandler("children", children_list), group=-1)
