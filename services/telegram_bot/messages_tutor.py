"""Texts of one area of the bot (merged into ``messages.MESSAGES``; same rules)."""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {}

# --- the tutor's work: invites, students, homework, payments, materials, reports (handlers/tutor_work.py)
MESSAGES.update(
    {
        "tw_weekdays": {"ru": "пн вт ср чт пт сб вс", "en": "Mon Tue Wed Thu Fri Sat Sun"},
        "tw_not_available": {"ru": "Этот раздел пока недоступен.", "en": "This section is not available yet."},
        "tw_pick_with_buttons": {
            "ru": "Выберите вариант кнопкой под сообщением (или нажмите «Отмена»).",
            "en": "Please choose with the buttons under the message (or press Cancel).",
        },
        "tw_text_expected": {
            "ru": "Напишите ответ текстом или нажмите кнопку.",
            "en": "Please type your answer as text or press a button.",
        },
        "tw_no_students": {
            "ru": "У вас пока нет учеников. Пригласите первого — кнопкой ниже.",
            "en": "You have no students yet. Invite the first one with the button below.",
        },
        # invites
        "tw_invite_choose": {"ru": "Кого пригласить?", "en": "Whom would you like to invite?"},
        "tw_btn_invite_student": {"ru": "🎓 Ученика", "en": "🎓 A student"},
        "tw_btn_invite_parent": {"ru": "👪 Родителя ученика", "en": "👪 A student's parent"},
        "tw_invite_parent_of": {"ru": "Родителя какого ученика пригласить?", "en": "A parent of which student?"},
        "tw_invite_student_link": {
            "ru": "Приглашение для ученика (одноразовое, действует до {until}):\n{link}\n\n"
            "Перешлите ссылку ученику или покажите ему QR-код.",
            "en": "An invite for a student (one-time, valid until {until}):\n{link}\n\n"
            "Send the link to the student or show them the QR code.",
        },
        "tw_invite_parent_link": {
            "ru": "Приглашение для родителя ученика {student} (одноразовое, действует до {until}):\n{link}\n\n"
            "Перешлите ссылку родителю или покажите ему QR-код.",
            "en": "An invite for a parent of {student} (one-time, valid until {until}):\n{link}\n\n"
            "Send the link to the parent or show them the QR code.",
        },
        "tw_invite_qr_caption": {"ru": "QR-код приглашения: {link}", "en": "The invite's QR code: {link}"},
        # students, balances, debts
        "tw_students_title": {"ru": "👥 Ваши ученики ({count}):", "en": "👥 Your students ({count}):"},
        "tw_balances_title": {"ru": "📋 Балансы учеников:", "en": "📋 Students' balances:"},
        "tw_student_line": {
            "ru": "• {name}: баланс {balance}, оплачено уроков: {lessons}",
            "en": "• {name}: balance {balance}, lessons paid for: {lessons}",
        },
        "tw_debts_title": {"ru": "⚠️ Долги:", "en": "⚠️ Debts:"},
        "tw_debt_line": {"ru": "• {name}: {debt} (с {since})", "en": "• {name}: {debt} (since {since})"},
        "tw_no_debts": {"ru": "Долгов нет.", "en": "Nobody owes anything."},
        # homework
        "tw_hw_menu": {
            "ru": "📚 Домашние задания\nЖдут проверки: {count}",
            "en": "📚 Homework\nWaiting for review: {count}",
        },
        "tw_btn_hw_assign": {"ru": "➕ Задать задание", "en": "➕ Assign homework"},
        "tw_btn_hw_submitted": {"ru": "📥 На проверке ({count})", "en": "📥 To review ({count})"},
        "tw_btn_hw_more": {"ru": "📥 Другие работы", "en": "📥 Other submissions"},
        "tw_hw_pick_student": {"ru": "Кому задать задание?", "en": "Who is the homework for?"},
        "tw_hw_ask_title": {
            "ru": "Задание для ученика {student}. Напишите название (например, «Упр. 5–7, стр. 42»):",
            "en": "Homework for {student}. Type its title (e.g. “Ex. 5–7, p. 42”):",
        },
        "tw_hw_title_invalid": {
            "ru": "Название — от 1 до 300 символов. Напишите его ещё раз.",
            "en": "The title is 1 to 300 characters. Please type it again.",
        },
        "tw_hw_ask_due": {
            "ru": "Срок сдачи? Выберите день или напишите дату, например 25.05.",
            "en": "When is it due? Choose a day or type a date such as 25.05.",
        },
        "tw_hw_due_invalid": {
            "ru": "Не понял дату. Напишите её как ДД.ММ (например, 25.05) или выберите день кнопкой.",
            "en": "I did not get the date. Type it as DD.MM (e.g. 25.05) or choose a day with a button.",
        },
        "tw_hw_ask_description": {
            "ru": "Добавьте описание (что сделать, ссылки) или нажмите «Без описания».",
            "en": "Add a description (what to do, links) or press “No description”.",
        },
        "tw_btn_no_description": {"ru": "Без описания", "en": "No description"},
        "tw_hw_assigned": {
            "ru": "✅ Задание «{title}» задано ученику {student}, срок — {due}.",
            "en": "✅ “{title}” is assigned to {student}, due {due}.",
        },
        "tw_hw_none_submitted": {"ru": "Работ на проверке нет.", "en": "Nothing is waiting for review."},
        "tw_hw_submitted_title": {"ru": "📥 Работы на проверке:", "en": "📥 Submissions to review:"},
        "tw_hw_no_submission": {
            "ru": "Ученик {student} ещё не сдал «{title}».",
            "en": "{student} has not handed in “{title}” yet.",
        },
        "tw_hw_card": {
            "ru": "📚 {title}\nУченик: {student}\nСрок: {due}\nСдано: {submitted}\nФайлов: {files}\n\n{text}",
            "en": "📚 {title}\nStudent: {student}\nDue: {due}\nHanded in: {submitted}\nFiles: {files}\n\n{text}",
        },
        "tw_hw_late": {"ru": " (с опозданием)", "en": " (late)"},
        "tw_hw_no_text": {"ru": "(без текста)", "en": "(no text)"},
        "tw_btn_return": {"ru": "↩️ Вернуть на доработку", "en": "↩️ Return for rework"},
        "tw_btn_no_comment": {"ru": "Без комментария", "en": "No comment"},
        "tw_hw_ask_comment": {
            "ru": "Оценка {grade} за «{title}». Напишите комментарий для ученика или нажмите «Без комментария».",
            "en": "Grade {grade} for “{title}”. Type a comment for the student or press “No comment”.",
        },
        "tw_hw_ask_return_comment": {
            "ru": "Что доработать в «{title}»? Напишите комментарий для ученика или нажмите «Без комментария».",
            "en": "What should be reworked in “{title}”? Type a comment for the student or press “No comment”.",
        },
        "tw_hw_graded": {"ru": "✅ «{title}»: оценка {grade}.", "en": "✅ “{title}” is graded {grade}."},
        "tw_hw_returned": {
            "ru": "↩️ «{title}» возвращено на доработку.",
            "en": "↩️ “{title}” is returned for rework.",
        },
        # payments
        "tw_pay_menu": {"ru": "💰 Оплаты и балансы", "en": "💰 Payments and balances"},
        "tw_btn_pay_new": {"ru": "➕ Записать оплату", "en": "➕ Record a payment"},
        "tw_btn_pay_balances": {"ru": "📋 Балансы и долги", "en": "📋 Balances and debts"},
        "tw_pay_pick_student": {"ru": "Кто заплатил?", "en": "Who paid?"},
        "tw_pay_ask_amount": {
            "ru": "Оплата от ученика {student}. Сумма в рублях (например, 1500 или 1500.50):",
            "en": "A payment from {student}. The amount in roubles (e.g. 1500 or 1500.50):",
        },
        "tw_pay_amount_invalid": {
            "ru": "Не понял сумму. Напишите число рублей больше нуля, например 1500 или 1500.50.",
            "en": "I did not get the amount. Type roubles above zero, e.g. 1500 or 1500.50.",
        },
        "tw_pay_ask_method": {"ru": "{amount}: как оплачено?", "en": "{amount}: how was it paid?"},
        "tw_btn_cash": {"ru": "💵 Наличными", "en": "💵 Cash"},
        "tw_btn_transfer": {"ru": "🏦 Переводом", "en": "🏦 Transfer"},
        "tw_btn_card": {"ru": "💳 Картой", "en": "💳 Card"},
        "tw_pay_recorded": {
            "ru": "✅ Оплата {amount} от ученика {student} записана ({method}). Баланс: {balance}.",
            "en": "✅ {amount} from {student} is recorded ({method}). Balance: {balance}.",
        },
        # materials
        "tw_mat_too_big": {
            "ru": "Файл больше 20 МБ: Telegram не даёт боту его скачать. Пришлите файл поменьше.",
            "en": "The file is over 20 MB: Telegram does not let the bot download it. Please send a smaller one.",
        },
        "tw_mat_uploaded": {
            "ru": "📎 Материал «{title}» загружен. С кем поделиться?",
            "en": "📎 The material “{title}” is uploaded. Whom should it be shared with?",
        },
        "tw_btn_share_all": {"ru": "👥 Со всеми учениками", "en": "👥 All my students"},
        "tw_btn_share_one": {"ru": "👤 Выбрать ученика", "en": "👤 Choose a student"},
        "tw_mat_pick_student": {"ru": "С кем поделиться «{title}»?", "en": "Share “{title}” with whom?"},
        "tw_mat_choose": {
            "ru": "Выберите кнопкой, с кем поделиться, или нажмите «Отмена» — материал останется только у вас.",
            "en": "Choose with a button whom to share it with, or press Cancel to keep the material to yourself.",
        },
        "tw_mat_shared_all": {
            "ru": "✅ «{title}» доступен всем вашим ученикам, и будущим тоже.",
            "en": "✅ “{title}” is shared with all your students, future ones too.",
        },
        "tw_mat_shared_one": {
            "ru": "✅ «{title}» доступен ученику {student}.",
            "en": "✅ “{title}” is shared with {student}.",
        },
        "tw_mat_list_title": {
            "ru": "📎 Ваши материалы ({count}). Чтобы добавить, просто пришлите мне файл.",
            "en": "📎 Your materials ({count}). To add one, just send me a file.",
        },
        "tw_mat_none": {
            "ru": "Материалов пока нет. Пришлите мне файл — он станет материалом.",
            "en": "No materials yet. Send me a file and it becomes one.",
        },
        "tw_mat_for_all": {"ru": " — всем ученикам", "en": " — all students"},
        "tw_mat_share_which": {"ru": "С кем поделиться «{title}»?", "en": "Whom should “{title}” be shared with?"},
        # reports
        "tw_report": {
            "ru": "📊 Отчёт за {period}\n\n💰 Доход: {income}\n📅 Уроки: проведено {held}, отменено {cancelled}, "
            "пропущено {missed}\n✅ Посещаемость: {attendance}\n👥 Активных учеников: {active}\n"
            "📚 Задания: задано {assigned}, сдано {completed}, средняя оценка {average}",
            "en": "📊 Report for {period}\n\n💰 Income: {income}\n📅 Lessons: held {held}, cancelled {cancelled}, "
            "missed {missed}\n✅ Attendance: {attendance}\n👥 Active students: {active}\n"
            "📚 Homework: assigned {assigned}, handed in {completed}, average grade {average}",
        },
        "tw_chart_title": {"ru": "Доход по дням, {period}", "en": "Income per day, {period}"},
    }
)
