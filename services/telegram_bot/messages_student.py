"""Texts of the student, parent and messaging screens (merged into ``messages.MESSAGES``; same rules).

Keys start with ``st_`` (student), ``par_`` (parent) or ``msg_`` (messages and broadcasts).
"""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    # --- homework ----------------------------------------------------------------------------------
    "st_hw_none": {"ru": "Домашних заданий пока нет.", "en": "No homework yet."},
    "st_hw_header": {"ru": "📚 Ваши задания: {count}", "en": "📚 Your homework: {count}"},
    "st_hw_card": {
        "ru": "📚 {title}\nСрок: {due}\nСтатус: {status}",
        "en": "📚 {title}\nDue: {due}\nStatus: {status}",
    },
    "st_hw_grade": {"ru": "Оценка: {grade}", "en": "Grade: {grade}"},
    "st_hw_comment": {"ru": "Комментарий: {comment}", "en": "Comment: {comment}"},
    "st_hw_reply_hint": {
        "ru": "↩️ Чтобы сдать работу, ответьте на это сообщение (Reply) текстом, фото или файлом.",
        "en": "↩️ To hand in your work, reply to this message with text, a photo or a file.",
    },
    "st_hw_status_assigned": {"ru": "задано", "en": "assigned"},
    "st_hw_status_submitted": {"ru": "сдано, ждёт проверки", "en": "handed in, awaiting review"},
    "st_hw_status_returned": {"ru": "возвращено на доработку", "en": "returned for rework"},
    "st_hw_status_graded": {"ru": "проверено", "en": "graded"},
    "st_hw_status_overdue": {"ru": "просрочено", "en": "overdue"},
    "st_hw_submitted": {
        "ru": "✅ Работа по заданию «{title}» сдана. Репетитор получит уведомление.",
        "en": "✅ Your work for “{title}” is handed in. Your tutor will be notified.",
    },
    "st_hw_file_what": {"ru": "файл {name} к заданию {title}", "en": "the file {name} for {title}"},
    "st_hw_need_work": {
        "ru": "Пришлите ответом на карточку задания текст, фото или файл (PDF, DOCX, изображение).",
        "en": "Reply to the homework card with text, a photo or a file (PDF, DOCX, an image).",
    },
    "st_hw_file_too_big": {
        "ru": "Файл слишком большой (больше {mb} МБ). Сожмите его или пришлите ссылкой текстом.",
        "en": "The file is too big (over {mb} MB). Compress it or send a link as text.",
    },
    "st_hw_bad_file": {
        "ru": "Такой тип файла не принимается. Подойдут PDF, DOCX, XLSX, PPTX, изображения, текст, MP3, MP4.",
        "en": "This kind of file is not accepted. PDF, DOCX, XLSX, PPTX, images, text, MP3 and MP4 are.",
    },
    "st_hw_already_graded": {
        "ru": "Это задание уже проверено, сдать его снова нельзя.",
        "en": "This homework has been graded already; it cannot be handed in again.",
    },
    # --- balance -----------------------------------------------------------------------------------
    "st_balance": {
        "ru": "💰 Баланс: {balance}\nОплачено уроков вперёд: {lessons}",
        "en": "💰 Balance: {balance}\nLessons paid ahead: {lessons}",
    },
    "st_balance_until": {"ru": "Хватит до: {date}", "en": "Covered until: {date}"},
    "st_balance_debt": {
        "ru": "⚠️ Есть задолженность, пожалуйста, пополните баланс.",
        "en": "⚠️ There is a debt: please top up the balance.",
    },
    # --- progress ----------------------------------------------------------------------------------
    "st_progress": {
        "ru": "🏆 Уровень {level}\n{bar} {xp}/{next_xp} XP\n🔥 Серия: {streak} дн. (рекорд {longest})",
        "en": "🏆 Level {level}\n{bar} {xp}/{next_xp} XP\n🔥 Streak: {streak} days (best {longest})",
    },
    "st_achievements": {"ru": "🎖 Достижения:", "en": "🎖 Achievements:"},
    "st_no_achievements": {
        "ru": "🎖 Достижений пока нет: всё впереди!",
        "en": "🎖 No achievements yet: they are ahead of you!",
    },
    "st_leaderboard": {"ru": "📊 Рейтинг за неделю:", "en": "📊 This week's leaderboard:"},
    "st_leaderboard_row": {"ru": "{rank}. {name} — {xp} XP", "en": "{rank}. {name} — {xp} XP"},
    "st_you": {"ru": "вы", "en": "you"},
    "st_rarity_common": {"ru": "обычное", "en": "common"},
    "st_rarity_rare": {"ru": "редкое", "en": "rare"},
    "st_rarity_epic": {"ru": "эпическое", "en": "epic"},
    "st_rarity_legendary": {"ru": "легендарное", "en": "legendary"},
    "st_ach_first_lesson": {"ru": "Первый урок", "en": "First lesson"},
    "st_ach_first_homework": {"ru": "Первое домашнее задание", "en": "First homework"},
    "st_ach_first_material": {"ru": "Первый открытый материал", "en": "First material opened"},
    "st_ach_first_excellent_lesson": {"ru": "Первая пятёрка за урок", "en": "First lesson graded 5"},
    "st_ach_level_5": {"ru": "Уровень 5", "en": "Level 5"},
    "st_ach_lessons_50": {"ru": "50 уроков", "en": "50 lessons"},
    "st_ach_excellent_homeworks_10": {"ru": "10 отличных домашних заданий", "en": "10 excellent homeworks"},
    "st_ach_homeworks_25": {"ru": "25 домашних заданий", "en": "25 homeworks"},
    "st_ach_materials_20": {"ru": "20 открытых материалов", "en": "20 materials opened"},
    "st_ach_streak_7": {"ru": "Серия 7 дней", "en": "A 7-day streak"},
    "st_ach_level_10": {"ru": "Уровень 10", "en": "Level 10"},
    "st_ach_lessons_100": {"ru": "100 уроков", "en": "100 lessons"},
    "st_ach_streak_30": {"ru": "Серия 30 дней", "en": "A 30-day streak"},
    "st_ach_excellent_lessons_25": {"ru": "25 уроков на пятёрку", "en": "25 lessons graded 5"},
    "st_ach_level_25": {"ru": "Уровень 25", "en": "Level 25"},
    "st_ach_level_50": {"ru": "Уровень 50", "en": "Level 50"},
    "st_ach_lessons_250": {"ru": "250 уроков", "en": "250 lessons"},
    # --- materials ---------------------------------------------------------------------------------
    "st_mat_none": {"ru": "Материалов пока нет.", "en": "No materials yet."},
    "st_mat_list": {
        "ru": "📎 Материалы: нажмите, чтобы получить файл.",
        "en": "📎 Materials: press one to get the file.",
    },
    "st_mat_link": {"ru": "🔗 {title}: {url}", "en": "🔗 {title}: {url}"},
    # --- recommendations ---------------------------------------------------------------------------
    "st_tips_none": {
        "ru": "💡 Сейчас советов нет: вы всё успеваете!",
        "en": "💡 No tips right now: you are on track!",
    },
    "st_tips_header": {"ru": "💡 Советы:", "en": "💡 Tips:"},
    "st_tip_homework_due_soon": {
        "ru": "Задание «{title}» нужно сдать в ближайшие {hours} ч.",
        "en": "Homework “{title}” is due within {hours} h.",
    },
    "st_tip_streak_at_risk": {
        "ru": "Позанимайтесь сегодня, чтобы не прервать серию в {streak} дн.",
        "en": "Study something today to keep your {streak}-day streak.",
    },
    "st_tip_close_to_next_level": {
        "ru": "До уровня {level} осталось всего {xp} XP.",
        "en": "Only {xp} XP to level {level}.",
    },
    "st_tip_material_for_last_topic": {
        "ru": "Повторите тему «{topic}»: {title}.",
        "en": "Review “{topic}”: {title}.",
    },
    # --- parent ------------------------------------------------------------------------------------
    "par_no_children": {
        "ru": "К вашему аккаунту пока не привязан ни один ребёнок.",
        "en": "No child is linked to your account yet.",
    },
    "par_children": {"ru": "👨‍👩‍👧 Выберите ребёнка:", "en": "👨‍👩‍👧 Choose a child:"},
    "par_child_menu": {"ru": "👤 {name}: что показать?", "en": "👤 {name}: what would you like to see?"},
    "par_btn_schedule": {"ru": "📅 Расписание", "en": "📅 Schedule"},
    "par_btn_balance": {"ru": "💰 Баланс", "en": "💰 Balance"},
    "par_btn_homework": {"ru": "📚 Домашние задания", "en": "📚 Homework"},
    "par_btn_rates": {"ru": "📈 Посещаемость", "en": "📈 Attendance"},
    "par_btn_report": {"ru": "🗒 Отчёт за месяц", "en": "🗒 Monthly report"},
    "par_schedule": {"ru": "📅 {name}: уроки на две недели", "en": "📅 {name}: lessons in the next two weeks"},
    "par_no_lessons": {
        "ru": "📅 {name}: уроков на ближайшие две недели нет.",
        "en": "📅 {name}: no lessons in the next two weeks.",
    },
    "par_lesson_row": {"ru": "{when} — {subject}{topic}", "en": "{when} — {subject}{topic}"},
    "par_balance_of": {"ru": "👤 {name}", "en": "👤 {name}"},
    "par_homework": {
        "ru": "📚 {name}: заданий {total}\nзадано: {assigned}\nсдано: {submitted}\nпроверено: {graded}\n"
        "на доработке: {returned}\nпросрочено: {overdue}",
        "en": "📚 {name}: {total} assignments\nassigned: {assigned}\nhanded in: {submitted}\ngraded: {graded}\n"
        "returned for rework: {returned}\noverdue: {overdue}",
    },
    "par_rates": {
        "ru": "📈 {name} за 30 дней\nПосещаемость: {attendance} (проведено {held}, пропущено {missed})\n"
        "Выполнение домашних заданий: {completion} ({completed} из {assigned})",
        "en": "📈 {name}, last 30 days\nAttendance: {attendance} ({held} held, {missed} missed)\n"
        "Homework completion: {completion} ({completed} of {assigned})",
    },
    "par_no_data": {"ru": "нет данных", "en": "no data"},
    "par_report": {
        "ru": "🗒 {name}, отчёт за {month}\nУроков проведено: {held}, пропущено: {missed}\n"
        "Средняя оценка за уроки: {lesson_grade}\nДомашних заданий: {completed} из {assigned}, "
        "средняя оценка: {homework_grade}\nТем освоено: {mastered}",
        "en": "🗒 {name}, report for {month}\nLessons held: {held}, missed: {missed}\n"
        "Average lesson grade: {lesson_grade}\nHomework: {completed} of {assigned}, average grade: {homework_grade}\n"
        "Topics mastered: {mastered}",
    },
    "par_report_money": {
        "ru": "Оплачено: {top_ups}, списано за уроки: {charges}, баланс на конец месяца: {closing}",
        "en": "Paid: {top_ups}, charged for lessons: {charges}, balance at the month's end: {closing}",
    },
    "par_report_no_money": {"ru": "Движений по балансу в этом месяце не было.", "en": "No payments this month."},
    "par_btn_week": {"ru": "🗓 Итоги недели", "en": "🗓 Weekly summary"},
    "par_week": {"ru": "🗓 {name}: итоги недели {start}–{end}", "en": "🗓 {name}: the week {start}–{end}"},
    "par_week_lessons": {
        "ru": "\nУроки: проведено {held}, пропущено {missed}, отменено {cancelled}",
        "en": "\nLessons: {held} held, {missed} missed, {cancelled} cancelled",
    },
    "par_week_row": {"ru": "• {when} {subject}: {result}", "en": "• {when} {subject}: {result}"},
    "par_week_grade": {"ru": "оценка {grade}", "en": "grade {grade}"},
    "par_week_late": {"ru": "опоздал(а)", "en": "late"},
    "par_week_held": {"ru": "проведён", "en": "held"},
    "par_week_missed": {"ru": "пропуск", "en": "missed"},
    "par_week_cancelled": {"ru": "отменён", "en": "cancelled"},
    "par_week_not_marked": {"ru": "ещё не отмечен", "en": "not marked yet"},
    "par_week_homework": {
        "ru": "\nДомашние задания: сдано {submitted}, проверено {graded}",
        "en": "\nHomework: {submitted} handed in, {graded} graded",
    },
    "par_week_hw_row": {"ru": "• {title}: {result}", "en": "• {title}: {result}"},
    "par_week_hw_handed": {"ru": "сдано {date}", "en": "handed in {date}"},
    "par_week_hw_waiting": {"ru": "ждёт проверки", "en": "awaiting review"},
    "par_week_hw_returned": {"ru": "на доработке", "en": "returned for rework"},
    "par_week_money": {
        "ru": "\nОплачено: {top_ups}, списано за уроки: {charges}, баланс: {balance}",
        "en": "\nPaid: {top_ups}, charged for lessons: {charges}, balance: {balance}",
    },
    "par_week_rates": {
        "ru": "Посещаемость: {attendance}, выполнение заданий: {completion}, тем освоено: {mastered}",
        "en": "Attendance: {attendance}, homework completion: {completion}, topics mastered: {mastered}",
    },
    # --- messages to the tutor ---------------------------------------------------------------------
    "msg_no_tutor": {
        "ru": "Не нашёл вашего репетитора. Попросите его прислать приглашение.",
        "en": "I could not find your tutor. Ask them for an invite.",
    },
    "msg_choose_tutor": {"ru": "Кому написать?", "en": "Whom do you want to write to?"},
    "msg_write": {
        "ru": "✍️ Напишите сообщение для {name} (текст, фото или файл).",
        "en": "✍️ Write your message to {name} (text, a photo or a file).",
    },
    "msg_tutor_offline": {
        "ru": "{name} пока не подключил(а) бота, сообщение не доставлено.",
        "en": "{name} has not connected the bot yet; the message was not delivered.",
    },
    "msg_from": {"ru": "✉️ От {name}:", "en": "✉️ From {name}:"},
    "msg_btn_reply": {"ru": "↩️ Ответить", "en": "↩️ Reply"},
    "msg_btn_write_back": {"ru": "✍️ Ответить репетитору", "en": "✍️ Reply to the tutor"},
    "msg_sent": {"ru": "✅ Сообщение отправлено: {name}.", "en": "✅ Message sent to {name}."},
    "msg_write_answer": {
        "ru": "↩️ Напишите ответ для {name} (текст, фото или файл).",
        "en": "↩️ Write your answer to {name} (text, a photo or a file).",
    },
    "msg_answer_from": {"ru": "✉️ Ответ от {name}:", "en": "✉️ Answer from {name}:"},
    "msg_delivered": {"ru": "✅ Ответ доставлен: {name}.", "en": "✅ Answer delivered to {name}."},
    "msg_undeliverable": {
        "ru": "Не удалось доставить: пользователь остановил бота.",
        "en": "Could not deliver: the user has stopped the bot.",
    },
    "msg_need_content": {
        "ru": "Пришлите текст, фото или файл — или нажмите «Отмена».",
        "en": "Send text, a photo or a file, or press Cancel.",
    },
    # --- broadcast ---------------------------------------------------------------------------------
    "msg_broadcast_prompt": {
        "ru": "📣 Напишите текст рассылки для всех ваших учеников и их родителей.",
        "en": "📣 Write the text to send to all your students and their parents.",
    },
    "msg_broadcast_need_text": {
        "ru": "Рассылка — это текст до 3500 символов. Напишите его ещё раз или нажмите «Отмена».",
        "en": "A broadcast is text up to 3,500 characters. Write it again or press Cancel.",
    },
    "msg_broadcast_preview": {
        "ru": "Так увидят рассылку ученики и родители:\n\n{text}\n\nОтправить?",
        "en": "Your students and parents will see:\n\n{text}\n\nSend it?",
    },
    "msg_broadcast_text": {"ru": "📣 {name}:\n{text}", "en": "📣 {name}:\n{text}"},
    "msg_btn_send": {"ru": "✅ Отправить", "en": "✅ Send"},
    "msg_broadcast_sent": {
        "ru": "✅ Рассылка отправлена: {count} получателей.",
        "en": "✅ Broadcast sent to {count} recipients.",
    },
}
