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

# --- lessons: schedule views, scheduling, one lesson's actions (handlers/tutor_lessons.py) -----------
MESSAGES.update(
    {
        # schedule views
        "tl_sched_day_title": {"ru": "📅 Сегодня, {date}", "en": "📅 Today, {date}"},
        "tl_sched_week_title": {"ru": "🗓 Ближайшие 7 дней ({start}–{end})", "en": "🗓 The next 7 days ({start}–{end})"},
        "tl_sched_empty": {"ru": "Уроков нет.", "en": "No lessons."},
        "tl_sched_more": {
            "ru": "Кнопки — для первых {count} уроков; остальные откройте из вида «Сегодня».",
            "en": "Buttons cover the first {count} lessons; open the others from the Today view.",
        },
        "tl_weekdays": {"ru": "Пн Вт Ср Чт Пт Сб Вс", "en": "Mon Tue Wed Thu Fri Sat Sun"},
        "tl_today": {"ru": "Сегодня", "en": "Today"},
        "tl_tomorrow": {"ru": "Завтра", "en": "Tomorrow"},
        "tl_status_scheduled": {"ru": "🕒 запланирован", "en": "🕒 scheduled"},
        "tl_status_completed": {"ru": "✅ проведён", "en": "✅ completed"},
        "tl_status_cancelled": {"ru": "❌ отменён", "en": "❌ cancelled"},
        "tl_status_missed": {"ru": "🚫 пропущен", "en": "🚫 missed"},
        # scheduling a lesson
        "tl_no_students": {
            "ru": "У вас пока нет учеников. Пригласите первого — и сразу назначьте урок.",
            "en": "You have no students yet. Invite the first one, then schedule a lesson.",
        },
        "tl_ask_student": {"ru": "Кому назначить урок?", "en": "Who is the lesson for?"},
        "tl_ask_date": {
            "ru": "Урок для {student}. Какого числа? Выберите день или напишите дату как ДД.ММ (например, 05.03).",
            "en": "Lesson for {student}. On which day? Pick one or type the date as DD.MM (e.g. 05.03).",
        },
        "tl_bad_date": {
            "ru": "Не понял дату. Напишите её как ДД.ММ или ДД.ММ.ГГГГ, например 05.03.",
            "en": "I could not read that date. Type it as DD.MM or DD.MM.YYYY, e.g. 05.03.",
        },
        "tl_ask_time": {
            "ru": "{date}. Во сколько? Напишите время как ЧЧ:ММ, например 16:30.",
            "en": "{date}. At what time? Type it as HH:MM, e.g. 16:30.",
        },
        "tl_bad_time": {
            "ru": "Не понял время. Нужно ЧЧ:ММ от 00:00 до 23:59, например 16:30.",
            "en": "I could not read that time. It should be HH:MM from 00:00 to 23:59, e.g. 16:30.",
        },
        "tl_ask_duration": {"ru": "Сколько длится урок?", "en": "How long is the lesson?"},
        "tl_bad_duration": {
            "ru": "Выберите длительность кнопкой или напишите число минут от 15 до 600.",
            "en": "Pick a duration or type the number of minutes, from 15 to 600.",
        },
        "tl_minutes": {"ru": "{minutes} мин", "en": "{minutes} min"},
        "tl_ask_subject": {
            "ru": "Предмет урока? Напишите его (например, «Математика»).",
            "en": "What subject? Type it (e.g. “Maths”).",
        },
        "tl_bad_subject": {
            "ru": "Название предмета — от 1 до 200 символов. Напишите ещё раз.",
            "en": "The subject should be 1 to 200 characters. Please type it again.",
        },
        "tl_confirm": {
            "ru": "Проверьте урок:\n👤 {student}\n📅 {when}, {duration}\n📘 {subject}\n\n"
            "Назначить один раз или каждую неделю?",
            "en": "Check the lesson:\n👤 {student}\n📅 {when}, {duration}\n📘 {subject}\n\n"
            "Schedule it once or every week?",
        },
        "tl_btn_once": {"ru": "✅ Один раз", "en": "✅ Once"},
        "tl_btn_weekly": {"ru": "🔁 Еженедельно × {count}", "en": "🔁 Weekly × {count}"},
        "tl_scheduled_one": {
            "ru": "✅ Урок назначен: {when}, {student}, {subject}.",
            "en": "✅ Lesson scheduled: {when}, {student}, {subject}.",
        },
        "tl_scheduled_series": {
            "ru": "✅ Назначено уроков: {count}, каждую неделю с {when} ({student}, {subject}).",
            "en": "✅ {count} weekly lessons scheduled from {when} ({student}, {subject}).",
        },
        "tl_overlap": {
            "ru": "⛔ Это время занято: у вас уже есть урок {start}–{end}. Выберите другое время.",
            "en": "⛔ That time is taken: you already have a lesson {start}–{end}. Please choose another time.",
        },
        "tl_overlap_unknown": {
            "ru": "⛔ Это время пересекается с другим вашим уроком. Выберите другое время.",
            "en": "⛔ That time overlaps another of your lessons. Please choose another time.",
        },
        "tl_press_buttons": {
            "ru": "Пожалуйста, выберите вариант кнопкой под последним сообщением.",
            "en": "Please choose with a button under the latest message.",
        },
        "tl_btn_another": {"ru": "➕ Ещё урок", "en": "➕ Another lesson"},
        "tl_btn_open": {"ru": "📖 Открыть урок", "en": "📖 Open the lesson"},
        # one lesson
        "tl_card": {
            "ru": "📘 {subject}\n👤 {student}\n📅 {when}–{end} ({duration})\nСтатус: {status}",
            "en": "📘 {subject}\n👤 {student}\n📅 {when}–{end} ({duration})\nStatus: {status}",
        },
        "tl_card_topic": {"ru": "Тема: {topic}", "en": "Topic: {topic}"},
        "tl_card_attendance": {"ru": "Посещение: {attendance}", "en": "Attendance: {attendance}"},
        "tl_card_grade": {"ru": "Оценка: {grade}", "en": "Grade: {grade}"},
        "tl_card_mastery": {"ru": "Усвоение темы: {mastery}", "en": "Topic mastery: {mastery}"},
        "tl_card_notes": {"ru": "Заметки: {notes}", "en": "Notes: {notes}"},
        "tl_card_chargeable": {"ru": "Платная отмена", "en": "Chargeable cancellation"},
        "tl_not_open": {
            "ru": "Этот урок уже {status}, его нельзя изменить.",
            "en": "This lesson is already {status}; it cannot be changed.",
        },
        "tl_bad_lesson": {"ru": "Урок не найден.", "en": "Lesson not found."},
        "tl_btn_complete": {"ru": "✅ Провести", "en": "✅ Complete"},
        "tl_btn_cancel_lesson": {"ru": "❌ Отменить урок", "en": "❌ Cancel the lesson"},
        "tl_btn_reschedule": {"ru": "🔄 Перенести", "en": "🔄 Reschedule"},
        "tl_btn_missed": {"ru": "🚫 Пропуск", "en": "🚫 Missed"},
        "tl_btn_skip": {"ru": "⏭ Пропустить", "en": "⏭ Skip"},
        "tl_btn_retry": {"ru": "🔁 Повторить", "en": "🔁 Try again"},
        "tl_retry": {
            "ru": "Сервис сейчас недоступен, ответы сохранены. Нажмите «Повторить», когда он вернётся.",
            "en": "The service is unavailable right now; your answers are kept. Press “Try again” when it is back.",
        },
        # completing
        "tl_ask_attendance": {
            "ru": "Урок {when}, {student}. Ученик пришёл?",
            "en": "Lesson {when}, {student}. Attendance?",
        },
        "tl_att_present": {"ru": "Пришёл", "en": "Present"},
        "tl_att_late": {"ru": "Опоздал", "en": "Late"},
        "tl_att_absent": {"ru": "Не пришёл", "en": "Absent"},
        "tl_ask_grade": {"ru": "Оценка за урок?", "en": "Grade for the lesson?"},
        "tl_ask_mastery": {"ru": "Как усвоена тема?", "en": "How well was the topic learnt?"},
        "tl_mastery_not_learned": {"ru": "Не усвоена", "en": "Not learnt"},
        "tl_mastery_learned": {"ru": "Усвоена", "en": "Learnt"},
        "tl_mastery_mastered": {"ru": "Отлично усвоена", "en": "Mastered"},
        "tl_ask_notes": {
            "ru": "Заметки к уроку? Напишите их или нажмите «Пропустить».",
            "en": "Any notes on the lesson? Type them or press Skip.",
        },
        "tl_bad_notes": {
            "ru": "Заметки слишком длинные (до 5000 символов). Сократите, пожалуйста.",
            "en": "The notes are too long (at most 5,000 characters). Please shorten them.",
        },
        "tl_completed": {"ru": "✅ Урок проведён: {when}, {student}.", "en": "✅ Lesson completed: {when}, {student}."},
        "tl_queued_complete": {
            "ru": "проведение урока {when}, {student}",
            "en": "completing the lesson {when}, {student}",
        },
        "tl_marked_missed": {
            "ru": "🚫 Урок {when} ({student}) отмечен как пропуск; он будет оплачен.",
            "en": "🚫 Lesson {when} ({student}) marked as missed; it is chargeable.",
        },
        # cancelling, no-show, rescheduling
        "tl_ask_cancel_kind": {
            "ru": "Отменить урок {when} ({student}). Отмена по уважительной причине (бесплатно) или платная?",
            "en": "Cancel the lesson {when} ({student}). Excused (free) or chargeable?",
        },
        "tl_btn_excused": {"ru": "🆓 Уважительная", "en": "🆓 Excused (free)"},
        "tl_btn_chargeable": {"ru": "💰 Платная", "en": "💰 Chargeable"},
        "tl_ask_cancel_reason": {
            "ru": "Причина отмены? Напишите её (ученик и родитель её увидят) или нажмите «Пропустить».",
            "en": "The reason for cancelling? Type it (the student and parent will see it) or press Skip.",
        },
        "tl_bad_reason": {
            "ru": "Причина — не длиннее 1000 символов. Напишите короче или нажмите «Пропустить».",
            "en": "A reason is up to 1,000 characters. Please shorten it or press Skip.",
        },
        "tl_cancelled_free": {
            "ru": "❌ Урок {when} ({student}) отменён без оплаты.",
            "en": "❌ Lesson {when} ({student}) cancelled, free of charge.",
        },
        "tl_cancelled_charged": {
            "ru": "❌ Урок {when} ({student}) отменён; отмена платная.",
            "en": "❌ Lesson {when} ({student}) cancelled; the cancellation is chargeable.",
        },
        "tl_ask_missed": {
            "ru": "Отметить урок {when} ({student}) как пропуск? Пропущенный урок оплачивается.",
            "en": "Mark the lesson {when} ({student}) as missed? A missed lesson is chargeable.",
        },
        "tl_btn_confirm_missed": {"ru": "🚫 Да, пропуск", "en": "🚫 Yes, missed"},
        "tl_ask_new_date": {
            "ru": "Перенос урока {when} ({student}). На какой день? Выберите или напишите ДД.ММ.",
            "en": "Rescheduling the lesson {when} ({student}). To which day? Pick one or type DD.MM.",
        },
        "tl_moved": {
            "ru": "🔄 Урок перенесён: {student}, теперь {when}.",
            "en": "🔄 Lesson rescheduled: {student}, now {when}.",
        },
    }
)
