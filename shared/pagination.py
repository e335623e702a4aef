"""Keyset pagination in the fleet's list shape ``{"items": [...], "next_cursor": ...}`` (DESIGN.md §3).

The cursor is opaque to clients: the sort key of the last item, JSON in URL-safe base64.
A list route asks for one item more than it shows, to know whether a next page exists:

    @router.get("/students")
    async def list_students(..., limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None) -> Page[StudentOut]:
        rows = await query(limit=limit + 1, after=decode_cursor(cursor))  # keyset: (created_at, id) > after
        page, more = rows[:limit], len(rows) > limit
        return Page[StudentOut](
            items=[...], next_cursor=encode_cursor(page[-1].created_at, page[-1].id) if more else None
        )
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from shared.errors import Unprocessable

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")]
Cursor = Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(created_at: datetime, item_id: uuid.UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(item_id)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    if cursor is None:
        return None
    try:
        created_at, item_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        position = datetime.fromisoformat(created_at), uuid.UUID(item_id)
        if position[0].tzinfo is None:
            raise ValueError("naive time")
    except (binascii.Error, ValueError, TypeError):
        raise Unprocessable(
            "The cursor is not valid",
            details=[{"field": "cursor", "message": "not a cursor from this list", "type": "invalid"}],
        ) from None
    return position
