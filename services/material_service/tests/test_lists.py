"""Listing and searching the materials a caller sees ({items, next_cursor}); deleting by the
owner, with the blob removed once no material references it."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import asyncpg

from services.material_service.tests.conftest import Api, assert_error, unique_bytes


async def _ids(api: Api, headers: dict[str, str], **params: str) -> list[str]:
    response = await api.client.get("/api/v1/materials", headers=headers, params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"items", "next_cursor"}
    return [item["id"] for item in body["items"]]


async def test_search_by_title_subject_grade_and_tag(api: Api) -> None:
    tutor = api.person("tutor")
    word = uuid.uuid4().hex[:8]
    algebra = await api.uploaded(
        tutor, unique_bytes(), title=f"Algebra {word}", subject="Maths", grade="7", tags="equations"
    )
    physics = await api.uploaded(
        tutor, unique_bytes(), title=f"Physics {word}", subject="Physics", grade="9", tags="motion,equations"
    )
    headers = tutor.headers
    assert await _ids(api, headers) == [physics["id"], algebra["id"]]  # newest first
    assert await _ids(api, headers, q=f"algebra {word}") == [algebra["id"]]
    assert await _ids(api, headers, subject="maths") == [algebra["id"]]
    assert await _ids(api, headers, grade="9") == [physics["id"]]
    assert await _ids(api, headers, tag="equations") == [physics["id"], algebra["id"]]
    assert await _ids(api, headers, tag="motion", grade="7") == []
    assert await _ids(api, headers, q="%") == []  # a wildcard is a character here
    assert_error(await api.client.get("/api/v1/materials", headers=headers, params={"grade": "12"}), 422)


async def test_pages_with_a_cursor(api: Api) -> None:
    tutor = api.person("tutor")
    made = [(await api.uploaded(tutor, unique_bytes(), title=f"Sheet {n}"))["id"] for n in range(5)]
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        body = (await api.client.get("/api/v1/materials", headers=tutor.headers, params=params)).json()
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == made[::-1]


async def test_each_sees_their_own_list(api: Api) -> None:
    family, other = api.family(), api.family()
    await api.announce(family.tutor, family.student, family.parent)
    await api.announce(other.tutor, other.student, other.parent)
    shared = await api.uploaded(family.tutor, unique_bytes(), title="Shared")
    await api.uploaded(family.tutor, unique_bytes(), title="Private")
    homework = await api.uploaded(family.student, unique_bytes(), title="My homework")
    for_all = await api.uploaded(family.tutor, unique_bytes(), title="For all")
    await api.share(family.tutor, shared["id"], student_ids=[family.student.id])
    await api.share(family.tutor, for_all["id"], all_students=True)
    assert set(await _ids(api, family.student.headers)) == {shared["id"], homework["id"], for_all["id"]}
    assert set(await _ids(api, family.parent.headers)) == {shared["id"], for_all["id"]}
    assert homework["id"] in await _ids(api, family.tutor.headers)
    assert await _ids(api, other.student.headers) == []
    assert await _ids(api, other.tutor.headers) == []


async def test_delete_removes_the_blob_once_unreferenced(api: Api, blob_dir: Path, db: asyncpg.Pool) -> None:
    family = api.family()
    content = unique_bytes()
    digest = hashlib.sha256(content).hexdigest()
    blob = blob_dir / digest[:2] / digest[2:4] / digest
    first = await api.uploaded(family.tutor, content)
    second = await api.uploaded(api.person("tutor"), content)
    await api.share(family.tutor, first["id"], student_ids=[family.student.id])

    assert_error(await api.client.delete(f"/api/v1/materials/{first['id']}", headers=family.student.headers), 403)
    assert (
        await api.client.delete(f"/api/v1/materials/{first['id']}", headers=family.tutor.headers)
    ).status_code == 204
    assert_error(await api.download(family.student, first["id"]), 404)
    assert blob.exists()  # the second material still uses these bytes
    assert await db.fetchval("SELECT refcount FROM blobs WHERE sha256 = $1", digest) == 1

    owner = second["owner_id"]
    other_headers = api.tokens.auth_header(owner, "tutor")
    assert (await api.client.delete(f"/api/v1/materials/{second['id']}", headers=other_headers)).status_code == 204
    assert not blob.exists()
    assert await db.fetchval("SELECT count(*) FROM blobs WHERE sha256 = $1", digest) == 0
    assert_error(await api.client.delete(f"/api/v1/materials/{second['id']}", headers=other_headers), 404)

    again = await api.uploaded(family.tutor, content)  # the same bytes come back: stored anew
    assert (await api.download(family.tutor, again["id"])).content == content
