"""/api/v1/payments: top-ups, refunds, corrections, balances and the tutor's debts list."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlalchemy import select, tuple_

from services.payment_service.api.deps import Settings, TutorQuery, account_key
from services.payment_service.api.schemas import BalanceOut, CorrectionIn, DebtOut, EntryOut, RefundIn, TopUpIn
from services.payment_service.domain import payments
from services.payment_service.domain.ledger import AccountKey, find_account
from services.payment_service.domain.prices import price_for
from services.payment_service.domain.runway import runway
from services.payment_service.models import Account
from shared.auth.access import AccessibleStudentId, StudentAccessDep
from shared.auth.deps import TutorId
from shared.clock import Now
from shared.db import SessionDep
from shared.idempotency import IdempotentRoute
from shared.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode_cursor, encode_cursor

# every POST here honours Idempotency-Key: the bot may queue a top-up offline and send it twice
router = APIRouter(prefix="/api/v1/payments", tags=["payments"], route_class=IdempotentRoute)


@router.post("/top-ups", status_code=status.HTTP_201_CREATED)
async def record_top_up(
    body: TopUpIn, tutor_id: TutorId, access: StudentAccessDep, session: SessionDep, settings: Settings, now: Now
) -> EntryOut:
    """A payment the tutor received (cash, transfer, card): an amount, or a package of lessons."""
    await access.ensure(body.student_id)
    entry = await payments.top_up(
        session,
        AccountKey(tutor_id, body.student_id),
        amount=body.amount,
        lessons=body.lessons,
        currency=body.currency,
        method=body.method,
        note=body.note,
        recorded_by=tutor_id,
        now=now,
        default_currency=settings.default_currency,
    )
    return EntryOut.of(entry)


@router.post("/refunds", status_code=status.HTTP_201_CREATED)
async def record_refund(
    body: RefundIn, tutor_id: TutorId, access: StudentAccessDep, session: SessionDep, now: Now
) -> EntryOut:
    await access.ensure(body.student_id)
    entry = await payments.refund(
        session,
        AccountKey(tutor_id, body.student_id),
        amount=body.amount,
        currency=body.currency,
        reason=body.reason,
        payment_id=body.payment_id,
        recorded_by=tutor_id,
        now=now,
    )
    return EntryOut.of(entry)


@router.post("/corrections", status_code=status.HTTP_201_CREATED)
async def record_correction(
    body: CorrectionIn, tutor_id: TutorId, access: StudentAccessDep, session: SessionDep, now: Now
) -> EntryOut:
    await access.ensure(body.student_id)
    entry = await payments.correct(
        session,
        AccountKey(tutor_id, body.student_id),
        amount=body.amount,
        currency=body.currency,
        reason=body.reason,
        recorded_by=tutor_id,
        now=now,
    )
    return EntryOut.of(entry)


@router.get("/balances/{student_id}")
async def read_balance(
    student_id: AccessibleStudentId,
    access: StudentAccessDep,
    session: SessionDep,
    settings: Settings,
    now: Now,
    tutor_id: TutorQuery = None,
) -> BalanceOut:
    """The balance (negative: a debt), and how many lessons it still covers, until when."""
    key = await account_key(session, access.caller, student_id, tutor_id)
    if key is None:  # no tutor has a balance with this student or is linked to them yet
        return BalanceOut(
            student_id=student_id,
            tutor_id=None,
            balance=0,
            currency=settings.default_currency,
            in_debt=False,
            lessons_covered=0,
            covered_until=None,
        )
    account = await find_account(session, key)
    if account is None:  # nothing paid or charged yet: an empty balance, not stored
        price = await price_for(session, key.tutor_id, student_id)
        currency = price.currency if price else settings.default_currency
        account = Account(tutor_id=key.tutor_id, student_id=student_id, currency=currency, balance=0)
    covered = await runway(session, account, now=now)
    return BalanceOut(
        student_id=student_id,
        tutor_id=key.tutor_id,
        balance=account.balance,
        currency=account.currency,
        in_debt=account.balance < 0,
        lessons_covered=covered.lessons_covered,
        covered_until=covered.covered_until,
    )


@router.get("/debts")
async def list_debts(
    tutor_id: TutorId, session: SessionDep, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[DebtOut]:
    """The tutor's students who owe, longest-standing first."""
    query = select(Account).where(Account.tutor_id == tutor_id, Account.balance < 0)
    after = decode_cursor(cursor)
    if after is not None:
        query = query.where(tuple_(Account.updated_at, Account.student_id) > tuple_(*after))
    rows = (await session.scalars(query.order_by(Account.updated_at, Account.student_id).limit(limit + 1))).all()
    page, more = rows[:limit], len(rows) > limit
    return Page[DebtOut](
        items=[
            DebtOut(student_id=a.student_id, balance=a.balance, currency=a.currency, since=a.updated_at) for a in page
        ],
        next_cursor=encode_cursor(page[-1].updated_at, page[-1].student_id) if more else None,
    )
