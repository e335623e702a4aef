"""Downloads: the bytes streamed with a safe Content-Disposition, single byte ranges (206, 416),
and material.viewed said once per student and material."""

from __future__ import annotations

import asyncpg
import pytest

from services.material_service.domain.files import Unsatisfiable, byte_range, content_disposition
from services.material_service.tests.conftest import Api, Family, assert_error, outbox, unique_bytes


async def _shared(api: Api, family: Family, content: bytes, **fields: str) -> dict[str, str]:
    material = await api.uploaded(family.tutor, content, **fields)
    assert (await api.share(family.tutor, material["id"], student_ids=[family.student.id])).status_code == 200
    return material


async def test_the_bytes_with_their_type_and_a_safe_name(api: Api) -> None:
    family = api.family()
    content = unique_bytes() * 300  # several read chunks
    material = await _shared(api, family, content, filename='Контрольная "№1".pdf')
    response = await api.download(family.student, material["id"])
    assert response.status_code == 200
    assert response.content == content
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-length"] == str(len(content))
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["x-content-type-options"] == "nosniff"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="') and "filename*=UTF-8''" in disposition
    assert "%D0%9A%D0%BE%D0%BD" in disposition and '"\u2116' not in disposition


async def test_byte_ranges(api: Api) -> None:
    family = api.family()
    content = unique_bytes()
    material = await _shared(api, family, content)
    size = len(content)
    cases = {
        "bytes=0-9": content[:10],
        "bytes=10-": content[10:],
        "bytes=-5": content[-5:],
        f"bytes=5-{size * 2}": content[5:],
    }
    for header, expected in cases.items():
        response = await api.download(family.student, material["id"], Range=header)
        assert response.status_code == 206, (header, response.text)
        assert response.content == expected, header
        first = content.index(expected) if header != "bytes=-5" else size - 5
        assert response.headers["content-range"] == f"bytes {first}-{first + len(expected) - 1}/{size}"
    beyond = await api.download(family.student, material["id"], Range=f"bytes={size}-")
    assert_error(beyond, 416, "range_not_satisfiable")
    assert beyond.headers["content-range"] == f"bytes */{size}"
    ignored = await api.download(family.student, material["id"], Range="bytes=0-1,5-6")
    assert ignored.status_code == 200 and ignored.content == content


async def test_a_student_viewing_is_recorded_once(api: Api, db: asyncpg.Pool) -> None:
    family = api.family()
    material = await _shared(api, family, unique_bytes())
    for _ in range(3):
        assert (await api.download(family.student, material["id"])).status_code == 200
    assert (await api.download(family.student, material["id"], Range="bytes=0-0")).status_code == 206
    assert (await api.download(family.tutor, material["id"])).status_code == 200
    assert (await api.download(family.parent, material["id"])).status_code == 200
    [event] = await outbox(db, "material.viewed", material["id"])
    assert event["viewer_id"] == family.student.id and event["viewer_role"] == "student"
    assert event["owner_id"] == family.tutor.id
    assert await db.fetchval("SELECT count(*) FROM material_views WHERE material_id = $1", material["id"]) == 1


async def test_a_refused_download_records_nothing(api: Api, db: asyncpg.Pool) -> None:
    family, other = api.family(), api.family()
    material = await _shared(api, family, unique_bytes())
    assert_error(await api.download(other.student, material["id"]), 404)
    assert await outbox(db, "material.viewed", material["id"]) == []


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 10, None),
        ("bytes=0-0", 10, (0, 0)),
        ("bytes=2-", 10, (2, 9)),
        ("bytes=-3", 10, (7, 9)),
        ("bytes=-30", 10, (0, 9)),
        ("bytes=5-2", 10, None),
        ("items=0-1", 10, None),
        ("bytes=a-b", 10, None),
    ],
)
def test_byte_range_parsing(header: str | None, size: int, expected: tuple[int, int] | None) -> None:
    assert byte_range(header, size) == expected


@pytest.mark.parametrize(("header", "size"), [("bytes=10-", 10), ("bytes=-0", 10), ("bytes=0-", 0)])
def test_unsatisfiable_ranges(header: str, size: int) -> None:
    with pytest.raises(Unsatisfiable):
        byte_range(header, size)


def test_content_disposition_never_breaks_the_header() -> None:
    value = content_disposition('a"b\r\nc;.pdf')
    assert "\r" not in value and "\n" not in value
    assert value == "attachment; filename=\"a_b__c_.pdf\"; filename*=UTF-8''a%22b%0D%0Ac%3B.pdf"


def test_content_disposition_falls_back_to_a_readable_ascii_name() -> None:
    assert content_disposition("Линейные уравнения.pdf").startswith('attachment; filename="material.pdf"; ')
    assert content_disposition("Résumé.pdf").startswith('attachment; filename="Resume.pdf"; ')
