"""/api/v1/payments/prices: a tutor's default price and per-student prices."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from services.payment_service.api.deps import TutorQuery, account_key
from services.payment_service.api.schemas import PriceIn, PriceOut
from services.payment_service.domain import prices
from shared.auth.access import AccessibleStudentId, StudentAccessDep
from shared.auth.deps import TutorId
from shared.db import SessionDep
from shared.errors import NotFound

router = APIRouter(prefix="/api/v1/payments/prices", tags=["prices"])


@router.put("/default")
async def set_default_price(body: PriceIn, tutor_id: TutorId, session: SessionDep) -> PriceOut:
    """The price of a lesson for every student without a price of their own."""
    await prices.set_price(session, tutor_id, None, prices.Money(body.amount, body.currency))
    return PriceOut(tutor_id=tutor_id, student_id=None, amount=body.amount, currency=body.currency, source="default")


@router.get("/default")
async def read_default_price(tutor_id: TutorId, session: SessionDep) -> PriceOut:
    price = await prices.default_price(session, tutor_id)
    if price is None:
        raise NotFound("No default price set")
    return PriceOut(tutor_id=tutor_id, student_id=None, amount=price.amount, currency=price.currency, source="default")


@router.put("/students/{student_id}")
async def set_student_price(
    body: PriceIn, student_id: AccessibleStudentId, tutor_id: TutorId, session: SessionDep
) -> PriceOut:
    await prices.set_price(session, tutor_id, student_id, prices.Money(body.amount, body.currency))
    return PriceOut(
        tutor_id=tutor_id, student_id=student_id, amount=body.amount, currency=body.currency, source="student"
    )


@router.delete("/students/{student_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_student_price(student_id: AccessibleStudentId, tutor_id: TutorId, session: SessionDep) -> Response:
    """Back to the tutor's default price."""
    if not await prices.remove_student_price(session, tutor_id, student_id):
        raise NotFound("This student has no price of their own")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/students/{student_id}")
async def read_student_price(
    student_id: AccessibleStudentId, access: StudentAccessDep, session: SessionDep, tutor_id: TutorQuery = None
) -> PriceOut:
    """The price a lesson of this student costs (theirs, else the tutor's default)."""
    key = await account_key(session, access.caller, student_id, tutor_id)
    if key is None:
        raise NotFound("No price set")
    own = await prices.student_price(session, key.tutor_id, student_id)
    price = own or await prices.default_price(session, key.tutor_id)
    if price is None:
        raise NotFound("No price set")
    return PriceOut(
        tutor_id=key.tutor_id,
        student_id=student_id,
        amount=price.amount,
        currency=price.currency,
        source="student" if own else "default",
    )
