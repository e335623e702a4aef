"""What a file is, from its first bytes (never from its name or the client's Content-Type).

``sniff(head)`` returns the media type of an allowed kind, or None. ``head`` is the start of
the file (:data:`SNIFF_BYTES` is enough for every rule here). Office files are ZIP archives;
they are told apart by the name of a member near the start (``word/``, ``xl/``, ``ppt/``),
which Office and LibreOffice write in the first local headers; a ZIP that is none of them is
refused. Plain text must be UTF-8 (a multi-byte character cut at the end of ``head`` is
allowed) without NUL or other control bytes than tab, newline, carriage return and form feed.
"""

from __future__ import annotations

SNIFF_BYTES = 8192

PDF = "application/pdf"
PNG = "image/png"
JPEG = "image/jpeg"
GIF = "image/gif"
WEBP = "image/webp"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
TEXT = "text/plain; charset=utf-8"
MP3 = "audio/mpeg"
MP4 = "video/mp4"

ALLOWED = (PDF, PNG, JPEG, GIF, WEBP, DOCX, XLSX, PPTX, TEXT, MP3, MP4)
EXTENSIONS = {
    PDF: ".pdf",
    PNG: ".png",
    JPEG: ".jpg",
    GIF: ".gif",
    WEBP: ".webp",
    DOCX: ".docx",
    XLSX: ".xlsx",
    PPTX: ".pptx",
    TEXT: ".txt",
    MP3: ".mp3",
    MP4: ".mp4",
}

_OFFICE = ((b"word/", DOCX), (b"xl/", XLSX), (b"ppt/", PPTX))
_TEXT_CONTROLS = set(range(0x20)) - {0x09, 0x0A, 0x0C, 0x0D}


def sniff(head: bytes) -> str | None:
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head.startswith(b"PK\x03\x04"):
        return _office(head)
    if head.startswith(b"ID3") or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06):
        return MP3
    if head[4:8] == b"ftyp":
        return MP4
    if head and _is_utf8_text(head):
        return TEXT
    return None


def _office(head: bytes) -> str | None:
    first: tuple[int, str] | None = None
    for marker, media_type in _OFFICE:
        at = head.find(marker)
        if at >= 0 and (first is None or at < first[0]):
            first = (at, media_type)
    return first[1] if first else None


def _is_utf8_text(head: bytes) -> bool:
    if any(byte in _TEXT_CONTROLS for byte in head):
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a character cut by the end of the sample is fine; a bad byte anywhere else is not
        return exc.start >= len(head) - 3 and exc.reason == "unexpected end of data"
    return True
