"""The ledger: every change of a balance is one immutable row; the balance is their sum.

Every change goes through :func:`post_entry` on an account locked with
:func:`lock_account` (``SELECT ... FOR UPDATE`` on the tutor–student row), so
concurrent top-ups and charges on one balance apply one after another and
``balance_after`` of each row is exact. ``accounts.balance`` is kept in the same
statement as the row it sums; ``rebuilt_balance`` recomputes it from the rows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Insert, bindparam, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from services.payment_service.models import Account, LedgerEntry
from shared.errors import Unprocessable

_ACCOUNTS = Account.__table__
_ENTRIES = LedgerEntry.__table__

# the charge path's statements are built once and run with parameters, so SQLAlchemy does not build
# them and compute their cache keys anew for every event
_LOCK_EXISTING = (
    select(Account)
    .where(Account.tutor_id == bindparam("account_tutor_id"), Account.student_id == bindparam("account_student_id"))
    .with_for_update()
    .execution_options(populate_existing=True)
)


def _charge_statement() -> Insert:
    """The balance moved and the row appended with the balance it left, in one statement. Its
    parameters are named ``charge_<column>``: a parameter named like a column of either table would
    also be taken as a value for that column."""
    tutor_id = bindparam("charge_tutor_id", type_=_ENTRIES.c.tutor_id.type)
    student_id = bindparam("charge_student_id", type_=_ENTRIES.c.student_id.type)
    amount = bindparam("charge_amount", type_=_ENTRIES.c.amount.type)
    moved = (
        _ACCOUNTS.update()
        .where(_ACCOUNTS.c.tutor_id == tutor_id, _ACCOUNTS.c.student_id == student_id)
        .values(balance=_ACCOUNTS.c.balance + amount, updated_at=func.now())
        .returning(_ACCOUNTS.c.balance)
        .cte("moved")
    )
    copied = ("id", "tutor_id", "student_id", "kind", "amount", "currency", "lesson_id", "reason", "source_event_id")
    given = {"tutor_id": tutor_id, "student_id": student_id, "amount": amount}
    columns = [given.get(name, bindparam(f"charge_{name}", type_=_ENTRIES.c[name].type)) for name in copied]
    return (
        _ENTRIES.insert()
        .from_select(
            [*copied, "balance_after", "created_at"],
            select(*columns, moved.c.balance, bindparam("charge_created_at", type_=_ENTRIES.c.created_at.type)),
        )
        .returning(_ENTRIES.c.balance_after)
    )


_POST_CHARGE = _charge_statement()


@dataclass(frozen=True)
class AccountKey:
    tutor_id: uuid.UUID
    student_id: uuid.UUID


async def lock_account(session: AsyncSession, key: AccountKey, *, currency: str) -> Account:
    """The tutor–student account, created in ``currency`` if new, locked until the transaction ends."""
    await session.execute(
        insert(Account)
        .values(tutor_id=key.tutor_id, student_id=key.student_id, currency=currency)
        .on_conflict_do_nothing(index_elements=[Account.tutor_id, Account.student_id])
    )
    account = await session.scalar(
        select(Account)
        .where(Account.tutor_id == key.tutor_id, Account.student_id == key.student_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert account is not None
    return account


async def lock_existing_account(session: AsyncSession, key: AccountKey) -> Account | None:
    """The account locked until the transaction ends, or None (and nothing locked) when there is none."""
    return await session.scalar(
        _LOCK_EXISTING, {"account_tutor_id": key.tutor_id, "account_student_id": key.student_id}
    )


async def find_account(session: AsyncSession, key: AccountKey) -> Account | None:
    return await session.scalar(
        select(Account).where(Account.tutor_id == key.tutor_id, Account.student_id == key.student_id)
    )


def check_currency(account: Account, currency: str, *, field: str = "currency") -> None:
    if currency != account.currency:
        raise Unprocessable(
            f"This balance is kept in {account.currency}, not {currency}",
            code="currency_mismatch",
            details=[{"field": field, "message": f"must be {account.currency}", "type": "value_error"}],
        )


async def adopt_currency(session: AsyncSession, account: Account, currency: str) -> None:
    """An account with no rows yet (made for a scheduled lesson) takes the currency of its first
    row; after that another currency is refused."""
    if currency != account.currency:
        has_rows = await session.scalar(
            select(LedgerEntry.id)
            .where(LedgerEntry.tutor_id == account.tutor_id, LedgerEntry.student_id == account.student_id)
            .limit(1)
        )
        if has_rows is None:
            account.currency = currency
    check_currency(account, currency)


async def post_entry(
    session: AsyncSession,
    account: Account,
    *,
    kind: str,
    amount: int,
    currency: str,
    at: datetime,
    method: str | None = None,
    lessons: int | None = None,
    lesson_id: uuid.UUID | None = None,
    refunds_entry_id: uuid.UUID | None = None,
    reason: str | None = None,
    created_by: uuid.UUID | None = None,
    source_event_id: uuid.UUID | None = None,
) -> LedgerEntry:
    """Append one row to a locked account and move its balance by ``amount`` (signed)."""
    await adopt_currency(session, account, currency)
    entry = LedgerEntry(
        id=uuid.uuid4(),
        tutor_id=account.tutor_id,
        student_id=account.student_id,
        kind=kind,
        amount=amount,
        currency=currency,
        balance_after=account.balance + amount,
        method=method,
        lessons=lessons,
        lesson_id=lesson_id,
        refunds_entry_id=refunds_entry_id,
        reason=reason,
        created_by=created_by,
        source_event_id=source_event_id,
        created_at=at,
    )
    session.add(entry)
    account.balance = entry.balance_after
    await session.flush()
    return entry


@dataclass(frozen=True)
class PostedCharge:
    id: uuid.UUID
    balance_after: int


async def post_charge(
    session: AsyncSession,
    account: Account,
    *,
    kind: str,
    amount: int,
    currency: str,
    at: datetime,
    lesson_id: uuid.UUID,
    reason: str,
    source_event_id: uuid.UUID,
) -> PostedCharge:
    """:func:`post_entry` for a lesson's charge (the event handlers' hot path) in ONE statement,
    SQLAlchemy Core: the balance moves and the row is appended with the balance it left. The
    account is locked, so ``balance_after`` is exact; the loaded ``account`` is kept up to date."""
    await adopt_currency(session, account, currency)  # may change the account: flushed by the next execute
    entry_id = uuid.uuid4()
    balance_after = (
        await session.execute(
            _POST_CHARGE,
            {
                "charge_id": entry_id,
                "charge_tutor_id": account.tutor_id,
                "charge_student_id": account.student_id,
                "charge_kind": kind,
                "charge_amount": amount,
                "charge_currency": currency,
                "charge_lesson_id": lesson_id,
                "charge_reason": reason,
                "charge_source_event_id": source_event_id,
                "charge_created_at": at,
            },
        )
    ).scalar_one()
    set_committed_value(account, "balance", balance_after)
    # account.updated_at keeps the value loaded with the lock (the row's is now()): nothing on the
    # charge path reads it, and expiring it would cost a statement to load it back at the next flush
    return PostedCharge(entry_id, balance_after)


async def lesson_already_charged(session: AsyncSession, lesson_id: uuid.UUID) -> bool:
    found = await session.scalar(select(LedgerEntry.id).where(LedgerEntry.lesson_id == lesson_id))
    return found is not None


async def get_entry(session: AsyncSession, key: AccountKey, entry_id: uuid.UUID) -> LedgerEntry | None:
    return await session.scalar(
        select(LedgerEntry).where(
            LedgerEntry.id == entry_id, LedgerEntry.tutor_id == key.tutor_id, LedgerEntry.student_id == key.student_id
        )
    )


async def refunded_so_far(session: AsyncSession, entry_id: uuid.UUID) -> int:
    """How much of an entry was already given back (a positive number)."""
    total = await session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(LedgerEntry.refunds_entry_id == entry_id)
    )
    return -int(total or 0)


async def rebuilt_balance(session: AsyncSession, key: AccountKey) -> int:
    """The balance as the sum of the account's rows: what ``accounts.balance`` must always equal."""
    total = await session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
            LedgerEntry.tutor_id == key.tutor_id, LedgerEntry.student_id == key.student_id
        )
    )
    return int(total or 0)
