"""/api/v1/analytics: a tutor's reports (the tutor themself or an admin; 404 for anyone else),
a student's progress (whoever may see the student: shared.auth.access), CSV with ``format=csv``.

``from`` and ``to`` are calendar days (inclusive) in the tutor's time zone, from user.registered /
user.updated (the student's zone for progress); by default the 30 days up to today.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from services.analytics_service.api.schemas import IncomeOut, ProgressOut, SummaryOut
from services.analytics_service.domain import reports
from shared.auth.access import AccessibleStudentId
from shared.auth.deps import CurrentUser
from shared.csv_export import csv_response
from shared.db import SessionDep
from shared.errors import NotFound, Unprocessable

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])

From = Annotated[date | None, Query(alias="from")]
To = Annotated[date | None, Query(alias="to")]
Format = Annotated[Literal["json", "csv"], Query()]


def _json_or_csv(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """A report answers ``model`` as JSON, or CSV with ``format=csv``: the OpenAPI document names both."""
    return {200: {"model": model, "content": {"text/csv": {"schema": {"type": "string"}}}}}


def _tutor(tutor_id: str, caller: Any) -> uuid.UUID:
    if tutor_id == "me":
        tutor_id = caller.id
    try:
        wanted = uuid.UUID(tutor_id)
    except ValueError:
        raise NotFound("no such tutor") from None
    if not (caller.is_admin or (caller.role == "tutor" and caller.id == str(wanted))):
        raise NotFound("no such tutor")
    return wanted


def _range(request: Request, tz: str, start: date | None, end: date | None) -> tuple[date, date]:
    today = datetime.now(ZoneInfo(tz)).date() if tz else request.app.state.clock.now().date()
    end = end or today
    start = start or end - timedelta(days=29)
    if start > end:
        raise Unprocessable("'from' is after 'to'", details=[{"field": "from", "message": "after 'to'"}])
    if (end - start).days > 3660:
        raise Unprocessable("the range is longer than ten years", details=[{"field": "from", "message": "too early"}])
    return start, end


def _csv(rows: list[dict[str, Any]], name: str) -> Response:
    columns = list(rows[0]) if rows else []
    return csv_response(columns, ([row[c] for c in columns] for row in rows), f"{name}.csv")


def _default_tz(request: Request) -> str:
    return str(request.app.state.settings.default_timezone)


@router.get("/tutors/{tutor_id}/summary")
async def tutor_summary(
    tutor_id: str, request: Request, caller: CurrentUser, session: SessionDep, start: From = None, end: To = None
) -> SummaryOut:
    tutor = _tutor(tutor_id, caller)
    tz = await reports.timezone_of(session, tutor, _default_tz(request))
    first, last = _range(request, tz, start, end)
    return SummaryOut.model_validate(await reports.summary(session, tutor, tz, first, last))


@router.get("/tutors/{tutor_id}/income", response_model=None, responses=_json_or_csv(IncomeOut))
async def tutor_income(
    tutor_id: str,
    request: Request,
    caller: CurrentUser,
    session: SessionDep,
    start: From = None,
    end: To = None,
    group: Annotated[Literal["day", "month"], Query()] = "day",
    format: Format = "json",
) -> IncomeOut | Response:
    tutor = _tutor(tutor_id, caller)
    tz = await reports.timezone_of(session, tutor, _default_tz(request))
    first, last = _range(request, tz, start, end)
    rows = await reports.income(session, tutor, tz, first, last, group)
    if format == "csv":
        return _csv(rows, f"income-{first}-{last}")
    return IncomeOut.model_validate({"tutor_id": tutor, "timezone": tz, "from": first, "to": last, "items": rows})


@router.get("/students/{student_id}/progress", response_model=None, responses=_json_or_csv(ProgressOut))
async def student_progress(
    student_id: AccessibleStudentId,
    request: Request,
    session: SessionDep,
    start: From = None,
    end: To = None,
    format: Format = "json",
) -> ProgressOut | Response:
    tz = await reports.timezone_of(session, student_id, _default_tz(request))
    first, last = _range(request, tz, start, end)
    rows = await reports.progress(session, student_id, tz, first, last)
    if format == "csv":
        return _csv(rows, f"progress-{first}-{last}")
    return ProgressOut.model_validate(
        {"student_id": student_id, "timezone": tz, "from": first, "to": last, "items": rows}
    )
