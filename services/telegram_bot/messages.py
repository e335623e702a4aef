"""Every text the bot sends, Russian and English side by side (``i18n.t`` picks one).

Keys are grouped by screen. ``{name}`` placeholders are filled by ``str.format``; both languages of a
key use the same placeholders (a test checks it).
"""

from __future__ import annotations

from services.telegram_bot import messages_notify, messages_student, messages_tutor

_CORE: dict[str, dict[str, str]] = {
    # --- start, join, help -------------------------------------------------------------------------
    "welcome_tutor": {
        "ru": "Здравствуйте, {name}! Вы зарегистрированы как репетитор. Пригласите учеников и "
        "ведите расписание, домашние задания и оплаты прямо здесь.",
        "en": "Hello, {name}! You are registered as a tutor. Invite your students and keep the "
        "schedule, homework and payments right here.",
    },
    "welcome_student": {
        "ru": "Здравствуйте, {name}! Вы присоединились к своему репетитору как ученик.",
        "en": "Hello, {name}! You have joined your tutor as a student.",
    },
    "welcome_parent": {
        "ru": "Здравствуйте, {name}! Вы присоединились как родитель: здесь видно расписание, баланс и успехи ребёнка.",
        "en": "Hello, {name}! You have joined as a parent: the schedule, balance and progress of your child are here.",
    },
    "welcome_back": {
        "ru": "С возвращением, {name}!",
        "en": "Welcome back, {name}!",
    },
    "invite_invalid": {
        "ru": "Эта ссылка-приглашение недействительна или уже использована. Попросите репетитора прислать новую.",
        "en": "This invite link is invalid or has been used. Ask your tutor for a new one.",
    },
    "need_start": {
        "ru": "Сначала нажмите /start, чтобы войти.",
        "en": "Please press /start first to sign in.",
    },
    "help_tutor": {
        "ru": "Я помогаю вести учеников.\n/menu — главное меню\n/schedule — расписание\n/invite — пригласить ученика\n"
        "/cancel — отменить текущее действие\nВсё остальное — кнопками в меню.",
        "en": "I help you run your practice.\n/menu — main menu\n/schedule — schedule\n/invite — invite a student\n"
        "/cancel — cancel the current action\nEverything else is in the menu buttons.",
    },
    "help_student": {
        "ru": "/menu — главное меню\n/schedule — моё расписание\n/homework — мои задания\n/progress — мои успехи\n"
        "/cancel — отменить текущее действие",
        "en": "/menu — main menu\n/schedule — my schedule\n/homework — my homework\n/progress — my progress\n"
        "/cancel — cancel the current action",
    },
    "help_parent": {
        "ru": "/menu — главное меню\n/children — мои дети\n/cancel — отменить текущее действие",
        "en": "/menu — main menu\n/children — my children\n/cancel — cancel the current action",
    },
    # --- command menus (setMyCommands) -------------------------------------------------------------
    "cmd_menu": {"ru": "Главное меню", "en": "Main menu"},
    "cmd_help": {"ru": "Помощь", "en": "Help"},
    "cmd_schedule": {"ru": "Расписание", "en": "Schedule"},
    "cmd_invite": {"ru": "Пригласить ученика", "en": "Invite a student"},
    "cmd_homework": {"ru": "Домашние задания", "en": "Homework"},
    "cmd_progress": {"ru": "Мои успехи", "en": "My progress"},
    "cmd_children": {"ru": "Мои дети", "en": "My children"},
    "cmd_cancel": {"ru": "Отменить действие", "en": "Cancel the current action"},
    "cmd_start": {"ru": "Начать", "en": "Start"},
    # --- main menus --------------------------------------------------------------------------------
    "menu_title": {"ru": "Главное меню", "en": "Main menu"},
    "btn_today": {"ru": "📅 Сегодня", "en": "📅 Today"},
    "btn_week": {"ru": "🗓 Неделя", "en": "🗓 This week"},
    "btn_schedule_lesson": {"ru": "➕ Назначить урок", "en": "➕ Schedule a lesson"},
    "btn_students": {"ru": "👥 Ученики", "en": "👥 Students"},
    "btn_homework": {"ru": "📚 Домашние задания", "en": "📚 Homework"},
    "btn_payments": {"ru": "💰 Оплаты и балансы", "en": "💰 Payments and balances"},
    "btn_materials": {"ru": "📎 Материалы", "en": "📎 Materials"},
    "btn_invite": {"ru": "✉️ Пригласить", "en": "✉️ Invite"},
    "btn_reports": {"ru": "📊 Отчёты", "en": "📊 Reports"},
    "btn_broadcast": {"ru": "📣 Рассылка", "en": "📣 Broadcast"},
    "btn_my_schedule": {"ru": "📅 Расписание", "en": "📅 Schedule"},
    "btn_my_homework": {"ru": "📚 Задания", "en": "📚 Homework"},
    "btn_balance": {"ru": "💰 Баланс", "en": "💰 Balance"},
    "btn_progress": {"ru": "🏆 Успехи", "en": "🏆 Progress"},
    "btn_my_materials": {"ru": "📎 Материалы", "en": "📎 Materials"},
    "btn_recommendations": {"ru": "💡 Советы", "en": "💡 Tips"},
    "btn_write_tutor": {"ru": "✍️ Написать репетитору", "en": "✍️ Write to the tutor"},
    "btn_children": {"ru": "👨‍👩‍👧 Дети", "en": "👨‍👩‍👧 Children"},
    "btn_cancel": {"ru": "✖️ Отмена", "en": "✖️ Cancel"},
    "btn_back": {"ru": "⬅️ Назад", "en": "⬅️ Back"},
    "btn_menu": {"ru": "🏠 Меню", "en": "🏠 Menu"},
    # --- common answers ----------------------------------------------------------------------------
    "cancelled": {"ru": "Действие отменено.", "en": "Cancelled."},
    "nothing_to_cancel": {"ru": "Нечего отменять.", "en": "Nothing to cancel."},
    "not_allowed": {"ru": "Это действие вам недоступно.", "en": "This action is not available to you."},
    "service_unavailable": {
        "ru": "Сервис временно недоступен. Попробуйте чуть позже.",
        "en": "The service is temporarily unavailable. Please try again a little later.",
    },
    "stale_data": {
        "ru": "⚠️ Сервис недоступен, показаны данные на {time}.",
        "en": "⚠️ The service is unavailable; data as of {time}.",
    },
    "queued_offline": {
        "ru": "Сервис сейчас недоступен. Я сохранил «{what}» и отправлю, как только он вернётся.",
        "en": "The service is unavailable right now. I saved “{what}” and will send it as soon as it is back.",
    },
    "replayed_done": {
        "ru": "✅ Отправлено: «{what}».",
        "en": "✅ Sent: “{what}”.",
    },
    "replayed_rejected": {
        "ru": "❌ Не удалось отправить «{what}»: {reason}",
        "en": "❌ Could not send “{what}”: {reason}",
    },
    "error_generic": {
        "ru": "Что-то пошло не так. Попробуйте ещё раз.",
        "en": "Something went wrong. Please try again.",
    },
    "invalid_fields": {
        "ru": "Проверьте: {fields}.",
        "en": "Please check: {fields}.",
    },
    "not_found": {"ru": "Не найдено.", "en": "Not found."},
    "refused": {"ru": "Не получилось: {reason}", "en": "That did not work: {reason}"},
    "flow_expired": {
        "ru": "Это действие уже завершено или устарело. Откройте /menu.",
        "en": "That action has finished or expired. Open /menu.",
    },
    "unknown_input": {
        "ru": "Не понял. Откройте /menu или нажмите /help.",
        "en": "I did not understand that. Open /menu or press /help.",
    },
}

# one catalogue; each area keeps its texts in its own module so areas are edited apart
MESSAGES: dict[str, dict[str, str]] = {}
for _area in (_CORE, messages_tutor.MESSAGES, messages_student.MESSAGES, messages_notify.MESSAGES):
    _clash = MESSAGES.keys() & _area.keys()
    assert not _clash, f"message keys defined twice: {sorted(_clash)}"
    MESSAGES.update(_area)
