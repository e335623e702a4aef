"""Keyset pagination: the cursor round-trips, bad cursors and limits are 422 in the one error shape."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from shared.errors import Unprocessable, install_error_handlers
from shared.pagination import DEFAULT_LIMIT, MAX_LIMIT, Cursor, Limit, Page, decode_cursor, encode_cursor

AT = datetime(2026, 3, 2, 15, 0, 0, 123456, tzinfo=UTC)


def test_a_cursor_round_trips_and_is_url_safe_without_padding() -> None:
    item_id = uuid.uuid4()
    cursor = encode_cursor(AT, item_id)
    assert "=" not in cursor and set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert decode_cursor(cursor) == (AT, item_id)


def test_a_cursor_keeps_the_offset_of_its_time() -> None:
    moscow = datetime(2026, 3, 2, 18, 0, tzinfo=timezone(timedelta(hours=3)))
    position = decode_cursor(encode_cursor(moscow, uuid.UUID(int=1)))
    assert position is not None and position[0] == moscow and position[0].utcoffset() == timedelta(hours=3)


def test_no_cursor_is_the_first_page() -> None:
    assert decode_cursor(None) is None


def _raw_cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "!!!",
        _raw_cursor("not json"),
        _raw_cursor('["2026-03-02T15:00:00", "00000000-0000-0000-0000-000000000001"]'),  # naive time
        _raw_cursor('["2026-03-02T15:00:00+00:00", "not-a-uuid"]'),
        _raw_cursor('["2026-03-02T15:00:00+00:00"]'),
        _raw_cursor("42"),
    ],
)
def test_a_cursor_not_made_here_is_refused_as_invalid_input(cursor: str) -> None:
    with pytest.raises(Unprocessable) as caught:
        decode_cursor(cursor)
    assert caught.value.status_code == 422
    assert caught.value.details == [{"field": "cursor", "message": "not a cursor from this list", "type": "invalid"}]


class _Item(BaseModel):
    n: int


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    numbers = list(range(1, 8))

    @app.get("/numbers")
    async def list_numbers(limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None) -> Page[_Item]:
        after = decode_cursor(cursor)
        start = 0 if after is None else after[1].int
        rows = numbers[start : start + limit + 1]
        page, more = rows[:limit], len(rows) > limit
        return Page[_Item](
            items=[_Item(n=n) for n in page], next_cursor=encode_cursor(AT, uuid.UUID(int=page[-1])) if more else None
        )

    return app


async def test_a_list_answers_items_and_next_cursor_and_bounds_its_limit() -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="http://probe") as client:
        first = await client.get("/numbers", params={"limit": 3})
        assert first.status_code == 200
        assert set(first.json()) == {"items", "next_cursor"}
        seen = [item["n"] for item in first.json()["items"]]
        cursor = first.json()["next_cursor"]
        while cursor is not None:
            page = (await client.get("/numbers", params={"limit": 3, "cursor": cursor})).json()
            seen += [item["n"] for item in page["items"]]
            cursor = page["next_cursor"]
        assert seen == list(range(1, 8))

        everything = (await client.get("/numbers")).json()  # default limit 50: one page
        assert len(everything["items"]) == 7 and everything["next_cursor"] is None

        assert (await client.get("/numbers", params={"limit": MAX_LIMIT})).status_code == 200
        for bad in ({"limit": 0}, {"limit": MAX_LIMIT + 1}, {"cursor": "garbage"}, {"cursor": "x" * 513}):
            response = await client.get("/numbers", params=bad)
            assert response.status_code == 422, bad
            assert response.json()["error"]["code"] == "validation_error"


def test_the_limits_are_those_of_the_design() -> None:
    assert (DEFAULT_LIMIT, MAX_LIMIT) == (50, 200)
