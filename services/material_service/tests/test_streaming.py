"""The upload path holds no whole file in memory: the parser writes each chunk to the spooled file
as it arrives; and blobs stay right when the same bytes are uploaded and deleted concurrently."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg

from services.material_service.domain.blobs import BlobStore
from services.material_service.domain.upload import read_form
from services.material_service.tests.conftest import PDF, Api, unique_bytes

CHUNK = 64 * 1024


async def test_the_file_reaches_the_disk_while_the_body_is_still_arriving(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    content = PDF + bytes(20 * CHUNK)
    body = (
        b'--b\r\nContent-Disposition: form-data; name="title"\r\n\r\nBig\r\n'
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n\r\n' + content + b"\r\n--b--\r\n"
    )
    on_disk_midway: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), CHUNK):
            if start == 10 * CHUNK:
                spooled = list((tmp_path / "tmp").iterdir())
                on_disk_midway.append(spooled[0].stat().st_size if spooled else 0)
            yield body[start : start + CHUNK]

    form = await read_form(chunks(), "multipart/form-data; boundary=b", store, max_file_bytes=len(content))
    assert form.file is not None and form.fields == {"title": ["Big"]}
    # half-way through the body, most of what had arrived was already in the spooled file
    assert on_disk_midway and on_disk_midway[0] >= 9 * CHUNK
    assert form.file.size == len(content) and form.file.sha256 == hashlib.sha256(content).hexdigest()
    assert form.file.path.read_bytes() == content
    await store.discard(form.file)


async def test_the_same_bytes_uploaded_at_once_are_stored_once(api: Api, db: asyncpg.Pool, blob_dir: Path) -> None:
    content = unique_bytes()
    tutors = [api.person("tutor") for _ in range(6)]
    responses = await asyncio.gather(*(api.upload(tutor, content) for tutor in tutors))
    assert [r.status_code for r in responses] == [201] * 6
    digest = hashlib.sha256(content).hexdigest()
    assert await db.fetchval("SELECT refcount FROM blobs WHERE sha256 = $1", digest) == 6
    assert (blob_dir / digest[:2] / digest[2:4] / digest).read_bytes() == content


async def test_deleting_the_last_copy_while_the_same_bytes_arrive_keeps_the_new_one(
    api: Api, db: asyncpg.Pool, blob_dir: Path
) -> None:
    for _ in range(5):
        content = unique_bytes()
        digest = hashlib.sha256(content).hexdigest()
        tutor = api.person("tutor")
        first = await api.uploaded(tutor, content)
        deleted, again = await asyncio.gather(
            api.client.delete(f"/api/v1/materials/{first['id']}", headers=tutor.headers), api.upload(tutor, content)
        )
        assert deleted.status_code == 204 and again.status_code == 201
        assert await db.fetchval("SELECT refcount FROM blobs WHERE sha256 = $1", digest) == 1
        downloaded = await api.download(tutor, again.json()["id"])
        assert downloaded.status_code == 200 and downloaded.content == content
        assert (blob_dir / digest[:2] / digest[2:4] / digest).exists()


async def test_stale_spooled_uploads_are_swept(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    (tmp_path / "tmp").mkdir()
    stale, fresh = tmp_path / "tmp" / "upload-stale", tmp_path / "tmp" / "upload-fresh"
    stale.write_bytes(b"left by a crash")
    fresh.write_bytes(b"in progress")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    assert await store.sweep_spool(3600) == 1
    assert not stale.exists() and fresh.exists()
