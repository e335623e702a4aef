"""Messages between a tutor and a student, and the tutor's broadcast, end to end."""

from __future__ import annotations

from services.telegram_bot.tests.conftest import BotRunner
from services.telegram_bot.tests.test_student import join, press, says, tutor_and_student
from shared.testing.fake_telegram import FakeTelegram


async def test_a_student_writes_to_the_tutor_and_the_tutor_answers_with_one_tap(
    telegram: FakeTelegram, bot: BotRunner
) -> None:
    tutor, student = await tutor_and_student(telegram, bot)

    prompt = await press(telegram, student, student.welcome, "msg:tutor", "Irina")
    assert prompt.button("Отмена")
    mark = telegram.mark()
    await telegram.send_text(student.user, "Можно перенести урок на четверг?")
    delivered = await says(telegram, tutor, "Можно перенести урок на четверг?", mark)
    assert "От Petya" in delivered.text
    await says(telegram, student, "Сообщение отправлено", mark)

    await press(telegram, tutor, delivered, "Ответить", "Напишите ответ для Petya")
    mark = telegram.mark()
    await telegram.send_text(tutor.user, "Да, в четверг в 17:00")
    answer = await says(telegram, student, "Да, в четверг в 17:00", mark)
    assert "Ответ от Irina" in answer.text
    assert answer.button("Ответить репетитору")["callback_data"] == "msg:tutor"
    await says(telegram, tutor, "Ответ доставлен", mark)

    # the tutor's flow has ended: their next text is not sent to the student
    mark = telegram.mark()
    await telegram.send_text(tutor.user, "private note")
    await says(telegram, tutor, "Не понял", mark)
    assert not [c for c in telegram.sent("sendMessage", student.user.id) if "private note" in c.text]


async def test_a_broadcast_reaches_only_the_tutors_own_students_and_parents_after_confirmation(
    telegram: FakeTelegram, bot: BotRunner
) -> None:
    tutor, student = await tutor_and_student(telegram, bot)
    classmate = await join(telegram, bot, tutor, "Kolya", language_code="en")
    parent = await join(telegram, bot, tutor, "Maria", role="parent", student=student)
    other_tutor, strangers_student = await tutor_and_student(telegram, bot)
    text = "Занятий 8 марта не будет"

    await press(telegram, tutor, tutor.welcome, "broadcast:new", "Напишите текст рассылки")
    mark = telegram.mark()
    await telegram.send_text(tutor.user, text)
    preview = await says(telegram, tutor, "Отправить?", mark)
    assert text in preview.text
    assert not [c for c in telegram.calls[mark:] if c.chat_id != tutor.user.id and text in c.text]  # not yet sent

    done = await press(telegram, tutor, preview, "flow:broadcast:send", "Рассылка отправлена")
    assert "3" in done.text, done.text
    for member in (student, classmate, parent):
        [got] = [c for c in telegram.sent("sendMessage", member.user.id) if text in c.text]
        assert "Irina" in got.text
    for outsider in (other_tutor, strangers_student):
        assert not [c for c in telegram.sent("sendMessage", outsider.user.id) if text in c.text]

    # pressing Send again sends nothing a second time
    mark = telegram.mark()
    await telegram.press(tutor.user, preview, "flow:broadcast:send")
    await says(telegram, tutor, "устарело", mark)
    assert len([c for c in telegram.sent("sendMessage", student.user.id) if text in c.text]) == 1
