"""The ledger: every change of a balance is one immutable row; the balance is their sum.

Every change goes through :func:`post_entry` (or, for lessons' charges, :func:`post_charges`)
on an account locked with :func:`lock_account` or :func:`lock_existing_accounts` (``SELECT
... FOR UPDATE`` on the tutor–student row), so concurrent top-ups and charges on one balance
apply one after another and ``balance_after`` of each row is exact. ``accounts.balance`` is
kept in the same transaction as the rows it sums; ``rebuilt_balance`` recomputes it from them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, BindParameter, Insert, Uuid, bindparam, func, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.payment_service.models import Account, LedgerEntry
from shared.errors import Unprocessable

_ACCOUNTS = Account.__table__
_ENTRIES = LedgerEntry.__table__


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


# built once (the charge path's): the accounts among some tutor-student pairs, locked
_LOCK_EXISTING = (
    select(Account)
    .where(tuple_(Account.tutor_id, Account.student_id).in_(bindparam("account_keys", expanding=True)))
    .order_by(Account.tutor_id, Account.student_id)  # in one order, so two transactions cannot deadlock
    .with_for_update()
    .execution_options(populate_existing=True)
)


async def lock_existing_accounts(session: AsyncSession, keys: Sequence[AccountKey]) -> dict[AccountKey, Account]:
    """The accounts that exist among ``keys``, locked until the transaction ends (in one statement); none
    is created."""
    wanted = [(key.tutor_id, key.student_id) for key in keys]
    found = (await session.scalars(_LOCK_EXISTING, {"account_keys": wanted})).all()
    return {AccountKey(account.tutor_id, account.student_id): account for account in found}


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


def charge_row(
    account: Account,
    *,
    kind: str,
    amount: int,
    currency: str,
    at: datetime,
    lesson_id: uuid.UUID,
    reason: str,
    source_event_id: uuid.UUID,
) -> dict[str, Any]:
    """A lesson's charge for :func:`post_charges`, after the ones before it on ``account`` (whose
    ``balance`` the caller keeps up to date): the row :func:`post_entry` would append."""
    return {
        "id": uuid.uuid4(),
        "tutor_id": account.tutor_id,
        "student_id": account.student_id,
        "kind": kind,
        "amount": amount,
        "currency": currency,
        "balance_after": account.balance + amount,
        "lesson_id": lesson_id,
        "reason": reason,
        "source_event_id": source_event_id,
        "created_at": at,
    }


def _post_charges_statement() -> Insert:
    """Lessons' charges appended and their accounts' balances set, in one statement built once: the rows
    and the final balances come as arrays (one element per row, per account), unnested."""

    def arrays(*names: str) -> list[BindParameter[Any]]:
        return [bindparam(f"charge_{name}s", type_=ARRAY(_ENTRIES.c[name].type)) for name in names]

    final = (
        func.unnest(
            bindparam("account_tutor_ids", type_=ARRAY(Uuid())),
            bindparam("account_student_ids", type_=ARRAY(Uuid())),
            bindparam("account_balances", type_=ARRAY(BigInteger())),
        )
        .table_valued("tutor_id", "student_id", "balance")
        .render_derived(name="final")
    )
    moved = (
        _ACCOUNTS.update()
        .where(_ACCOUNTS.c.tutor_id == final.c.tutor_id, _ACCOUNTS.c.student_id == final.c.student_id)
        .values(balance=final.c.balance, updated_at=func.now())
        .cte("moved")
    )
    new = func.unnest(*arrays(*_CHARGE_COLUMNS)).table_valued(*_CHARGE_COLUMNS).render_derived(name="new")
    return _ENTRIES.insert().from_select(list(_CHARGE_COLUMNS), select(*new.c)).add_cte(moved)


_CHARGE_COLUMNS = (
    "id", "tutor_id", "student_id", "kind", "amount", "currency", "balance_after", "lesson_id", "reason",
    "source_event_id", "created_at",
)  # fmt: skip
_POST_CHARGES = _post_charges_statement()


async def post_charges(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Append ``rows`` (from :func:`charge_row`, in order, on accounts the caller has locked) and set each
    account's balance to what its last row left, in one statement."""
    final = {(row["tutor_id"], row["student_id"]): row["balance_after"] for row in rows}
    await session.execute(
        _POST_CHARGES,
        {
            **{f"charge_{name}s": [row[name] for row in rows] for name in _CHARGE_COLUMNS},
            "account_tutor_ids": [tutor_id for tutor_id, _ in final],
            "account_student_ids": [student_id for _, student_id in final],
            "account_balances": list(final.values()),
        },
    )


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
