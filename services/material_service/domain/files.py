"""File names and byte ranges: plain functions, no HTTP.

The client's file name is metadata only, never a path: blobs are stored by hash.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

from services.material_service.domain.sniff import EXTENSIONS, JPEG

MAX_FILENAME = 200
_UNSAFE = re.compile(r'[\x00-\x1f\x7f"\\/:*?<>|]')
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def safe_filename(client_name: str | None, content_type: str) -> str:
    """A display name: the last path segment of the client's name without control or path
    characters, ending in the extension of what the bytes are."""
    name = (client_name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = unicodedata.normalize("NFC", _UNSAFE.sub("_", name)).strip(" .") or "material"
    extension = EXTENSIONS[content_type]
    known = (extension, ".jpeg") if content_type == JPEG else (extension,)
    if not name.lower().endswith(known):
        name += extension
    if len(name) > MAX_FILENAME:
        stem, dot, ext = name.rpartition(".")
        name = stem[: MAX_FILENAME - len(ext) - 1] + dot + ext
    return name


def content_disposition(filename: str, *, inline: bool = False) -> str:
    """RFC 6266: an ASCII fallback plus the exact name as ``filename*`` (RFC 5987)."""
    fallback = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    fallback = re.sub(r"[^A-Za-z0-9._ ()-]", "_", fallback).strip()
    stem, dot, extension = fallback.rpartition(".")
    if not (stem if dot else fallback).strip("._ "):  # nothing readable left (a Cyrillic name, say)
        fallback = "material" + (dot + extension if dot else "")
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


class Unsatisfiable(Exception):
    pass


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one range ``(first, last)`` (inclusive) a ``Range`` header asks for; None: the whole
    file (no header, another unit, several ranges or a malformed one are ignored, RFC 9110
    §14.2); :class:`Unsatisfiable` when it starts beyond the end."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first_text, last_text = match.groups()
    if not first_text:
        if not last_text:
            return None
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            raise Unsatisfiable
        return max(size - suffix, 0), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        return None
    if first >= size:
        raise Unsatisfiable
    return first, min(last, size - 1)
