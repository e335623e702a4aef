"""/start (with or without an invite in the deep link), /help, /menu, /cancel and the role menus.

``/start <code>`` is the only way in: it calls the bot-only ``/api/v1/auth/telegram`` exchange, which
registers a tutor (no code) or joins the invite's tutor as a student or parent, and finds the user on
every later /start. Each user then gets their role's command list (``setMyCommands`` scoped to their
chat, in their language) and a main menu of buttons.
"""

from __future__ import annotations

from telegram import BotCommand, BotCommandScopeChat, Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler

from services.telegram_bot.api import ApiError
from services.telegram_bot.handlers.common import Button, Caller, Context, answer, caller, signed_in
from services.telegram_bot.i18n import language_of, t

COMMANDS = {
    "tutor": ("menu", "schedule", "invite", "help", "cancel"),
    "student": ("menu", "schedule", "homework", "progress", "help", "cancel"),
    "parent": ("menu", "children", "help", "cancel"),
}


def main_menu(role: str, lang: str) -> list[list[Button]]:
    def b(key: str, data: str) -> Button:
        return (t(lang, key), data)

    if role == "tutor":
        return [
            [b("btn_today", "sched:day"), b("btn_week", "sched:week")],
            [b("btn_schedule_lesson", "lesson:new")],
            [b("btn_homework", "hw:list"), b("btn_payments", "pay:menu")],
            [b("btn_students", "students:list"), b("btn_materials", "mat:list")],
            [b("btn_invite", "invite:new"), b("btn_reports", "report:month")],
            [b("btn_broadcast", "broadcast:new")],
        ]
    if role == "student":
        return [
            [b("btn_my_schedule", "sched:week"), b("btn_my_homework", "hw:list")],
            [b("btn_balance", "balance:me"), b("btn_progress", "progress:me")],
            [b("btn_my_materials", "mat:list"), b("btn_recommendations", "tips:me")],
            [b("btn_write_tutor", "msg:tutor")],
        ]
    return [[b("btn_children", "children:list")], [b("btn_write_tutor", "msg:tutor")]]


async def start(update: Update, context: Context) -> None:
    who = await caller(update, context)
    user = update.effective_user
    assert user is not None
    code = context.args[0] if context.args else None
    await who.bot.conversations.end(who.chat_id)
    try:
        session, created = await who.bot.api.sign_in(
            user.id, user.full_name, language_of(user.language_code), invite_code=code
        )
    except ApiError as refused:
        if code and refused.status in (404, 409, 410, 422):
            await answer(update, who.t("invite_invalid"))
            return
        raise
    await who.bot.sessions.mark_blocked(user.id, blocked=False)  # they are talking to us again: notify them
    lang = language_of(user.language_code, session.language)
    greeting = f"welcome_{session.role}" if created or code else "welcome_back"
    await set_commands(context, who.chat_id, session.role, lang)
    await answer(update, t(lang, greeting, name=session.full_name or user.first_name), main_menu(session.role, lang))


async def set_commands(context: Context, chat_id: int, role: str, lang: str) -> None:
    names = COMMANDS.get(role, ("menu", "help"))
    commands = [BotCommand(name, t(lang, f"cmd_{name}")) for name in names]
    await context.bot.set_my_commands(commands, scope=BotCommandScopeChat(chat_id))


@signed_in()
async def help_command(update: Update, context: Context, who: Caller) -> None:
    assert who.session is not None
    await answer(update, who.t(f"help_{who.session.role}"), [[(who.t("btn_menu"), "menu:main")]])


@signed_in()
async def menu(update: Update, context: Context, who: Caller) -> None:
    assert who.session is not None
    await answer(update, who.t("menu_title"), main_menu(who.session.role, who.lang))


async def cancel(update: Update, context: Context) -> None:
    """Leave whatever flow the chat is in (the /cancel command or any flow's Cancel button)."""
    who = await caller(update, context)
    ended = await who.bot.conversations.end(who.chat_id)
    rows = main_menu(who.session.role, who.lang) if who.session else None
    await answer(update, who.t("cancelled" if ended else "nothing_to_cancel"), rows)


def register(app: Application) -> None:  # type: ignore[type-arg]
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CommandHandler("help", help_command))
    app.add_handler(CommandHandler("menu", menu))
    app.add_handler(CommandHandler("cancel", cancel))
    app.add_handler(CallbackQueryHandler(menu, pattern=r"^menu:main$"))
    app.add_handler(CallbackQueryHandler(cancel, pattern=r"^flow:cancel$"))
