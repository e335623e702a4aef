"""Injection and abuse through the gateway of the test fleet (issue 9, "Security"):

- SQL, HTML and template text in every free-text field is stored and answered verbatim, as JSON,
  and the services keep working;
- a body above the route's limit is refused with 413 in the one error shape, also when only its
  declared length says so (before it is read) and when it is streamed without a length;
- a client's file name is a display name only: no path part is kept, the download's
  Content-Disposition is safe, and nothing is written outside the blob directory;
- two gateway processes sharing the fleet's Redis hold one limit: 200 concurrent requests of one
  user against 100/min → exactly 100 pass.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from shared.runner.layout import REPO_ROOT, VAR_DIR
from shared.testing.accounts import Account, invite, register
from shared.testing.events import eventually
from shared.testing.fleet import TestFleet

PAYLOADS = {
    "sql_drop": "'; DROP TABLE lessons; --",
    "sql_or": '" OR 1=1 --',
    "sql_escapes": "\\'; SELECT pg_sleep(5); -- %s %(x)s $1 \\x00",
    "script": "<script>alert(1)</script>",
    "img": "<img src=x onerror=alert(1)>",
    "template": "{{7*7}} ${7*7} <%= 7*7 %>",
    "unicode": "Ünïcødé — 日本語 😀 «ёлка» Ω∑ 𝔘 ﷽",
}

JSON = "application/json"
GATEWAY_LIMIT_BYTES = 1024 * 1024  # MAX_REQUEST_BODY_BYTES' default: every route but materials
BOUND_SECONDS = 20  # a bound on every wait, never an assertion on time


def gateway_client(fleet: TestFleet) -> httpx.AsyncClient:
    """A client of the fleet's gateway as its own address (the gateway trusts loopback's
    X-Forwarded-For): its anonymous sign-ups count apart from every other test's."""
    address = f"198.18.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    return fleet.client("api-gateway", headers={"X-Forwarded-For": address}, timeout=BOUND_SECONDS)


def answer(response: httpx.Response, status: int = 200) -> Any:
    """The JSON body of an answer with ``status``, checked to be served as JSON, never as HTML."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0].strip() == JSON, response.headers
    return response.json()


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The one error shape (DESIGN.md §3)."""
    error = answer(response, status)["error"]
    assert set(error) == {"code", "message", "details", "correlation_id"}
    assert error["code"] == code, error
    return error


async def linked_student(gateway: httpx.AsyncClient, tutor: Account, **fields: Any) -> Account:
    return await register(gateway, "student", await invite(gateway, tutor, "student"), **fields)


# --- SQL and HTML in every text field ----------------------------------------------------------


@pytest.mark.parametrize("payload", list(PAYLOADS.values()), ids=list(PAYLOADS))
async def test_injected_text_is_stored_and_answered_verbatim_as_json(fleet: TestFleet, payload: str) -> None:
    async with gateway_client(fleet) as gateway:
        tutor = await register(gateway, "tutor", full_name=payload)
        student = await linked_student(gateway, tutor, full_name=payload)
        assert answer(await gateway.get("/api/v1/users/me", headers=tutor.headers))["full_name"] == payload
        renamed = "2 " + payload
        patched = await gateway.patch("/api/v1/users/me", json={"full_name": renamed}, headers=student.headers)
        assert answer(patched)["full_name"] == renamed
        assert answer(await gateway.get("/api/v1/users/me", headers=student.headers))["full_name"] == renamed

        # lesson-service: created with subject/topic/place, completed with notes, topic, comment and skills
        starts_at = (datetime.now(UTC) - timedelta(hours=3)).isoformat()
        created = await gateway.post(
            "/api/v1/lessons",
            json={"student_id": student.id, "starts_at": starts_at, "subject": payload, "topic": payload},
            headers=tutor.headers,
        )
        lesson = answer(created, 201)
        assert (lesson["subject"], lesson["topic"]) == (payload, payload)
        completed = await gateway.post(
            f"/api/v1/lessons/{lesson['id']}/complete",
            json={
                "grade": 5,
                "notes": payload,
                "topic": payload,
                "mastery": "learned",
                "mastery_comment": payload,
                "skills": [payload],
            },
            headers=tutor.headers,
        )
        answer(completed)
        lesson = answer(await gateway.get(f"/api/v1/lessons/{lesson['id']}", headers=student.headers))
        assert [lesson[f] for f in ("subject", "topic", "notes", "mastery_comment")] == [payload] * 4
        assert lesson["skills"] == [payload] and lesson["status"] == "completed"

        # homework-service: title and description, the student's text, the tutor's comment
        due_at = (datetime.now(UTC) + timedelta(days=3)).isoformat()
        assigned = await gateway.post(
            "/api/v1/homework",
            json={"student_id": student.id, "title": payload, "description": payload, "due_at": due_at},
            headers=tutor.headers,
        )
        homework_id = answer(assigned, 201)["id"]
        submitted = await gateway.post(
            f"/api/v1/homework/{homework_id}/submissions", json={"text": payload}, headers=student.headers
        )
        assert answer(submitted, 201)["text"] == payload
        graded = await gateway.post(
            f"/api/v1/homework/{homework_id}/grade", json={"grade": 4, "comment": payload}, headers=tutor.headers
        )
        answer(graded)
        homework = answer(await gateway.get(f"/api/v1/homework/{homework_id}", headers=student.headers))
        assert (homework["title"], homework["description"], homework["comment"]) == (payload, payload, payload)
        submissions = answer(await gateway.get(f"/api/v1/homework/{homework_id}/submissions", headers=tutor.headers))
        assert [s["text"] for s in submissions["items"]] == [payload]

        # material-service: multipart metadata (tags are lower-cased by design)
        uploaded = await gateway.post(
            "/api/v1/materials",
            data={"title": payload, "subject": payload, "tags": payload, "description": payload},
            files={"file": ("notes.txt", b"plain text\n", "text/plain")},
            headers=tutor.headers,
        )
        material_id = answer(uploaded, 201)["id"]
        material = answer(await gateway.get(f"/api/v1/materials/{material_id}", headers=tutor.headers))
        assert [material[f] for f in ("title", "subject", "description")] == [payload] * 3
        assert material["tags"] == [payload.lower()]

        # payment-service: the top-up's note, read back from the statement
        topped_up = await gateway.post(
            "/api/v1/payments/top-ups",
            json={"student_id": student.id, "amount": 100_000, "currency": "RUB", "method": "cash", "note": payload},
            headers=tutor.headers,
        )
        entry_id = answer(topped_up, 201)["id"]
        statement = answer(await gateway.get(f"/api/v1/payments/statements/{student.id}", headers=tutor.headers))
        assert [e["reason"] for e in statement["items"] if e["id"] == entry_id] == [payload]

        # student-service: the display name (once the profile exists: it is made on student.linked)
        profile_url = f"/api/v1/students/{student.id}/profile"

        async def profile_exists() -> bool:
            return (await gateway.get(profile_url, headers=student.headers)).status_code == 200

        await eventually(profile_exists, timeout=BOUND_SECONDS, what="the student's profile")
        named = await gateway.patch(
            "/api/v1/students/me/profile", json={"display_name": payload}, headers=student.headers
        )
        assert answer(named)["display_name"] == payload
        assert answer(await gateway.get(profile_url, headers=tutor.headers))["display_name"] == payload

        # and everything still answers: the tables are there and the rows are the tutor's
        lessons = answer(await gateway.get("/api/v1/lessons", headers=tutor.headers))
        assert [item["id"] for item in lessons["items"]] == [lesson["id"]]
        listed = answer(await gateway.get("/api/v1/homework", headers=tutor.headers))
        assert [item["id"] for item in listed["items"]] == [homework_id]
        assert (await register(gateway, "after the payload")).role == "tutor"


# --- oversized bodies ---------------------------------------------------------------------------


async def _raw_request(url: str, head: bytes) -> bytes:
    """Send only ``head`` (request line and headers, no body) and read the answer until the
    server closes or the bound passes: an answer proves the body was not waited for."""
    parsed = httpx.URL(url)
    reader, writer = await asyncio.open_connection(parsed.host, parsed.port)
    try:
        writer.write(head)
        await writer.drain()
        received = b""
        async with asyncio.timeout(BOUND_SECONDS):
            while b"\r\n\r\n" not in received or not _complete(received):
                chunk = await reader.read(65536)
                if not chunk:
                    break
                received += chunk
        return received
    finally:
        writer.close()


def _complete(received: bytes) -> bool:
    head, _, body = received.partition(b"\r\n\r\n")
    match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    return match is not None and len(body) >= int(match.group(1))


async def test_a_json_body_above_the_limit_is_refused_with_413(fleet: TestFleet) -> None:
    async with gateway_client(fleet) as gateway:
        tutor = await register(gateway, "tutor big body")
        student = await linked_student(gateway, tutor)
        just_above = {"student_id": student.id, "starts_at": datetime.now(UTC).isoformat(), "subject": "x"}
        padding = GATEWAY_LIMIT_BYTES + 1 - len(httpx.Request("POST", "/", json={**just_above, "topic": ""}).content)
        just_above["topic"] = "y" * padding
        body = httpx.Request("POST", "/", json=just_above).content
        assert len(body) == GATEWAY_LIMIT_BYTES + 1

        # declared: refused on Content-Length, through the gateway and at the service itself
        error = assert_error(
            await gateway.post("/api/v1/lessons", content=body, headers={**tutor.headers, "Content-Type": JSON}),
            413,
            "payload_too_large",
        )
        assert error["details"] == {"limit": GATEWAY_LIMIT_BYTES}
        async with fleet.client("lesson-service") as lessons:
            direct = await lessons.post(
                "/api/v1/lessons", content=body, headers={**tutor.headers, "Content-Type": JSON}
            )
        assert_error(direct, 413, "payload_too_large")

        # streamed without a length: counted while it arrives
        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(body), 64 * 1024):
                yield body[start : start + 64 * 1024]

        streamed = await gateway.post(
            "/api/v1/lessons", content=chunks(), headers={**tutor.headers, "Content-Type": JSON}
        )
        assert_error(streamed, 413, "payload_too_large")

        # one byte less is not refused for its size (the lesson is valid and made)
        at_limit = {**just_above, "topic": "y" * (padding - 1)}
        assert len(httpx.Request("POST", "/", json=at_limit).content) == GATEWAY_LIMIT_BYTES
        accepted = await gateway.post("/api/v1/lessons", json=at_limit, headers=tutor.headers)
        assert accepted.status_code == 422, accepted.text  # topic is bounded at 500 characters: read, not refused
        assert answer(accepted, 422)["error"]["code"] != "payload_too_large"

        # a gigabyte declared and never sent: answered 413 without waiting for the body
        for url in (fleet.url("api-gateway"), fleet.url("lesson-service")):
            head = (
                f"POST /api/v1/lessons HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {tutor.token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {10**9}\r\n\r\n"
            ).encode()
            raw = await _raw_request(url, head)
            status_line, _, rest = raw.partition(b"\r\n")
            assert status_line.split()[1] == b"413", raw[:500]
            assert b'"payload_too_large"' in rest, raw[:500]


# --- path traversal in file names -------------------------------------------------------------

TEXT = b"just some notes\n"
HOSTILE_NAMES = {
    "unix_traversal": ("../../../../etc/passwd", "passwd.txt"),
    "windows_traversal": ("..\\..\\windows\\win.ini", "win.ini.txt"),
    "dotdot_in_middle": ("a/b/../../c.txt", "c.txt"),
    "nul": ("evil\x00.txt", "evil_.txt"),
    # raw quotes end the quoted name: the part then names a second file, and the last one counts
    "quote_and_second_name": ('x"; filename="../passwd', "passwd.txt"),
    "html": ("<img src=x onerror=alert(1)>.html", "_img src=x onerror=alert(1)_.html.txt"),
    "newline": ("../a\nb.txt", "a_b.txt"),  # a bare LF stays inside the header line
    "very_long": ("a" * 3000 + ".txt", "a" * 196 + ".txt"),
}


def multipart(filename: bytes, content: bytes, title: str) -> tuple[bytes, str]:
    """A multipart body written by hand, so the file name's bytes arrive exactly as given
    (httpx would percent-encode control characters)."""
    boundary = uuid.uuid4().hex
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\n{title}\r\n'.encode()
        + f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="'.encode()
        + filename
        + b'"\r\nContent-Type: text/plain\r\n\r\n'
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def _files_under(root: Path) -> set[Path]:
    return {path for path in root.rglob("*") if path.is_file()} if root.exists() else set()


@contextmanager
def nothing_new_outside(blob_dir: Path) -> Iterator[None]:
    """Files created under the repository's var/ during the block are all inside ``blob_dir``."""
    before = _files_under(VAR_DIR)
    yield
    created = _files_under(VAR_DIR) - before
    outside = {path for path in created if not path.is_relative_to(blob_dir)}
    # the fleet's own logs grow and rotate: only log files may appear elsewhere
    assert {path for path in outside if path.suffix != ".log" and ".log." not in path.name} == set()


def blob_dir_of(fleet: TestFleet) -> Path:
    return Path(fleet.env["material-service"]["BLOB_DIR"]).resolve()


def _disposition_name(header: str) -> tuple[str, str]:
    """(the ASCII fallback, the exact name) of an RFC 6266 Content-Disposition."""
    fallback = re.search(r'filename="([^"]*)"', header)
    exact = re.search(r"filename\*=UTF-8''(\S+)", header)
    assert fallback is not None and exact is not None, header
    return fallback.group(1), unquote(exact.group(1))


@pytest.mark.parametrize(("client_name", "stored"), list(HOSTILE_NAMES.values()), ids=list(HOSTILE_NAMES))
async def test_a_hostile_file_name_is_a_display_name_only(fleet: TestFleet, client_name: str, stored: str) -> None:
    blob_dir = blob_dir_of(fleet)
    content = TEXT + uuid.uuid4().hex.encode()  # new bytes: a new blob
    async with gateway_client(fleet) as gateway:
        tutor = await register(gateway, "tutor files")
        body, content_type = multipart(client_name.encode(), content, "hostile name")
        with nothing_new_outside(blob_dir):
            uploaded = await gateway.post(
                "/api/v1/materials", content=body, headers={**tutor.headers, "Content-Type": content_type}
            )
            material = answer(uploaded, 201)
        assert material["filename"] == stored
        assert "/" not in stored and "\\" not in stored and not any(ord(c) < 32 for c in stored)
        sha = material["sha256"]
        assert (blob_dir / sha[:2] / sha[2:4] / sha).read_bytes() == content

        download = await gateway.get(f"/api/v1/materials/{material['id']}/download", headers=tutor.headers)
        assert download.status_code == 200 and download.content == content
        assert download.headers["content-type"].startswith("text/plain")
        assert download.headers["x-content-type-options"] == "nosniff"
        disposition = download.headers["content-disposition"]
        assert disposition.startswith("attachment;") and disposition.isascii()
        assert not re.search(r"[\x00-\x1f]", disposition)
        fallback, exact = _disposition_name(disposition)
        assert exact == stored
        assert re.fullmatch(r"[A-Za-z0-9._ ()-]+", fallback) and ".." not in fallback.replace("...", "")


REFUSED_NAMES = {
    "crlf_header_injection": b"a\r\nX-Injected: yes\r\nb.txt",
    "bare_cr": b"a\rb.txt",
    "beyond_the_parsers_header_size": b"a" * 5000 + b".txt",
}


@pytest.mark.parametrize("raw_name", list(REFUSED_NAMES.values()), ids=list(REFUSED_NAMES))
async def test_a_file_name_that_breaks_the_part_header_is_refused_with_422(fleet: TestFleet, raw_name: bytes) -> None:
    """A raw CR in the part's file name, or a name beyond the multipart parser's header size, makes
    the body malformed: 422 in the error shape, nothing stored, no header of the client's added."""
    blob_dir = blob_dir_of(fleet)
    async with gateway_client(fleet) as gateway:
        tutor = await register(gateway, "tutor newline")
        body, content_type = multipart(raw_name, TEXT + uuid.uuid4().hex.encode(), "refused")
        with nothing_new_outside(blob_dir):
            refused = await gateway.post(
                "/api/v1/materials", content=body, headers={**tutor.headers, "Content-Type": content_type}
            )
        assert_error(refused, 422, "validation_error")
        assert "x-injected" not in refused.headers
        mine = answer(await gateway.get("/api/v1/materials", headers=tutor.headers))
        assert mine["items"] == []


async def test_an_html_file_is_served_as_text_not_as_a_page(fleet: TestFleet) -> None:
    page = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>\n"
    async with gateway_client(fleet) as gateway:
        tutor = await register(gateway, "tutor html")
        uploaded = await gateway.post(
            "/api/v1/materials",
            data={"title": "page"},
            files={"file": ("page.html", page, "text/html")},
            headers=tutor.headers,
        )
        material = answer(uploaded, 201)
        assert material["content_type"].startswith("text/plain") and material["filename"] == "page.html.txt"
        download = await gateway.get(f"/api/v1/materials/{material['id']}/download", headers=tutor.headers)
    assert download.content == page
    assert download.headers["content-type"].startswith("text/plain")
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-disposition"].startswith("attachment;")


# --- two gateway processes hold one rate limit --------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def second_gateway(fleet: TestFleet) -> AsyncIterator[str]:
    """Another gateway process with exactly the fleet gateway's settings (its Redis among them) on a
    free port; stopped with SIGTERM (SIGKILL if it does not go within the bound)."""
    port = _free_port()
    env = {**fleet.env["api-gateway"], "PORT": str(port)}
    command = [str(REPO_ROOT / ".venv" / "bin" / "uvicorn"), "services.api_gateway.main:app"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop", "--http", "httptools"]
    process = await asyncio.create_subprocess_exec(
        *command, cwd=REPO_ROOT, env={"PATH": os.environ.get("PATH", ""), **env}, stdout=asyncio.subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=2) as probe:

            async def ready() -> bool:
                assert process.returncode is None, f"the second gateway exited with {process.returncode}"
                try:
                    return (await probe.get("/ready")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(ready, timeout=BOUND_SECONDS, what="the second gateway ready")
        yield url
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), BOUND_SECONDS)
        except TimeoutError:
            process.kill()
            await asyncio.wait_for(process.wait(), BOUND_SECONDS)


async def test_two_gateway_processes_admit_exactly_the_limit_between_them(fleet: TestFleet) -> None:
    async with gateway_client(fleet) as first:
        user = await register(first, "tutor limited")
        async with second_gateway(fleet) as second_url, httpx.AsyncClient(base_url=second_url, timeout=30) as second:

            async def me(client: httpx.AsyncClient) -> httpx.Response:
                return await client.get("/api/v1/users/me", headers=user.headers)

            responses = await asyncio.gather(*(me(client) for _ in range(100) for client in (first, second)))
    limit = int(responses[0].headers["x-ratelimit-limit"])
    assert limit == 100  # the fleet's gateway settings: RATE_LIMIT_REQUESTS per user per minute
    statuses = Counter(response.status_code for response in responses)
    assert statuses == {200: 100, 429: 100}
    for response in responses:
        if response.status_code == 429:
            assert_error(response, 429, "rate_limited")
            assert int(response.headers["retry-after"]) >= 1
            assert response.headers["x-ratelimit-remaining"] == "0"
        else:
            assert response.json()["id"] == user.id


# --- a NUL character, which PostgreSQL cannot store ---------------------------------------------

NUL = "a\x00b"


async def test_a_nul_character_in_any_text_field_is_a_422_not_a_500(fleet: TestFleet) -> None:
    """PostgreSQL refuses U+0000 in text and jsonb: that is the client's input (422 in the error
    shape), not a failure of ours (500), and the services keep answering."""
    async with gateway_client(fleet) as gateway:
        tutor = await register(gateway, "tutor nul")
        student = await linked_student(gateway, tutor)
        past = (datetime.now(UTC) - timedelta(hours=3)).isoformat()
        future = (datetime.now(UTC) + timedelta(days=3)).isoformat()
        email = f"nul-{uuid.uuid4().hex[:10]}@example.test"
        attempts = {
            "register": gateway.post(
                "/api/v1/auth/register", json={"email": email, "password": "correct horse", "full_name": NUL}
            ),
            "profile": gateway.patch("/api/v1/users/me", json={"full_name": NUL}, headers=tutor.headers),
            "lesson": gateway.post(
                "/api/v1/lessons",
                json={"student_id": student.id, "starts_at": past, "subject": NUL},
                headers=tutor.headers,
            ),
            "homework": gateway.post(
                "/api/v1/homework",
                json={"student_id": student.id, "title": NUL, "due_at": future},
                headers=tutor.headers,
            ),
            "top-up": gateway.post(
                "/api/v1/payments/top-ups",
                json={"student_id": student.id, "amount": 100, "currency": "RUB", "method": "cash", "note": NUL},
                headers=tutor.headers,
            ),
            "material form": gateway.post(
                "/api/v1/materials",
                data={"title": NUL},
                files={"file": ("n.txt", b"text\n", "text/plain")},
                headers=tutor.headers,
            ),
            "material link": gateway.post(
                "/api/v1/materials", json={"title": NUL, "url": "https://example.com/a"}, headers=tutor.headers
            ),
        }
        for what, attempt in attempts.items():
            response = await attempt
            assert response.status_code == 422, (what, response.text)
            assert_error(response, 422, "validation_error")
        # nothing half-written, and every service still answers
        assert answer(await gateway.get("/api/v1/lessons", headers=tutor.headers))["items"] == []
        assert answer(await gateway.get("/api/v1/homework", headers=tutor.headers))["items"] == []
        assert answer(await gateway.get("/api/v1/materials", headers=tutor.headers))["items"] == []
        statement = answer(await gateway.get(f"/api/v1/payments/statements/{student.id}", headers=tutor.headers))
        assert statement["items"] == []
        assert answer(await gateway.get("/api/v1/users/me", headers=tutor.headers))["full_name"] == "Tutor Nul"
        login = await gateway.post("/api/v1/auth/login", json={"email": email, "password": "correct horse"})
        assert_error(login, 401, login.json()["error"]["code"])
