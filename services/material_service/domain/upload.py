"""Reading a ``multipart/form-data`` upload as it arrives: python-multipart's streaming parser
is fed the request's chunks; the ``file`` part goes straight to a spooled file on the blob
volume (hashed on the way, written in a thread), never held whole in memory. The other parts
are small text fields (at most :data:`MAX_FIELDS_BYTES` together).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParseError, MultipartParser, parse_options_header

from services.material_service.domain.blobs import BlobStore, Spooled
from shared.errors import PayloadTooLarge, Unprocessable

MAX_FIELDS_BYTES = 32 * 1024
FILE_FIELD = "file"


@dataclass
class Form:
    fields: dict[str, list[str]] = field(default_factory=dict)
    file: Spooled | None = None
    filename: str | None = None

    def one(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[-1] if values else None


def _invalid(message: str, field_name: str = "body") -> Unprocessable:
    return Unprocessable(message, details=[{"field": field_name, "message": message, "type": "invalid"}])


def boundary_of(content_type: str) -> bytes:
    kind, options = parse_options_header(content_type)
    if kind != b"multipart/form-data" or not options.get(b"boundary"):
        raise _invalid("Expected multipart/form-data with a boundary")
    return options[b"boundary"]


async def read_form(chunks: AsyncIterator[bytes], content_type: str, store: BlobStore, max_file_bytes: int) -> Form:
    """The form's fields and its spooled file (the caller places or discards it).

    A file larger than ``max_file_bytes`` → 413 (the spooled part is removed); a broken body → 422.
    """
    form = Form()
    pending: list[bytes] = []  # the file bytes of the chunk being parsed, written after it
    part: dict[str, object] = {}
    header_field = bytearray()
    header_value = bytearray()
    field_bytes = 0
    file_parts = 0

    def on_part_begin() -> None:
        part.clear()
        part["headers"] = {}
        part["data"] = bytearray()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        headers = part["headers"]
        assert isinstance(headers, dict)
        headers[bytes(header_field).lower()] = bytes(header_value)
        header_field.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        headers = part["headers"]
        assert isinstance(headers, dict)
        disposition, options = parse_options_header(headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        part["name"] = name
        part["is_file"] = name == FILE_FIELD
        if part["is_file"]:
            nonlocal file_parts
            file_parts += 1
            if file_parts > 1:
                raise _invalid("Only one file per upload", FILE_FIELD)
            raw = options.get(b"filename")
            form.filename = raw.decode("utf-8", "replace") if raw is not None else None

    def on_part_data(data: bytes, start: int, end: int) -> None:
        nonlocal field_bytes
        if part.get("is_file"):
            pending.append(data[start:end])
            return
        field_bytes += end - start
        if field_bytes > MAX_FIELDS_BYTES:
            raise _invalid("The form's fields are too long")
        buffer = part["data"]
        assert isinstance(buffer, bytearray)
        buffer.extend(data[start:end])

    def on_part_end() -> None:
        if part.get("is_file"):
            return
        name = part.get("name")
        buffer = part["data"]
        assert isinstance(name, str) and isinstance(buffer, bytearray)
        try:
            value = buffer.decode("utf-8")
        except UnicodeDecodeError:
            raise _invalid("Form fields must be UTF-8 text", name) from None
        form.fields.setdefault(name, []).append(value)

    parser = MultipartParser(
        boundary_of(content_type),
        callbacks={
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        async for chunk in chunks:
            try:
                parser.write(chunk)
            except MultipartParseError:
                raise _invalid("The multipart body is malformed") from None
            if file_parts and form.file is None:
                form.file = await store.spool()
            if pending and form.file is not None:
                data = b"".join(pending)
                pending.clear()
                if form.file.size + len(data) > max_file_bytes:
                    raise PayloadTooLarge(f"The file exceeds {max_file_bytes} bytes")
                await store.write(form.file, data)
        try:
            parser.finalize()
        except MultipartParseError:
            raise _invalid("The multipart body is malformed") from None
        if file_parts and form.file is None:
            form.file = await store.spool()
        if form.file is not None:
            await store.finish(form.file)
    except BaseException:
        if form.file is not None:
            await store.discard(form.file)
        raise
    return form
