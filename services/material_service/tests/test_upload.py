"""Uploads: streamed to a content-addressed blob, deduplicated by SHA-256, typed by their bytes,
limited in size; links; who may upload."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest

from services.material_service.domain import sniff
from services.material_service.domain.files import safe_filename
from services.material_service.tests.conftest import MAX_FILE_BYTES, PDF, PNG, Api, assert_error, outbox, unique_bytes


async def test_an_upload_is_stored_by_its_hash_and_announced(api: Api, blob_dir: Path, db: asyncpg.Pool) -> None:
    tutor = api.person("tutor")
    content = unique_bytes()
    response = await api.upload(
        tutor, content, "../../etc/passwd", title="Fractions", subject="Maths", grade="5", tags="fractions, basics"
    )
    assert response.status_code == 201, response.text
    material = response.json()
    digest = hashlib.sha256(content).hexdigest()
    assert material["sha256"] == digest and material["size"] == len(content)
    assert material["content_type"] == sniff.PDF and material["kind"] == "file"
    assert material["filename"] == "passwd.pdf"  # the client's name is a label, never a path
    assert material["tags"] == ["fractions", "basics"] and material["grade"] == 5
    stored = blob_dir / digest[:2] / digest[2:4] / digest
    assert stored.read_bytes() == content
    assert list((blob_dir / "tmp").iterdir()) == []  # the spooled upload became the blob
    [event] = await outbox(db, "material.uploaded", material["id"])
    assert event["sha256"] == digest and event["owner_id"] == tutor.id and event["size"] == len(content)


async def test_the_same_bytes_are_stored_once(api: Api, db: asyncpg.Pool) -> None:
    content = unique_bytes()
    first = await api.uploaded(api.person("tutor"), content, title="One")
    second = await api.uploaded(api.person("tutor"), content, title="Two")
    assert first["id"] != second["id"] and first["sha256"] == second["sha256"]
    assert await db.fetchval("SELECT refcount FROM blobs WHERE sha256 = $1", first["sha256"]) == 2


@pytest.mark.parametrize(
    ("content", "media_type"),
    [
        (PNG, sniff.PNG),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(20), sniff.JPEG),
        (b"GIF89a" + bytes(20), sniff.GIF),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 " + bytes(20), sniff.WEBP),
        (
            b"PK\x03\x04" + bytes(26) + b"[Content_Types].xml" + b"PK\x03\x04" + bytes(26) + b"word/document.xml",
            sniff.DOCX,
        ),
        (b"PK\x03\x04" + bytes(26) + b"xl/workbook.xml", sniff.XLSX),
        (b"PK\x03\x04" + bytes(26) + b"ppt/presentation.xml", sniff.PPTX),
        ("Домашнее задание: решить №5\n".encode(), sniff.TEXT),
        (b"ID3\x04\x00" + bytes(20), sniff.MP3),
        (b"\x00\x00\x00\x18ftypmp42" + bytes(20), sniff.MP4),
    ],
    ids=["png", "jpeg", "gif", "webp", "docx", "xlsx", "pptx", "text", "mp3", "mp4"],
)
async def test_allowed_types_are_known_by_their_bytes(api: Api, content: bytes, media_type: str) -> None:
    material = await api.uploaded(api.person("tutor"), content + bytes(str(id(content)), "ascii"), filename="x.exe")
    assert material["content_type"] == media_type
    assert material["filename"].endswith(sniff.EXTENSIONS[media_type])


@pytest.mark.parametrize(
    "content",
    [
        b"MZ\x90\x00" + bytes(60),  # a Windows program
        b"PK\x03\x04" + bytes(26) + b"evil.sh",  # a zip that is no Office file
        b"\x00\x01\x02binary",
        b"\xc3\x28 not utf-8 text",
        b"",
    ],
    ids=["exe", "zip", "binary", "not-utf8", "empty"],
)
async def test_other_types_are_refused_whatever_the_name(api: Api, content: bytes, blob_dir: Path) -> None:
    response = await api.upload(api.person("tutor"), content, "notes.pdf")
    assert_error(response, 415, "unsupported_media_type")
    assert list((blob_dir / "tmp").iterdir()) == []


async def test_a_file_above_the_limit_is_413_and_leaves_nothing(api: Api, blob_dir: Path) -> None:
    tutor = api.person("tutor")
    response = await api.upload(tutor, PDF + bytes(MAX_FILE_BYTES), "big.pdf")
    assert_error(response, 413, "payload_too_large")
    assert list((blob_dir / "tmp").iterdir()) == []
    exactly = PDF + bytes(MAX_FILE_BYTES - len(PDF) - 16) + b"0123456789abcdef"
    assert (await api.upload(tutor, exactly, "max.pdf")).status_code == 201


async def test_a_declared_body_above_the_limit_is_refused_before_reading(api: Api) -> None:
    response = await api.client.post(
        "/api/v1/materials",
        content=b"x" * 10,
        headers={
            **api.person("tutor").headers,
            "Content-Type": "multipart/form-data; boundary=b",
            "Content-Length": str(10 * MAX_FILE_BYTES),
        },
    )
    assert response.status_code == 413


async def test_metadata_is_validated_naming_the_field(api: Api) -> None:
    tutor = api.person("tutor")
    for fields, field in [({"grade": "12"}, "grade"), ({"title": " "}, "title"), ({"tags": "x" * 51}, "tags")]:
        error = assert_error(await api.upload(tutor, unique_bytes(), **fields), 422)
        assert any(d["field"].startswith(field) for d in error["details"]), error
    missing = await api.client.post("/api/v1/materials", data={"title": "Nothing"}, files={}, headers=tutor.headers)
    assert missing.status_code == 422
    broken = await api.client.post(
        "/api/v1/materials",
        content=b'--b\r\nContent-Disposition: form-data; name="title"\r\n\r\nx',
        headers={**tutor.headers, "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert broken.status_code == 422


async def test_a_link_has_no_file(api: Api, db: asyncpg.Pool) -> None:
    tutor = api.person("tutor")
    response = await api.client.post(
        "/api/v1/materials",
        json={"title": "Khan Academy", "url": "https://www.khanacademy.org/math", "subject": "maths"},
        headers=tutor.headers,
    )
    assert response.status_code == 201, response.text
    link = response.json()
    assert link["kind"] == "link" and link["sha256"] is None and link["url"].startswith("https://www.khanacademy.org")
    as_form = await api.client.post(
        "/api/v1/materials", data={"title": "Video", "url": "https://example.org/v"}, headers=tutor.headers
    )
    assert as_form.status_code == 201, as_form.text
    download = await api.download(tutor, link["id"])
    assert_error(download, 409, "material_is_link")
    [event] = await outbox(db, "material.uploaded", link["id"])
    assert event["url"] == link["url"]


async def test_the_openapi_document_describes_the_upload_body(api: Api) -> None:
    # the body is read from the stream by hand, so FastAPI documented none: found by tests/test_fuzzing.py,
    # whose requests built from the combined document could only be empty uploads (422)
    document = (await api.client.get("/openapi.json")).json()
    content = document["paths"]["/api/v1/materials"]["post"]["requestBody"]["content"]
    upload = content["multipart/form-data"]["schema"]
    link = content["application/json"]["schema"]
    assert upload["properties"]["file"] == {"type": "string", "format": "binary"}
    assert set(upload["required"]) == {"title", "file"} and set(link["required"]) == {"title", "url"}
    assert content["application/x-www-form-urlencoded"]["schema"] == link
    documented_fields = set(upload["properties"]) - {"file"}
    tutor = api.person("tutor")
    every_field = {"title": "T", "subject": "Maths", "grade": "7", "tags": "a,b", "description": "d"}
    assert set(every_field) | {"homework_id", "url"} == documented_fields
    assert (await api.upload(tutor, unique_bytes(), **every_field)).status_code == 201
    no_url = await api.client.post("/api/v1/materials", json={"title": "A link"}, headers=tutor.headers)
    assert_error(no_url, 422)


async def test_who_uploads(api: Api) -> None:
    family = api.family()
    assert (
        await api.upload(family.student, unique_bytes(), homework_id="6a1b9a2e-0000-4000-8000-000000000001")
    ).status_code == 201
    assert_error(await api.upload(family.parent, unique_bytes()), 403)
    anonymous = await api.client.post("/api/v1/materials", files={"file": ("a.pdf", PDF)}, data={"title": "x"})
    assert_error(anonymous, 401)


def test_safe_filenames() -> None:
    assert safe_filename("C:\\Users\\me\\Домашка.pdf", sniff.PDF) == "Домашка.pdf"
    assert safe_filename('a"\x00b.txt', sniff.TEXT) == "a__b.txt"
    assert safe_filename(None, sniff.PNG) == "material.png"
    assert safe_filename("photo.JPEG", sniff.JPEG) == "photo.JPEG"
    assert safe_filename("x" * 300 + ".pdf", sniff.PDF).endswith(".pdf")
    assert len(safe_filename("x" * 300 + ".pdf", sniff.PDF)) == 200


async def test_a_retried_upload_with_the_same_key_makes_one_material(api: Api, db: asyncpg.Pool) -> None:
    tutor = api.person("tutor")
    content = unique_bytes()
    key = {"Idempotency-Key": f"upload-{uuid.uuid4()}"}

    async def upload(body: bytes, title: str = "Retried") -> httpx.Response:
        return await api.client.post(
            "/api/v1/materials",
            data={"title": title},
            files={"file": ("a.pdf", body, "application/pdf")},
            headers={**tutor.headers, **key},
        )

    first, again = await upload(content), await upload(content)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert await db.fetchval("SELECT refcount FROM blobs WHERE sha256 = $1", first.json()["sha256"]) == 1
    assert len(await outbox(db, "material.uploaded", first.json()["id"])) == 1
    assert_error(await upload(unique_bytes()), 422, "idempotency_key_reused")
    assert_error(await upload(content, title="Another title"), 422, "idempotency_key_reused")
    other_tutor = await api.client.post(
        "/api/v1/materials",
        data={"title": "Retried"},
        files={"file": ("a.pdf", content, "application/pdf")},
        headers={**api.person("tutor").headers, **key},
    )
    assert other_tutor.status_code == 201 and other_tutor.json()["id"] != first.json()["id"]  # keys are per caller


async def test_one_file_per_upload_and_no_links_from_students(api: Api, blob_dir: Path) -> None:
    tutor = api.person("tutor")
    two_files = (
        b'--b\r\nContent-Disposition: form-data; name="title"\r\n\r\nTwo\r\n'
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n\r\n' + PDF + b"\r\n"
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="b.pdf"\r\n\r\n' + PDF + b"\r\n--b--\r\n"
    )
    response = await api.client.post(
        "/api/v1/materials",
        content=two_files,
        headers={**tutor.headers, "Content-Type": "multipart/form-data; boundary=b"},
    )
    error = assert_error(response, 422)
    assert error["details"][0]["field"] == "file"
    assert list((blob_dir / "tmp").iterdir()) == []
    link = await api.client.post(
        "/api/v1/materials",
        json={"title": "A link", "url": "https://example.org"},
        headers=api.person("student").headers,
    )
    assert_error(link, 403)
