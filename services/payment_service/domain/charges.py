"""Lessons, as the lesson events tell them: the schedule for the runway, and charges.

A completed lesson, a chargeable cancellation (late) and a chargeable missed lesson (no-show)
are each charged once: the lesson's own price, else the student's, else the tutor's default.
A lesson with no price anywhere is not charged (logged): there is nothing to charge.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import exists, literal_column, select
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from services.payment_service.domain.ledger import (
    AccountKey,
    adopt_currency,
    charge_row,
    lock_account,
    lock_existing_accounts,
    post_charges,
    post_entry,
)
from services.payment_service.domain.prices import Money, price_for
from services.payment_service.domain.runway import ahead, note_if_low, note_if_low_from
from services.payment_service.models import Account, LedgerEntry, ScheduledLesson
from shared.events.catalogue import (
    LessonCancelled,
    LessonCompleted,
    LessonMissed,
    LessonRescheduled,
    LessonScheduled,
    PaymentCharged,
    PaymentRefunded,
)
from shared.events.envelope import Envelope
from shared.events.handlers import handling
from shared.events.outbox import add_event

log = logging.getLogger(__name__)

LessonEvent = LessonScheduled | LessonRescheduled | LessonCancelled | LessonCompleted | LessonMissed

CHARGE_KIND = {"completed": "lesson_charge", "cancelled": "late_cancel_charge", "missed": "no_show_charge"}
CHARGE_REASON = {"completed": "lesson", "cancelled": "late cancellation", "missed": "no-show"}


async def _remember(session: AsyncSession, lesson: LessonEvent, *, observed_at: datetime) -> bool:
    """Upsert a scheduled lesson; False when a newer observation is already kept (the event is stale).
    A scheduled lesson takes any later news (``_remember_run`` keeps lessons that are over)."""
    values = _lesson_row(lesson, status="scheduled", observed_at=observed_at)
    statement = insert(ScheduledLesson).values(**values)
    table = ScheduledLesson.__table__
    applied = await session.execute(
        statement.on_conflict_do_update(
            index_elements=[table.c.lesson_id],
            set_={k: statement.excluded[k] for k in values if k != "lesson_id"},
            where=(table.c.status == "scheduled") & (table.c.observed_at < statement.excluded.observed_at),
        ).returning(table.c.lesson_id)
    )
    return applied.first() is not None


async def lesson_planned(
    session: AsyncSession, lesson: LessonEvent, envelope: Envelope, *, default_currency: str
) -> None:
    """lesson.scheduled / lesson.rescheduled: the schedule changed; the runway may no longer reach."""
    price = await _price(session, lesson)
    currency = price.currency if price else default_currency
    # the account first, the lesson's row second: the same order as lessons_ended, so no deadlock
    account = await lock_account(session, AccountKey(lesson.tutor_id, lesson.student_id), currency=currency)
    if await _remember(session, lesson, observed_at=envelope.occurred_at):
        await note_if_low(session, account, now=envelope.occurred_at)


async def _refund_excused(session: AsyncSession, account: Account, lesson: LessonCancelled, envelope: Envelope) -> None:
    """A chargeable cancellation the tutor excused afterwards: give its charge back, once."""
    charge = await session.scalar(
        select(LedgerEntry).where(LedgerEntry.lesson_id == lesson.lesson_id, LedgerEntry.kind == "late_cancel_charge")
    )
    if charge is None:
        return
    given_back = await session.scalar(select(LedgerEntry.id).where(LedgerEntry.refunds_entry_id == charge.id))
    if given_back is not None:
        return
    entry = await post_entry(
        session,
        account,
        kind="correction",
        amount=-charge.amount,
        currency=charge.currency,
        at=envelope.occurred_at,
        refunds_entry_id=charge.id,
        reason="late cancellation excused",
        created_by=lesson.excused_by,
        source_event_id=envelope.event_id,
    )
    await add_event(
        session,
        PaymentRefunded(
            student_id=account.student_id,
            tutor_id=account.tutor_id,
            amount=entry.amount,
            currency=entry.currency,
            balance_after=entry.balance_after,
            refund_id=entry.id,
            charge_id=charge.id,
            reason="late cancellation excused",
        ),
    )


async def _price(session: AsyncSession, lesson: LessonEvent) -> Money | None:
    if lesson.price is not None and lesson.currency is not None:
        return Money(lesson.price, lesson.currency)
    return await price_for(session, lesson.tutor_id, lesson.student_id)


# --- lessons over: completed, cancelled, missed (the event path's hot handler) ---

LessonOver = LessonCompleted | LessonCancelled | LessonMissed


async def lessons_ended(session: AsyncSession, ended: Sequence[tuple[LessonOver, Envelope]], *, status: str) -> None:
    """lesson.completed / .cancelled / .missed (``status``), in turn: each lesson off the schedule, and
    charged once when chargeable; an excused cancellation gives its charge back.

    As many as the consumer has waiting go together, with one statement each for the accounts' locks,
    the lessons' rows, the prices, the schedules ahead, the charges and the balances instead of one each
    per lesson (docs/performance.md, the event path). The result is what one at a time leaves: each
    lesson's part runs in turn, in memory, on what the lessons before it left, under the accounts'
    locks. A lesson met a second time starts a new run (it meets what the first one wrote)."""
    run: list[tuple[LessonOver, Envelope]] = []
    for lesson, envelope in ended:
        if any(lesson.lesson_id == seen.lesson_id for seen, _ in run):
            await _end_run(session, run, status=status)
            run = []
        run.append((lesson, envelope))
    if run:
        await _end_run(session, run, status=status)


async def _end_run(session: AsyncSession, run: Sequence[tuple[LessonOver, Envelope]], *, status: str) -> None:
    keys = list(dict.fromkeys(AccountKey(lesson.tutor_id, lesson.student_id) for lesson, _ in run))
    # every change of a balance goes one at a time: the accounts are locked first, then what their
    # runways need is read (a pair with no account has no schedule: lesson.scheduled makes the account)
    accounts = await lock_existing_accounts(session, keys)
    since = min(envelope.occurred_at for _, envelope in run)
    schedule = await ahead(session, keys, since=since)

    def price_of(lesson: LessonOver) -> Money | None:
        if not lesson.chargeable:
            return None
        if lesson.price is not None and lesson.currency is not None:
            return Money(lesson.price, lesson.currency)
        return schedule.prices.get(AccountKey(lesson.tutor_id, lesson.student_id))

    # an account a charge needs is created (and locked) before the lessons' rows are written, so that every
    # "charged already?" below is asked under its account's lock; until that charge's turn it is not there
    known_from = dict.fromkeys(accounts, -1)
    for position, (lesson, _) in enumerate(run):
        key, price = AccountKey(lesson.tutor_id, lesson.student_id), price_of(lesson)
        if key not in accounts and price is not None:
            accounts[key] = await lock_account(session, key, currency=price.currency)
            known_from[key] = position
    charged_already = await _remember_run(session, run, status=status)
    entries: list[dict[str, Any]] = []
    for position, (lesson, envelope) in enumerate(run):
        if lesson.lesson_id not in charged_already:
            log.info(
                "stale lesson event ignored", extra={"lesson_id": str(lesson.lesson_id), "event": envelope.event_type}
            )
            continue
        key = AccountKey(lesson.tutor_id, lesson.student_id)
        over = lesson.lesson_id  # off the schedule now, for this lesson's turn and those after it
        schedule.lessons[key] = [kept for kept in schedule.lessons[key] if kept.lesson_id != over]
        from_now = [kept for kept in schedule.lessons[key] if kept.starts_at >= envelope.occurred_at]
        existing = accounts[key] if known_from.get(key, len(run)) < position else None
        price = price_of(lesson)
        with handling(envelope):
            if isinstance(lesson, LessonCancelled) and not lesson.chargeable and existing is not None:
                entries = await _written(session, entries)  # the refund is appended after them
                await _refund_excused(session, existing, lesson, envelope)
            if lesson.chargeable and price is None:
                log.warning("lesson not charged: no price set", extra={"lesson_id": str(lesson.lesson_id)})
            if price is None:
                if existing is not None:  # the next lesson changed: re-check the runway
                    await note_if_low_from(session, existing, from_now, schedule.prices.get(key))
                continue
            account = accounts[key]
            if charged_already[lesson.lesson_id]:  # another event for it came first
                log.info(
                    "lesson already charged", extra={"lesson_id": str(lesson.lesson_id), "event": envelope.event_type}
                )
                continue
            if price.currency != account.currency:  # rare: the usual check, after what is pending is written
                entries = await _written(session, entries)
                await adopt_currency(session, account, price.currency)
            entry = charge_row(
                account,
                kind=CHARGE_KIND[status],
                amount=-price.amount,
                currency=price.currency,
                at=envelope.occurred_at,
                lesson_id=lesson.lesson_id,
                reason=CHARGE_REASON[status],
                source_event_id=envelope.event_id,
            )
            entries.append(entry)
            set_committed_value(account, "balance", entry["balance_after"])  # written with the entries
            await add_event(
                session,
                PaymentCharged(
                    student_id=account.student_id,
                    tutor_id=account.tutor_id,
                    amount=price.amount,
                    currency=price.currency,
                    balance_after=entry["balance_after"],
                    charge_id=entry["id"],
                    lesson_id=lesson.lesson_id,
                    reason=CHARGE_REASON[status],
                ),
            )
            await note_if_low_from(session, account, from_now, schedule.prices.get(key))
    await _written(session, entries)


async def _written(session: AsyncSession, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Write the charges decided so far; what is left to write (nothing)."""
    if entries:
        await post_charges(session, entries)
    return []


def _remember_run_statement() -> Insert:
    """``_remember`` for lessons that are over, run with one parameter set per lesson (SQLAlchemy sends them
    as one multi-row statement): each row written unless a newer observation is kept, and for each one
    written whether the lesson is charged already."""
    table = ScheduledLesson.__table__
    statement = insert(table)
    # the row just written, by name: SQLAlchemy does not correlate a subquery in RETURNING with the
    # table written, and would add scheduled_lessons to its FROM (any lesson charged would count)
    written = literal_column(f"{table.name}.{table.c.lesson_id.name}", table.c.lesson_id.type)
    return statement.on_conflict_do_update(
        index_elements=[table.c.lesson_id],
        set_={column.name: statement.excluded[column.name] for column in table.c if column.name != "lesson_id"},
        where=(table.c.status == "scheduled") | (table.c.observed_at < statement.excluded.observed_at),
    ).returning(table.c.lesson_id, exists().where(LedgerEntry.lesson_id == written))


def _lesson_row(lesson: LessonEvent, *, status: str, observed_at: datetime) -> dict[str, Any]:
    """The lesson as payment-service keeps it (``scheduled_lessons``), from one event about it."""
    return {
        "lesson_id": lesson.lesson_id,
        "tutor_id": lesson.tutor_id,
        "student_id": lesson.student_id,
        "starts_at": lesson.starts_at,
        "ends_at": lesson.ends_at,
        "lesson_type": lesson.lesson_type,
        "price": lesson.price,
        "currency": lesson.currency,
        "status": status,
        "observed_at": observed_at,
    }


_REMEMBER_RUN = _remember_run_statement()  # built once: compiling it per run was a fifth of the handler's CPU


async def _remember_run(
    session: AsyncSession, run: Sequence[tuple[LessonOver, Envelope]], *, status: str
) -> dict[uuid.UUID, bool]:
    """``_remember`` for every lesson of ``run`` (no lesson twice) in one statement: lesson id → whether it
    is charged already, for each lesson whose event is not stale. Asked under the accounts' locks."""
    rows = [_lesson_row(lesson, status=status, observed_at=envelope.occurred_at) for lesson, envelope in run]
    applied = await session.execute(_REMEMBER_RUN, rows)
    return {lesson_id: bool(is_charged) for lesson_id, is_charged in applied.all()}
