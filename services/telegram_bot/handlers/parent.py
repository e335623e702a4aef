"""The parent's screens: their children (several are possible), and per child the schedule, balance,
homework status, attendance and homework completion, and a monthly report.

A parent's children come from user-service's ``GET /api/v1/users/me/contacts`` (relation ``child``);
every per-child call is checked again by the service that answers it (another family's child → 404).
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler

from services.telegram_bot.handlers.common import Caller, Context, answer, callback_args, money, read_view, stale_mark
from services.telegram_bot.handlers.student import balance_text, for_family

SCHEDULE_DAYS = 14
RATES_DAYS = 30


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
        [(who.t("par_btn_report"), f"child:report:{child_id}")],
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
    app.add_handler(CallbackQueryHandler(child_screen, pattern=r"^child:(open|sched|bal|hw|rates|report):"), group=-1)
    app.add_handler(CommandHandler("children", children_list), group=-1)
