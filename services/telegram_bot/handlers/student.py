"""The student's screens: homework cards answered by reply, balance, progress, materials and tips.

A homework card asks for the work by reply (``expect_reply(..., "hw_submit")``): a text, a document or a
photo replying to it is handed in through :func:`submit_homework`, the one place the submission's API
calls live. They go through the offline queue (fallback.Outbox): sent at once when the fleet answers;
while it does not, kept, the student told so, and sent later exactly once (their Idempotency-Keys fixed).

Progress and tips are student-service's game layer: ``bot.students`` (integrations.StudentServiceIntegration)
fetches them and builds their texts.

``hw:list`` and ``mat:list`` are in the tutor's menu too; tutor_work answers those for tutors. This
module's handlers sit in group -1, act only for students and parents, and then stop the update, so a
student never also reaches the tutor's handler (and a tutor passes straight through).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from telegram import Message, Update
from telegram.ext import Application, ApplicationHandlerStop, CallbackQueryHandler, CommandHandler

from services.telegram_bot import fallback
from services.telegram_bot.api import ApiError
from services.telegram_bot.handlers.common import (
    Caller,
    Context,
    answer,
    callback_args,
    caller,
    money,
    read_view,
    stale_mark,
)
from services.telegram_bot.handlers.flows import reply
from services.telegram_bot.i18n import has
from services.telegram_bot.integrations import progress_text, tip_text
from services.telegram_bot.offline import QueuedWrite, ref

FAMILY = ("student", "parent")
HOMEWORK_SHOWN = 10
MATERIALS_SHOWN = 20
TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024  # the Bot API's getFile limit

FamilyHandler = Callable[[Update, Context, Caller], Awaitable[None]]


def for_family(handler: FamilyHandler) -> Callable[[Update, Context], Awaitable[None]]:
    """Run for a signed-in student or parent, then stop the update (even on an error, which goes to the
    error handler first); anyone else passes through to the handlers of later groups."""

    @functools.wraps(handler)
    async def run(update: Update, context: Context) -> None:
        who = await caller(update, context)
        if who.session is None or who.session.role not in FAMILY:
            return
        try:
            await handler(update, context, who)
        except ApplicationHandlerStop:
            raise
        except Exception as error:  # reported by the app's error handler, as any other
            await context.application.process_error(update, error)
        raise ApplicationHandlerStop

    return run


def is_student(who: Caller) -> bool:
    return who.session is not None and who.session.role == "student"


# --- homework ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkFile:
    """A file handed in with homework, already downloaded from Telegram."""

    name: str
    content: bytes
    content_type: str


async def submit_homework(
    who: Caller,
    homework_id: str,
    text: str | None = None,
    file: WorkFile | None = None,
    key: str | None = None,
    title: str = "",
) -> dict[str, Any]:
    """Hand in homework as the student: upload the file (if any) to material-service for this homework,
    then submit with its id. ``key`` (an Idempotency-Key; the upload's is derived from it) makes both
    calls safe to send again. While the fleet is down both are queued, the submission waiting for the
    upload's answer (its material id), and :class:`fallback.Queued` is raised after telling the student
    ("saved: <title>"); the replay later tells them "sent" or why not."""
    api = who.bot.api
    key = key or api.new_key()
    path = f"/api/v1/homework/{homework_id}/submissions"
    upload: dict[str, Any] = {}
    if file is not None:
        upload = {
            "files": {"file": (file.name, file.content, file.content_type)},
            "form": {"title": file.name[:200] or "homework", "homework_id": homework_id},
        }
    body: dict[str, Any] = {"material_ids": []}
    if text:
        body["text"] = text
    if who.bot.offline is None:  # before start-up (no queue): the calls directly
        if upload:
            material = await api.call(
                who.user,
                "POST",
                "/api/v1/materials",
                files=upload["files"],
                data=upload["form"],
                idempotency_key=f"{key}:file",
            )
            body["material_ids"] = [str(material["id"])]
        direct: dict[str, Any] = await api.post(who.user, path, body, key=key)
        return direct
    outbox = fallback.Outbox(who)
    needs: list[QueuedWrite] = []
    if upload:
        what = who.t("st_hw_file_what", name=file.name if file else "", title=title)
        needs.append(await outbox.add("homework.file", what, "POST", "/api/v1/materials", **upload, key=f"{key}:file"))
        body["material_ids"] = [ref(needs[0])]  # the upload's material id, filled in when it is sent
    await outbox.add("homework.submit", title or homework_id, "POST", path, json_body=body, key=key, depends_on=needs)
    *_, submission = await outbox.send()
    return dict(submission)


def status_text(who: Caller, status: str) -> str:
    key = f"st_hw_status_{status}"
    return who.t(key) if has(key) else status


def homework_card(who: Caller, homework: dict[str, Any]) -> str:
    lines = [
        who.t(
            "st_hw_card",
            title=homework["title"],
            due=who.when(homework["due_at"]),
            status=status_text(who, homework["status"]),
        )
    ]
    if homework.get("description"):
        lines.append(homework["description"][:1500])
    if homework.get("grade") is not None:
        lines.append(who.t("st_hw_grade", grade=homework["grade"]))
    if homework.get("comment"):
        lines.append(who.t("st_hw_comment", comment=homework["comment"][:1000]))
    if homework["status"] != "graded" and is_student(who):
        lines.append("\n" + who.t("st_hw_reply_hint"))
    return "\n".join(lines)


@for_family
async def homework_list(update: Update, context: Context, who: Caller) -> None:
    """Each assignment as its own card; a student hands in work by replying to the card."""
    page = await who.bot.api.get(who.user, "/api/v1/homework", limit=HOMEWORK_SHOWN)
    items = page["items"]
    if not items:
        await answer(update, who.t("st_hw_none"))
        return
    await answer(update, who.t("st_hw_header", count=len(items)))
    chat = update.effective_chat
    assert chat is not None
    for homework in items:
        sent = await chat.send_message(homework_card(who, homework))
        if homework["status"] != "graded" and is_student(who):
            await who.bot.conversations.expect_reply(
                who.chat_id, sent.message_id, "hw_submit", homework_id=homework["id"], title=homework["title"]
            )


async def _work_file(message: Message) -> WorkFile | None | str:
    """The file in a reply, downloaded; "too_big" when Telegram will not hand it to a bot; None if none."""
    if message.document is not None:
        document = message.document
        if (document.file_size or 0) > TELEGRAM_DOWNLOAD_LIMIT:
            return "too_big"
        content = await (await document.get_file()).download_as_bytearray()
        return WorkFile(document.file_name or "work", bytes(content), document.mime_type or "application/octet-stream")
    if message.photo:
        photo = message.photo[-1]  # the largest size
        if (photo.file_size or 0) > TELEGRAM_DOWNLOAD_LIMIT:
            return "too_big"
        content = await (await photo.get_file()).download_as_bytearray()
        return WorkFile(f"photo-{message.message_id}.jpg", bytes(content), "image/jpeg")
    return None


@reply("hw_submit")
async def hand_in(update: Update, context: Context, who: Caller, target: dict[str, Any]) -> None:
    message = update.effective_message
    assert message is not None
    if not is_student(who):
        await answer(update, who.t("not_allowed"))
        return
    file = await _work_file(message)
    if file == "too_big":
        await answer(update, who.t("st_hw_file_too_big", mb=TELEGRAM_DOWNLOAD_LIMIT // (1024 * 1024)))
        return
    text = (message.text if file is None else message.caption) or None
    if file is None and not (text and text.strip()):
        await answer(update, who.t("st_hw_need_work"))
        return
    work = file if isinstance(file, WorkFile) else None
    try:
        await submit_homework(who, target["homework_id"], text=text, file=work, title=target.get("title", ""))
    except fallback.Queued:  # kept offline; the student was told, and will be again once it is sent
        return
    except ApiError as refused:
        if refused.status == 415:
            await answer(update, who.t("st_hw_bad_file"))
            return
        if refused.status == 409:
            await answer(update, who.t("st_hw_already_graded"))
            return
        raise
    await answer(update, who.t("st_hw_submitted", title=target.get("title", "")))


# --- balance -------------------------------------------------------------------------------------


def balance_text(who: Caller, balance: dict[str, Any]) -> str:
    lines = [
        who.t("st_balance", balance=money(balance["balance"], balance["currency"]), lessons=balance["lessons_covered"])
    ]
    if balance.get("covered_until"):
        lines.append(who.t("st_balance_until", date=who.local(balance["covered_until"]).strftime("%d.%m.%Y")))
    if balance["balance"] < 0:
        lines.append(who.t("st_balance_debt"))
    return "\n".join(lines)


@for_family
async def my_balance(update: Update, context: Context, who: Caller) -> None:
    if not is_student(who):  # a parent picks a child first
        from services.telegram_bot.handlers.parent import show_children

        await show_children(update, context, who)
        return
    data, fetched_at = await read_view(
        who, "balance", lambda: who.bot.api.get(who.user, f"/api/v1/payments/balances/{who.user.user_id}")
    )
    await answer(update, stale_mark(who, fetched_at) + balance_text(who, data))


# --- progress ------------------------------------------------------------------------------------


@for_family
async def my_progress(update: Update, context: Context, who: Caller) -> None:
    if not is_student(who):
        await answer(update, who.t("not_allowed"))
        return
    data, fetched_at = await read_view(who, "progress", lambda: who.bot.students.progress(who.user))
    await answer(update, stale_mark(who, fetched_at) + progress_text(who.lang, data))


# --- materials -----------------------------------------------------------------------------------


@for_family
async def materials_list(update: Update, context: Context, who: Caller) -> None:
    page = await who.bot.api.get(who.user, "/api/v1/materials", limit=MATERIALS_SHOWN)
    items = page["items"]
    if not items:
        await answer(update, who.t("st_mat_none"))
        return
    rows = [[(("📄 " if m["kind"] == "file" else "🔗 ") + m["title"][:60], f"mat:get:{m['id']}")] for m in items]
    await answer(update, who.t("st_mat_list"), rows)


@for_family
async def material_file(update: Update, context: Context, who: Caller) -> None:
    """The material as a document in the chat (a link material: its address)."""
    [material_id, *_] = callback_args(update) or [""]
    material = await who.bot.api.get(who.user, f"/api/v1/materials/{material_id}")
    if material["kind"] != "file":
        await answer(update, who.t("st_mat_link", title=material["title"], url=material["url"]))
        return
    content = await who.bot.api.get(who.user, f"/api/v1/materials/{material_id}/download")
    if update.callback_query is not None:
        await update.callback_query.answer()
    chat = update.effective_chat
    assert chat is not None
    await chat.send_document(
        document=bytes(content), filename=material.get("filename") or "material", caption=material["title"][:1000]
    )


# --- recommendations -----------------------------------------------------------------------------


@for_family
async def my_tips(update: Update, context: Context, who: Caller) -> None:
    if not is_student(who):
        await answer(update, who.t("not_allowed"))
        return
    items = await who.bot.students.recommendations(who.user)
    if not items:
        await answer(update, who.t("st_tips_none"))
        return
    await answer(update, "\n".join([who.t("st_tips_header"), *(f"• {tip_text(who.lang, item)}" for item in items)]))


def register(app: Application) -> None:  # type: ignore[type-arg]
    """Group -1: before tutor_work's handlers of the same buttons (see the module's docstring)."""
    for pattern, handler in (
        (r"^hw:list$", homework_list),
        (r"^balance:me$", my_balance),
        (r"^progress:me$", my_progress),
        (r"^mat:list$", materials_list),
        (r"^mat:get:", material_file),
        (r"^tips:me$", my_tips),
    ):
        app.add_handler(CallbackQueryHandler(handler, pattern=pattern), group=-1)
    app.add_handler(CommandHandler("homework", homework_list), group=-1)
    app.add_handler(CommandHandler("progress", my_progress), group=-1)
