"""The tutor's work outside the lesson schedule, everything through the gateway:

- invites (``invite:*``, /invite): a one-time deep link for a student or a student's parent, as text
  and as a QR code;
- students (``students:list``) with their balances and debts;
- homework (``hw:*``): assign (student → title → due day → description), review what was handed in
  (the text and the files), grade 1–5 with an optional comment, or return it for rework;
- payments (``pay:*``): record a payment (student → amount in roubles → method), balances and debts;
- a document the tutor sends outside any flow becomes a material, shared with all students or one;
  the tutor's materials (``mat:list``), each shared again from there;
- the month report (``report:month``): income and attendance as text, income per day as a chart.

Multi-step flows are ``tw_*`` flows (handlers/flows.py); their POSTs carry an Idempotency-Key made at
the start of the flow and kept in its state, so a retried step lands once.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from telegram import InputFile, Update
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from services.telegram_bot import images
from services.telegram_bot.handlers.common import (
    Button,
    Caller,
    Context,
    answer,
    callback_args,
    caller,
    money,
    read_view,
    signed_in,
    stale_mark,
)
from services.telegram_bot.handlers.flows import flow, pressed
from services.telegram_bot.state import Conversation

log = logging.getLogger(__name__)

MAX_TELEGRAM_DOWNLOAD = 20 * 1024 * 1024  # the Bot API's getFile limit
DUE_DAYS = 7  # due-date buttons: tomorrow .. a week ahead
DUE_TIME = time(23, 59)  # a day's deadline is its end, in the tutor's zone
AMOUNT = re.compile(r"^\d{1,9}([.,]\d{1,2})?$")
DAY_MONTH = re.compile(r"^(\d{1,2})[./](\d{1,2})$")
METHODS = ("cash", "transfer", "card")
MATERIALS_SHOWN = 20


# --- small pieces ------------------------------------------------------------------------------


def cancel_row(who: Caller) -> list[Button]:
    return [(who.t("btn_cancel"), "flow:cancel")]


def menu_row(who: Caller) -> list[Button]:
    return [(who.t("btn_menu"), "menu:main")]


async def students_of(who: Caller) -> list[dict[str, Any]]:
    page = await who.bot.api.get(who.user, "/api/v1/users/students", limit=200)
    return list(page["items"])


def names_of(students: list[dict[str, Any]]) -> dict[str, str]:
    return {str(s["id"]): s["full_name"] for s in students}


def student_buttons(students: list[dict[str, Any]], prefix: str) -> list[list[Button]]:
    return [[(s["full_name"], f"{prefix}{s['id']}")] for s in students]


def parse_rubles(text: str) -> int | None:
    """Roubles as typed ("1500", "1500.50", "1 500,5") in kopecks; None for anything else or zero."""
    cleaned = text.strip().replace(" ", "").replace("\u00a0", "").removesuffix("₽").removesuffix("руб")
    if not AMOUNT.match(cleaned):
        return None
    try:
        kopecks = int(Decimal(cleaned.replace(",", ".")) * 100)
    except InvalidOperation:
        return None
    return kopecks or None


def parse_day(text: str, today: date) -> date | None:
    """A typed "25.05": the next 25 May from today on (this year, or next year once it has passed)."""
    match = DAY_MONTH.match(text.strip())
    if match is None:
        return None
    day, month = int(match.group(1)), int(match.group(2))
    for year in (today.year, today.year + 1):
        try:
            candidate = date(year, month, day)
        except ValueError:
            return None
        if candidate >= today:
            return candidate
    return None


def today_of(who: Caller) -> date:
    return who.bot.clock.now().astimezone(who.zone).date()


def short_day(who: Caller, day: date) -> str:
    return f"{who.t('tw_weekdays').split()[day.weekday()]} {day:%d.%m}"


# --- invites ---------------------------------------------------------------------------------


@signed_in("tutor")
async def invite_menu(update: Update, context: Context, who: Caller) -> None:
    rows = [
        [(who.t("tw_btn_invite_student"), "invite:student")],
        [(who.t("tw_btn_invite_parent"), "invite:parent")],
        menu_row(who),
    ]
    await answer(update, who.t("tw_invite_choose"), rows)


@signed_in("tutor")
async def invite_student(update: Update, context: Context, who: Caller) -> None:
    await send_invite(update, context, who, {"role": "student"}, None)


@signed_in("tutor")
async def invite_parent(update: Update, context: Context, who: Caller) -> None:
    students = await students_of(who)
    if not students:
        await answer(update, who.t("tw_no_students"), [[(who.t("tw_btn_invite_student"), "invite:student")]])
        return
    rows = student_buttons(students, "invite:for:") + [menu_row(who)]
    await answer(update, who.t("tw_invite_parent_of"), rows)


@signed_in("tutor")
async def invite_parent_for(update: Update, context: Context, who: Caller) -> None:
    student_id = callback_args(update)[0]
    name = names_of(await students_of(who)).get(student_id)
    if name is None:
        await answer(update, who.t("not_found"))
        return
    await send_invite(update, context, who, {"role": "parent", "student_id": student_id}, name)


async def send_invite(
    update: Update, context: Context, who: Caller, body: dict[str, Any], student_name: str | None
) -> None:
    invite = await who.bot.api.post(who.user, "/api/v1/users/invites", body)
    # user-service builds its link from its configured bot name; this bot's own name (getMe, fetched by
    # Application.initialize) is the one that works
    link = f"https://t.me/{context.bot.username or who.bot.username}?start={invite['code']}"
    until = who.when(invite["expires_at"])
    if student_name is None:
        text = who.t("tw_invite_student_link", link=link, until=until)
    else:
        text = who.t("tw_invite_parent_link", link=link, until=until, student=student_name)
    await answer(update, text)
    png = await asyncio.to_thread(images.invite_qr_png, link)
    await context.bot.send_photo(
        who.chat_id, photo=InputFile(png, filename="invite.png"), caption=who.t("tw_invite_qr_caption", link=link)
    )


# --- students, balances, debts -------------------------------------------------------------------


async def balances_view(who: Caller) -> dict[str, Any]:
    students = await students_of(who)
    api, session = who.bot.api, who.user
    balances = await asyncio.gather(*(api.get(session, f"/api/v1/payments/balances/{s['id']}") for s in students))
    debts = await api.get(session, "/api/v1/payments/debts", limit=200)
    return {"students": students, "balances": list(balances), "debts": debts["items"]}


def balances_text(who: Caller, view: dict[str, Any], title: str) -> str:
    students = view["students"]
    if not students:
        return who.t("tw_no_students")
    lines = [title]
    for student, balance in zip(students, view["balances"], strict=True):
        lines.append(
            who.t(
                "tw_student_line",
                name=student["full_name"],
                balance=money(balance["balance"], balance["currency"]),
                lessons=balance["lessons_covered"],
            )
        )
    names = names_of(students)
    lines.append("")
    if view["debts"]:
        lines.append(who.t("tw_debts_title"))
        for debt in view["debts"]:
            lines.append(
                who.t(
                    "tw_debt_line",
                    name=names.get(str(debt["student_id"]), "?"),
                    debt=money(-debt["balance"], debt["currency"]),
                    since=who.local(debt["since"]).strftime("%d.%m"),
                )
            )
    else:
        lines.append(who.t("tw_no_debts"))
    return "\n".join(lines)


@signed_in("tutor")
async def students_list(update: Update, context: Context, who: Caller) -> None:
    view, fetched_at = await read_view(who, "tw_balances", lambda: balances_view(who))
    text = stale_mark(who, fetched_at) + balances_text(
        who, view, who.t("tw_students_title", count=len(view["students"]))
    )
    rows = [[(who.t("tw_btn_invite_student"), "invite:student"), (who.t("tw_btn_pay_new"), "pay:new")], menu_row(who)]
    await answer(update, text, rows)


# --- homework ------------------------------------------------------------------------------------


@signed_in()
async def homework_list(update: Update, context: Context, who: Caller) -> None:
    """The main menu's homework button (the same data in every role's menu): the tutor's homework here.
    handlers/student.py answers students and parents in an earlier group; should one reach this, it is
    handed to that module's ``homework_list``."""
    if who.user.role != "tutor":
        from services.telegram_bot.handlers import student

        theirs = getattr(student, "homework_list", None)
        if theirs is None:
            await answer(update, who.t("tw_not_available"))
            return
        await theirs(update, context)
        return
    submitted = await who.bot.api.get(who.user, "/api/v1/homework", status="submitted", limit=200)
    count = len(submitted["items"])
    rows = [
        [(who.t("tw_btn_hw_assign"), "hw:new")],
        [(who.t("tw_btn_hw_submitted", count=count), "hw:submitted")],
        menu_row(who),
    ]
    await answer(update, who.t("tw_hw_menu", count=count), rows)


@signed_in("tutor")
async def homework_new(update: Update, context: Context, who: Caller) -> None:
    students = await students_of(who)
    if not students:
        await answer(update, who.t("tw_no_students"), [[(who.t("tw_btn_invite_student"), "invite:student")]])
        return
    await who.bot.conversations.begin(who.chat_id, "tw_hw", "student", key=who.bot.api.new_key())
    rows = student_buttons(students, "flow:tw_hw:s:") + [cancel_row(who)]
    await answer(update, who.t("tw_hw_pick_student"), rows)


async def take_student(
    update: Update, who: Caller, conversation: Conversation, button: list[str] | None, next_step: str, ask: str
) -> None:
    """A flow's "which student" step: one of the tutor's students by button (``s:<id>``), else asked again."""
    students = names_of(await students_of(who))
    if not button or button[0] != "s" or button[1] not in students:
        await answer(update, who.t("tw_pick_with_buttons"))
        return
    conversation.data.update(student_id=button[1], student=students[button[1]])
    conversation.step = next_step
    await who.bot.conversations.save(who.chat_id, conversation)
    await answer(update, who.t(ask, student=conversation.data["student"]), [cancel_row(who)])


def due_buttons(who: Caller) -> list[list[Button]]:
    today = today_of(who)
    days = [today + timedelta(days=n) for n in range(1, DUE_DAYS + 1)]
    buttons = [(short_day(who, d), f"flow:tw_hw:d:{d.isoformat()}") for d in days]
    return [buttons[:4], buttons[4:], cancel_row(who)]


@flow("tw_hw")
async def homework_step(update: Update, context: Context, who: Caller, conversation: Conversation) -> None:
    store, data = who.bot.conversations, conversation.data
    button = pressed(update)
    typed = (update.message.text or "").strip() if update.message and button is None else None
    if conversation.step == "student":
        await take_student(update, who, conversation, button, "title", "tw_hw_ask_title")
    elif conversation.step == "title":
        if not typed or len(typed) > 300:
            await answer(update, who.t("tw_hw_title_invalid"), [cancel_row(who)])
            return
        data["title"] = typed
        conversation.step = "due"
        await store.save(who.chat_id, conversation)
        await answer(update, who.t("tw_hw_ask_due"), due_buttons(who))
    elif conversation.step == "due":
        due: date | None = None
        if button and button[0] == "d":
            due = date.fromisoformat(button[1])
        elif typed:
            due = parse_day(typed, today_of(who))
        if due is None:
            await answer(update, who.t("tw_hw_due_invalid"), due_buttons(who))
            return
        data["due_at"] = datetime.combine(due, DUE_TIME, tzinfo=who.zone).isoformat()
        conversation.step = "description"
        await store.save(who.chat_id, conversation)
        rows = [[(who.t("tw_btn_no_description"), "flow:tw_hw:skip")], cancel_row(who)]
        await answer(update, who.t("tw_hw_ask_description"), rows)
    elif conversation.step == "description":
        if button == ["skip"]:
            description = None
        elif typed:
            description = typed[:20_000]
        else:
            await answer(update, who.t("tw_text_expected"), [[(who.t("tw_btn_no_description"), "flow:tw_hw:skip")]])
            return
        body = {"student_id": data["student_id"], "title": data["title"], "due_at": data["due_at"]}
        if description:
            body["description"] = description
        homework = await who.bot.api.post(who.user, "/api/v1/homework", body, key=data["key"])
        await store.end(who.chat_id)
        text = who.t(
            "tw_hw_assigned", title=homework["title"], student=data["student"], due=who.when(homework["due_at"])
        )
        await answer(update, text, [[(who.t("tw_btn_hw_assign"), "hw:new")], menu_row(who)])


@signed_in("tutor")
async def homework_submitted(update: Update, context: Context, who: Caller) -> None:
    page = await who.bot.api.get(who.user, "/api/v1/homework", status="submitted", limit=50)
    if not page["items"]:
        await answer(update, who.t("tw_hw_none_submitted"), [[(who.t("tw_btn_hw_assign"), "hw:new")], menu_row(who)])
        return
    names = names_of(await students_of(who))
    rows = [
        [(f"{names.get(str(hw['student_id']), '?')}: {hw['title']}"[:60], f"hw:open:{hw['id']}")]
        for hw in page["items"]
    ]
    await answer(update, who.t("tw_hw_submitted_title"), rows + [menu_row(who)])


@signed_in("tutor")
async def homework_open(update: Update, context: Context, who: Caller) -> None:
    homework_id = callback_args(update)[0]
    api, session = who.bot.api, who.user
    homework = await api.get(session, f"/api/v1/homework/{homework_id}")
    submissions = (await api.get(session, f"/api/v1/homework/{homework_id}/submissions"))["items"]
    names = names_of(await students_of(who))
    student = names.get(str(homework["student_id"]), "?")
    if not submissions:
        await answer(update, who.t("tw_hw_no_submission", title=homework["title"], student=student))
        return
    latest = submissions[-1]
    for material_id in latest["material_ids"]:  # the files handed in, as documents
        material = await api.get(session, f"/api/v1/materials/{material_id}")
        content = await api.call(session, "GET", f"/api/v1/materials/{material_id}/download")
        name = material.get("filename") or material.get("title") or "file"
        await context.bot.send_document(who.chat_id, document=InputFile(content, filename=name))
    text = who.t(
        "tw_hw_card",
        title=homework["title"],
        student=student,
        due=who.when(homework["due_at"]),
        submitted=who.when(latest["submitted_at"]) + (who.t("tw_hw_late") if latest["late"] else ""),
        text=latest["text"] or who.t("tw_hw_no_text"),
        files=len(latest["material_ids"]),
    )
    rows: list[list[Button]] = []
    if homework["status"] == "submitted":
        rows.append([(str(grade), f"hw:grade:{homework_id}:{grade}") for grade in range(1, 6)])
        rows.append([(who.t("tw_btn_return"), f"hw:return:{homework_id}")])
    rows.append([(who.t("btn_back"), "hw:submitted"), *menu_row(who)])
    await answer(update, text, rows)


@signed_in("tutor")
async def homework_grade(update: Update, context: Context, who: Caller) -> None:
    homework_id, grade = callback_args(update)[:2]  # the pattern admits grades 1-5 only
    homework = await who.bot.api.get(who.user, f"/api/v1/homework/{homework_id}")
    await who.bot.conversations.begin(
        who.chat_id,
        "tw_review",
        "comment",
        action="grade",
        homework_id=homework_id,
        title=homework["title"],
        grade=int(grade),
        key=who.bot.api.new_key(),
    )
    rows = [[(who.t("tw_btn_no_comment"), "flow:tw_review:skip")], cancel_row(who)]
    await answer(update, who.t("tw_hw_ask_comment", grade=grade, title=homework["title"]), rows)


@signed_in("tutor")
async def homework_return(update: Update, context: Context, who: Caller) -> None:
    homework_id = callback_args(update)[0]
    homework = await who.bot.api.get(who.user, f"/api/v1/homework/{homework_id}")
    await who.bot.conversations.begin(
        who.chat_id,
        "tw_review",
        "comment",
        action="return",
        homework_id=homework_id,
        title=homework["title"],
        key=who.bot.api.new_key(),
    )
    rows = [[(who.t("tw_btn_no_comment"), "flow:tw_review:skip")], cancel_row(who)]
    await answer(update, who.t("tw_hw_ask_return_comment", title=homework["title"]), rows)


@flow("tw_review")
async def review_step(update: Update, context: Context, who: Caller, conversation: Conversation) -> None:
    """The comment of a grade or of a return for rework (typed, or skipped with the button)."""
    data, button = conversation.data, pressed(update)
    typed = (update.message.text or "").strip() if update.message and button is None else None
    if button != ["skip"] and not typed:
        await answer(update, who.t("tw_text_expected"), [[(who.t("tw_btn_no_comment"), "flow:tw_review:skip")]])
        return
    body: dict[str, Any] = {"comment": typed[:10_000]} if typed else {}
    path = f"/api/v1/homework/{data['homework_id']}"
    if data["action"] == "grade":
        await who.bot.api.post(who.user, f"{path}/grade", {"grade": data["grade"], **body}, key=data["key"])
        text = who.t("tw_hw_graded", title=data["title"], grade=data["grade"])
    else:
        await who.bot.api.post(who.user, f"{path}/return", body, key=data["key"])
        text = who.t("tw_hw_returned", title=data["title"])
    await who.bot.conversations.end(who.chat_id)
    await answer(update, text, [[(who.t("tw_btn_hw_more"), "hw:submitted")], menu_row(who)])


# --- payments ------------------------------------------------------------------------------------


@signed_in("tutor")
async def payments_menu(update: Update, context: Context, who: Caller) -> None:
    rows = [
        [(who.t("tw_btn_pay_new"), "pay:new")],
        [(who.t("tw_btn_pay_balances"), "pay:balances")],
        menu_row(who),
    ]
    await answer(update, who.t("tw_pay_menu"), rows)


@signed_in("tutor")
async def payments_balances(update: Update, context: Context, who: Caller) -> None:
    view, fetched_at = await read_view(who, "tw_balances", lambda: balances_view(who))
    text = stale_mark(who, fetched_at) + balances_text(who, view, who.t("tw_balances_title"))
    await answer(update, text, [[(who.t("tw_btn_pay_new"), "pay:new")], menu_row(who)])


@signed_in("tutor")
async def payment_new(update: Update, context: Context, who: Caller) -> None:
    students = await students_of(who)
    if not students:
        await answer(update, who.t("tw_no_students"), [[(who.t("tw_btn_invite_student"), "invite:student")]])
        return
    await who.bot.conversations.begin(who.chat_id, "tw_pay", "student", key=who.bot.api.new_key())
    await answer(update, who.t("tw_pay_pick_student"), student_buttons(students, "flow:tw_pay:s:") + [cancel_row(who)])


def method_buttons(who: Caller) -> list[list[Button]]:
    return [[(who.t(f"tw_btn_{m}"), f"flow:tw_pay:m:{m}") for m in METHODS], cancel_row(who)]


@flow("tw_pay")
async def payment_step(update: Update, context: Context, who: Caller, conversation: Conversation) -> None:
    store, data = who.bot.conversations, conversation.data
    button = pressed(update)
    typed = (update.message.text or "").strip() if update.message and button is None else None
    if conversation.step == "student":
        await take_student(update, who, conversation, button, "amount", "tw_pay_ask_amount")
    elif conversation.step == "amount":
        amount = parse_rubles(typed or "")
        if amount is None:
            await answer(update, who.t("tw_pay_amount_invalid"), [cancel_row(who)])
            return
        data["amount"] = amount
        conversation.step = "method"
        await store.save(who.chat_id, conversation)
        await answer(update, who.t("tw_pay_ask_method", amount=money(amount)), method_buttons(who))
    elif conversation.step == "method":
        if not button or button[0] != "m" or button[1] not in METHODS:
            await answer(update, who.t("tw_pick_with_buttons"), method_buttons(who))
            return
        body = {"student_id": data["student_id"], "amount": data["amount"], "currency": "RUB", "method": button[1]}
        entry = await who.bot.api.post(who.user, "/api/v1/payments/top-ups", body, key=data["key"])
        await store.end(who.chat_id)
        text = who.t(
            "tw_pay_recorded",
            amount=money(entry["amount"], entry["currency"]),
            student=data["student"],
            method=who.t(f"tw_btn_{button[1]}"),
            balance=money(entry["balance_after"], entry["currency"]),
        )
        rows = [[(who.t("tw_btn_pay_new"), "pay:new"), (who.t("tw_btn_pay_balances"), "pay:balances")], menu_row(who)]
        await answer(update, text, rows)


# --- a document becomes a shared material ---------------------------------------------------------


async def on_document(update: Update, context: Context) -> None:
    """A tutor's document outside any flow and not a reply: upload it as a material and offer to share it.

    Registered in a group of its own before all others (only one handler per group runs): anything it
    leaves (a flow's or a reply's document, anyone but a tutor) goes on to the handlers that own it; what
    it takes goes no further."""
    message = update.effective_message
    if message is None or message.document is None or message.reply_to_message is not None:
        return
    who = await caller(update, context)
    if who.session is None or who.session.role != "tutor":
        return
    if await who.bot.conversations.get(who.chat_id) is not None:
        return
    try:
        await upload_document(update, context, who)
    except Exception as error:  # reported by the app's error handler; the update still stops here
        await context.application.process_error(update, error)
    raise ApplicationHandlerStop


async def upload_document(update: Update, context: Context, who: Caller) -> None:
    message = update.effective_message
    assert message is not None and message.document is not None
    document = message.document
    if document.file_size and document.file_size > MAX_TELEGRAM_DOWNLOAD:
        await answer(update, who.t("tw_mat_too_big"))
        return
    content = bytes(await (await context.bot.get_file(document.file_id)).download_as_bytearray())
    name = document.file_name or "file"
    title = (message.caption or name).strip()[:200] or name
    material = await who.bot.api.call(
        who.user,
        "POST",
        "/api/v1/materials",
        files={"file": (name, content, document.mime_type or "application/octet-stream")},
        data={"title": title},
        # the same Telegram message uploads once, however often the call is retried
        idempotency_key=f"tg-doc-{who.chat_id}-{message.message_id}",
    )
    await who.bot.conversations.begin(who.chat_id, "tw_share", "choose", material_id=material["id"], title=title)
    await answer(update, who.t("tw_mat_uploaded", title=title), share_buttons(who))


def share_buttons(who: Caller) -> list[list[Button]]:
    return [
        [(who.t("tw_btn_share_all"), "flow:tw_share:all")],
        [(who.t("tw_btn_share_one"), "flow:tw_share:pick")],
        cancel_row(who),
    ]


@signed_in("tutor")
async def materials_list(update: Update, context: Context, who: Caller) -> None:
    """The tutor's materials, newest first, each with a button to share it (student.py answers students)."""
    page = await who.bot.api.get(who.user, "/api/v1/materials", limit=MATERIALS_SHOWN)
    mine = [m for m in page["items"] if str(m["owner_id"]) == who.user.user_id]
    if not mine:
        await answer(update, who.t("tw_mat_none"), [menu_row(who)])
        return
    lines = [who.t("tw_mat_list_title", count=len(mine))]
    lines += [f"• {m['title']}" + (who.t("tw_mat_for_all") if m["share_all"] else "") for m in mine]
    rows = [[(f"📤 {m['title']}"[:48], f"mat:share:{m['id']}")] for m in mine]
    await answer(update, "\n".join(lines), rows + [menu_row(who)])


@signed_in("tutor")
async def material_share(update: Update, context: Context, who: Caller) -> None:
    material_id = callback_args(update)[0]
    material = await who.bot.api.get(who.user, f"/api/v1/materials/{material_id}")
    await who.bot.conversations.begin(
        who.chat_id, "tw_share", "choose", material_id=material_id, title=material["title"]
    )
    await answer(update, who.t("tw_mat_share_which", title=material["title"]), share_buttons(who))


@flow("tw_share")
async def share_step(update: Update, context: Context, who: Caller, conversation: Conversation) -> None:
    data, button = conversation.data, pressed(update)
    message = update.effective_message
    if button is None and message is not None and message.document is not None:  # another document: that one now
        await who.bot.conversations.end(who.chat_id)
        await upload_document(update, context, who)
        return
    path = f"/api/v1/materials/{data['material_id']}/share"
    if button == ["all"]:
        await who.bot.api.post(who.user, path, {"all_students": True})
        await who.bot.conversations.end(who.chat_id)
        await answer(update, who.t("tw_mat_shared_all", title=data["title"]), [menu_row(who)])
    elif button == ["pick"]:
        students = await students_of(who)
        if not students:
            await answer(update, who.t("tw_no_students"), [cancel_row(who)])
            return
        rows = student_buttons(students, "flow:tw_share:s:") + [cancel_row(who)]
        await answer(update, who.t("tw_mat_pick_student", title=data["title"]), rows)
    elif button and button[0] == "s" and len(button) == 2:
        names = names_of(await students_of(who))
        if button[1] not in names:
            await answer(update, who.t("not_found"))
            return
        await who.bot.api.post(who.user, path, {"student_ids": [button[1]]})
        await who.bot.conversations.end(who.chat_id)
        await answer(update, who.t("tw_mat_shared_one", title=data["title"], student=names[button[1]]), [menu_row(who)])
    else:
        await answer(update, who.t("tw_mat_choose"), share_buttons(who))


# --- the month report ----------------------------------------------------------------------------


@signed_in("tutor")
async def month_report(update: Update, context: Context, who: Caller) -> None:
    today = today_of(who)
    first = today.replace(day=1)
    api, session = who.bot.api, who.user
    span = {"from": first.isoformat(), "to": today.isoformat()}
    summary = await api.get(session, f"/api/v1/analytics/tutors/{session.user_id}/summary", **span)
    income = await api.get(session, f"/api/v1/analytics/tutors/{session.user_id}/income", group="day", **span)
    currency = summary["income"][0]["currency"] if summary["income"] else "RUB"
    period = f"{today:%m.%Y}"
    rate = summary.get("attendance_rate")
    homework = summary["homework"]
    text = who.t(
        "tw_report",
        period=period,
        income=", ".join(money(row["amount"], row["currency"]) for row in summary["income"]) or money(0, currency),
        held=summary["lessons"]["held"],
        cancelled=summary["lessons"]["cancelled"],
        missed=summary["lessons"]["missed"],
        attendance=f"{round(rate * 100)}%" if rate is not None else "—",
        active=summary["active_students"],
        assigned=homework["assigned"],
        completed=homework["completed"],
        average=homework["average_grade"] or "—",
    )
    await answer(update, text, [menu_row(who)])
    per_day = {row["period"]: row["income"] for row in income["items"] if row["currency"] == currency}
    days = [first + timedelta(days=n) for n in range((today - first).days + 1)]
    labels = [str(day.day) for day in days]
    values = [per_day.get(day.isoformat(), 0) / 100 for day in days]
    symbol = money(0, currency).split("\u00a0")[-1]
    png = await asyncio.to_thread(
        images.bar_chart_png, who.t("tw_chart_title", period=period), labels, values, unit=symbol
    )
    await context.bot.send_photo(
        who.chat_id, photo=InputFile(png, filename="income.png"), caption=who.t("tw_chart_title", period=period)
    )


def register(app: Application) -> None:  # type: ignore[type-arg]
    """Adds this area's handlers."""
    app.add_handler(CommandHandler("invite", invite_menu))
    app.add_handler(CallbackQueryHandler(invite_menu, pattern=r"^invite:new$"))
    app.add_handler(CallbackQueryHandler(invite_student, pattern=r"^invite:student$"))
    app.add_handler(CallbackQueryHandler(invite_parent, pattern=r"^invite:parent$"))
    app.add_handler(CallbackQueryHandler(invite_parent_for, pattern=r"^invite:for:[0-9a-f-]{36}$"))
    app.add_handler(CallbackQueryHandler(students_list, pattern=r"^students:list$"))
    app.add_handler(CallbackQueryHandler(homework_list, pattern=r"^hw:list$"))
    app.add_handler(CallbackQueryHandler(homework_new, pattern=r"^hw:new$"))
    app.add_handler(CallbackQueryHandler(homework_submitted, pattern=r"^hw:submitted$"))
    app.add_handler(CallbackQueryHandler(homework_open, pattern=r"^hw:open:[0-9a-f-]{36}$"))
    app.add_handler(CallbackQueryHandler(homework_grade, pattern=r"^hw:grade:[0-9a-f-]{36}:[1-5]$"))
    app.add_handler(CallbackQueryHandler(homework_return, pattern=r"^hw:return:[0-9a-f-]{36}$"))
    app.add_handler(CallbackQueryHandler(payments_menu, pattern=r"^pay:menu$"))
    app.add_handler(CallbackQueryHandler(payment_new, pattern=r"^pay:new$"))
    app.add_handler(CallbackQueryHandler(payments_balances, pattern=r"^pay:balances$"))
    app.add_handler(CallbackQueryHandler(month_report, pattern=r"^report:month$"))
    app.add_handler(CallbackQueryHandler(materials_list, pattern=r"^mat:list$"))
    app.add_handler(CallbackQueryHandler(material_share, pattern=r"^mat:share:[0-9a-f-]{36}$"))
    # a group of its own, before everyone's (student.py's screens are group -1): see on_document
    app.add_handler(MessageHandler(filters.Document.ALL & filters.ChatType.PRIVATE, on_document), group=-2)
