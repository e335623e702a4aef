"""/api/v1/payments/statements: a student's history (paged), totals per month, and CSV."""

from __future__ import annotations

import zoneinfo
from typing import Annotated

from fastapi import APIRouter, Query, Response

from services.payment_service.api.deps import TutorQuery, account_key
from services.payment_service.api.schemas import EntryOut, MonthOut
from services.payment_service.domain import statements
from shared.auth.access import AccessibleStudentId, StudentAccessDep
from shared.csv_export import csv_response
from shared.db import SessionDep
from shared.errors import Unprocessable
from shared.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode_cursor, encode_cursor

router = APIRouter(prefix="/api/v1/payments/statements", tags=["statements"])

DEFAULT_TIMEZONE = "Europe/Moscow"
TimeZone = Annotated[str, Query(max_length=64, description="IANA time zone the months are counted in")]
CSV_COLUMNS = (
    "created_at",
    "kind",
    "amount",
    "currency",
    "balance_after",
    "method",
    "lessons",
    "lesson_id",
    "reason",
    "id",
)


def _zone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise Unprocessable(
            "Unknown time zone",
            details=[{"field": "timezone", "message": "not an IANA time zone name", "type": "value_error"}],
        ) from None
    return name


@router.get("/{student_id}")
async def read_statement(
    student_id: AccessibleStudentId,
    access: StudentAccessDep,
    session: SessionDep,
    tutor_id: TutorQuery = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[EntryOut]:
    """Every change of the balance, newest first."""
    key = await account_key(session, access.caller, student_id, tutor_id)
    if key is None:
        return Page[EntryOut](items=[], next_cursor=None)
    rows = await statements.entries(session, key, limit=limit + 1, before=decode_cursor(cursor))
    page, more = rows[:limit], len(rows) > limit
    return Page[EntryOut](
        items=[EntryOut.of(entry) for entry in page],
        next_cursor=encode_cursor(page[-1].created_at, page[-1].id) if more else None,
    )


@router.get("/{student_id}/monthly")
async def read_monthly_totals(
    student_id: AccessibleStudentId,
    access: StudentAccessDep,
    session: SessionDep,
    tutor_id: TutorQuery = None,
    timezone: TimeZone = DEFAULT_TIMEZONE,
) -> dict[str, list[MonthOut]]:
    """Totals per calendar month (oldest first), summed in SQL."""
    key = await account_key(session, access.caller, student_id, tutor_id)
    if key is None:
        return {"items": []}
    return {"items": [MonthOut(**row) for row in await statements.monthly(session, key, timezone=_zone(timezone))]}


@router.get("/{student_id}/export.csv", response_class=Response)
async def export_statement(
    student_id: AccessibleStudentId, access: StudentAccessDep, session: SessionDep, tutor_id: TutorQuery = None
) -> Response:
    """The whole statement as CSV, oldest first."""
    key = await account_key(session, access.caller, student_id, tutor_id)
    entries = (
        [EntryOut.of(entry).model_dump(mode="json") for entry in await statements.all_entries(session, key)]
        if key
        else []
    )
    rows = ([out[c] for c in CSV_COLUMNS] for out in entries)
    return csv_response(CSV_COLUMNS, rows, f"statement-{student_id}.csv")
