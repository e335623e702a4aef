"""/api/v1/materials: upload (multipart, streamed to disk), links, list and search, read,
share, download (streamed, with Range) and delete."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.material_service.api.schemas import MaterialFields, MaterialOut, ShareIn
from services.material_service.domain import materials
from services.material_service.domain.access import MaterialAccess, can_view, is_owner
from services.material_service.domain.blobs import BlobStore
from services.material_service.domain.files import Unsatisfiable, byte_range, content_disposition, safe_filename
from services.material_service.domain.sniff import ALLOWED, sniff
from services.material_service.domain.upload import FILE_FIELD, Form, read_form
from services.material_service.models import Material
from services.material_service.settings import MaterialServiceSettings
from shared.auth.deps import Caller, CurrentUser
from shared.db import Database, SessionDep
from shared.errors import ApiError, Conflict, Forbidden, NotFound, Unprocessable
from shared.idempotency import IDEMPOTENCY_HEADER
from shared.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode_cursor, encode_cursor

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/materials", tags=["materials"])

UPLOADERS = ("tutor", "student", "admin")
MAX_KEY_LENGTH = 255


class UnsupportedMediaType(ApiError):
    status_code, code = 415, "unsupported_media_type"


class RangeNotSatisfiable(ApiError):
    status_code, code = 416, "range_not_satisfiable"


def _access(request: Request, session: AsyncSession, caller: Caller) -> MaterialAccess:
    return MaterialAccess(request.app.state.access, session, caller)


def _out(material: Material, shared: list[uuid.UUID] | None = None) -> MaterialOut:
    return MaterialOut(
        id=material.id,
        owner_id=material.owner_id,
        owner_role=material.owner_role,
        kind="file" if material.sha256 else "link",
        title=material.title,
        subject=material.subject,
        grade=material.grade,
        tags=list(material.tags or []),
        description=material.description,
        url=material.url,
        sha256=material.sha256,
        size=material.size,
        content_type=material.content_type,
        filename=material.filename,
        homework_id=material.homework_id,
        share_all=material.share_all,
        created_at=material.created_at,
        shared_with=shared,
    )


def _form_fields(form: Form) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, values in form.fields.items():
        if name == "tags":
            # repeated fields, or one comma-separated field
            fields["tags"] = [tag for value in values for tag in value.split(",") if tag.strip()]
        else:
            value = values[-1]
            fields[name] = value if value.strip() or name == "description" else None
    return fields


def _validated(raw: dict[str, Any]) -> MaterialFields:
    try:
        return MaterialFields.model_validate(raw)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None


async def _visible(access: MaterialAccess, material_id: uuid.UUID) -> Material:
    material = await access.session.get(Material, material_id)
    if material is None or not await can_view(access, material):
        raise NotFound("Material not found")
    return material


def _upload_body() -> dict[str, Any]:
    """The upload's request body for the OpenAPI document (it is read from the stream by hand, so FastAPI
    cannot see it): a file as multipart, or a link (``url``) as JSON or a plain form."""
    fields = MaterialFields.model_json_schema()
    file = {"type": "string", "format": "binary"}
    upload = {**fields, "properties": {**fields["properties"], FILE_FIELD: file}, "required": ["title", FILE_FIELD]}
    link = {**fields, "required": ["title", "url"]}
    content = {
        "multipart/form-data": {"schema": upload},
        "application/json": {"schema": link},
        "application/x-www-form-urlencoded": {"schema": link},
    }
    return {"requestBody": {"required": True, "content": content}}


@router.post("", status_code=status.HTTP_201_CREATED, response_model=MaterialOut, openapi_extra=_upload_body())
async def upload(request: Request, caller: CurrentUser) -> MaterialOut:
    """A file (multipart ``file`` plus the metadata fields ``title``, ``subject``, ``grade``,
    ``tags``, ``description``, ``homework_id``) or a link (``url`` instead of a file; also as
    JSON). A retry with the same ``Idempotency-Key`` answers the first material (another request
    with that key → 422). Tutors upload materials; a student uploads their own (homework) files, which only
    they and their tutors see. The type is taken from the bytes: PDF, PNG, JPEG, GIF, WEBP,
    DOCX/XLSX/PPTX, UTF-8 text, MP3, MP4 (else 415); above the size limit → 413."""
    if caller.role not in UPLOADERS:
        raise Forbidden("Only tutors and students upload materials")
    settings: MaterialServiceSettings = request.app.state.settings
    store: BlobStore = request.app.state.blobs
    content_type = request.headers.get("content-type", "")
    form: Form | None = None
    try:
        kind = content_type.split(";")[0].strip().lower()
        if kind == "application/json":
            try:
                raw = json.loads(await request.body())
            except ValueError:
                raise Unprocessable("The body is not JSON") from None
            fields = _validated(raw if isinstance(raw, dict) else {})
        elif kind == "application/x-www-form-urlencoded":  # a link as a plain form
            body = (await request.body()).decode("utf-8", "replace")
            fields = _validated(_form_fields(Form(fields=parse_qs(body, keep_blank_values=True))))
        else:
            form = await read_form(request.stream(), content_type, store, settings.max_file_bytes)
            fields = _validated(_form_fields(form))
        new_file = _new_file(form, fields, caller)
        values = fields.model_dump(mode="json", exclude={"url"})
        values["url"] = str(fields.url) if fields.url else None
        key = _idempotency_key(request)
        if key is not None:
            fingerprint = {**values, "sha256": new_file.spooled.sha256 if new_file else None}
            request_hash = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()
            values.update(idempotency_key=key, request_hash=request_hash)
        values["homework_id"] = fields.homework_id
        database: Database = request.app.state.db
        async with database.transaction() as session:
            earlier = key and await materials.earlier_upload(session, uuid.UUID(caller.id), key, request_hash)
            material = earlier or await materials.create(session, store, caller, values, new_file)
        return _out(material, [] if material.owner_role != "student" else None)
    finally:
        if form is not None and form.file is not None:
            await store.discard(form.file)  # nothing left when it was placed


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is not None and not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise Unprocessable(
            f"{IDEMPOTENCY_HEADER} must be 1-{MAX_KEY_LENGTH} characters",
            details=[{"field": IDEMPOTENCY_HEADER, "message": "1-255 characters", "type": "value_error"}],
        )
    return key


def _new_file(form: Form | None, fields: MaterialFields, caller: Caller) -> materials.NewFile | None:
    spooled = form.file if form is not None else None
    if spooled is not None and fields.url is not None:
        raise Unprocessable(
            "A material is a file or a link, not both",
            details=[{"field": "url", "message": "not with a file", "type": "invalid"}],
        )
    if spooled is None:
        if fields.url is None:
            raise Unprocessable(
                "Attach a file or give a url",
                details=[{"field": "file", "message": "a file or a url is required", "type": "missing"}],
            )
        if caller.role == "student":
            raise Forbidden("Students upload files, not links")
        return None
    media_type = sniff(spooled.head)
    if media_type is None:
        raise UnsupportedMediaType("This kind of file is not accepted", details={"allowed": list(ALLOWED)})
    return materials.NewFile(spooled, media_type, safe_filename(form.filename if form else None, media_type))


@router.get("")
async def list_materials(
    caller: CurrentUser,
    session: SessionDep,
    q: Annotated[str | None, Query(max_length=200, description="words in the title")] = None,
    subject: Annotated[str | None, Query(max_length=100)] = None,
    grade: Annotated[int | None, Query(ge=1, le=11)] = None,
    tag: Annotated[str | None, Query(max_length=50)] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[MaterialOut]:
    """The materials the caller sees, newest first, filtered by title, subject, grade and tag."""
    rows = await materials.search(
        session, caller, q=q, subject=subject, grade=grade, tag=tag, limit=limit + 1, after=decode_cursor(cursor)
    )
    page, more = rows[:limit], len(rows) > limit
    return Page[MaterialOut](
        items=[_out(m) for m in page],
        next_cursor=encode_cursor(page[-1].created_at, page[-1].id) if more else None,
    )


@router.get("/{material_id}")
async def read_material(
    material_id: uuid.UUID, request: Request, caller: CurrentUser, session: SessionDep
) -> MaterialOut:
    material = await _visible(_access(request, session, caller), material_id)
    shared = await materials.shared_with(session, material.id) if is_owner(caller, material) else None
    return _out(material, shared)


@router.post("/{material_id}/share")
async def share_material(
    material_id: uuid.UUID, body: ShareIn, request: Request, caller: CurrentUser, session: SessionDep
) -> MaterialOut:
    """Share the owner's material with some of their students, or with all of them (present and
    future); sharing again is harmless. A student not linked to the tutor → 404."""
    access = _access(request, session, caller)
    material = await _visible(access, material_id)
    if not is_owner(caller, material) or material.owner_role == "student":
        raise Forbidden("Only the tutor who owns a material shares it")
    for student_id in dict.fromkeys(body.student_ids):
        await access.ensure(student_id)
    await materials.share(session, material, body.student_ids, all_students=body.all_students)
    return _out(material, await materials.shared_with(session, material.id))


@router.get("/{material_id}/download", response_class=StreamingResponse)
async def download(
    material_id: uuid.UUID,
    request: Request,
    caller: CurrentUser,
    session: SessionDep,
    range_header: Annotated[str | None, Header(alias="range")] = None,
) -> Response:
    """The file's bytes, streamed; ``Range: bytes=first-last`` (one range) answers 206, a range
    beyond the end 416. A student's first download records ``material.viewed``."""
    material = await _visible(_access(request, session, caller), material_id)
    if material.sha256 is None or material.size is None:
        raise Conflict(
            "This material is a link: it has no file", code="material_is_link", details={"url": material.url}
        )
    store: BlobStore = request.app.state.blobs
    if not await store.exists(material.sha256):
        log.error("blob %s of material %s is missing", material.sha256, material.id)
        raise NotFound("Material not found")
    size = material.size
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": f'"{material.sha256}"',
        "Content-Disposition": content_disposition(material.filename or "material"),
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-cache",
    }
    try:
        wanted = byte_range(range_header, size)
    except Unsatisfiable:
        raise RangeNotSatisfiable(
            "The range is beyond the end of the file", headers={"Content-Range": f"bytes */{size}"}
        ) from None
    await materials.record_view(session, material, caller)
    if wanted is None:
        headers["Content-Length"] = str(size)
        return StreamingResponse(store.read(material.sha256), media_type=material.content_type, headers=headers)
    first, last = wanted
    headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    headers["Content-Length"] = str(last - first + 1)
    return StreamingResponse(
        store.read(material.sha256, first, last - first + 1),
        status_code=status.HTTP_206_PARTIAL_CONTENT,
        media_type=material.content_type,
        headers=headers,
    )


@router.delete("/{material_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_material(material_id: uuid.UUID, request: Request, caller: CurrentUser) -> Response:
    """The owner (or an admin) deletes a material; its file goes once no material uses those bytes."""
    database: Database = request.app.state.db
    async with database.transaction() as session:
        material = await _visible(_access(request, session, caller), material_id)
        if not (is_owner(caller, material) or caller.is_admin):
            raise Forbidden("Only the owner deletes a material")
        unreferenced = await materials.remove(session, material)
    if unreferenced is not None:  # after the commit: a failed delete never loses a file
        async with database.transaction() as session:
            await materials.collect_blob(session, request.app.state.blobs, unreferenced)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
