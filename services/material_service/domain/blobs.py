"""Content-addressed files on disk: ``<root>/<aa>/<bb>/<sha256>``, written once, shared by every
material with the same bytes. Every call that touches the disk runs in a thread.

Uploads are spooled to ``<root>/tmp/`` (same file system, so placing one is an atomic
``rename``). Whether a blob is still needed is the database's business (``blobs.refcount``);
placing and removing a file happen under the transaction-scoped advisory lock of its hash
(:func:`lock_blob`), so an upload of the same bytes and the removal of the last reference
never cross.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.material_service.domain.sniff import SNIFF_BYTES

READ_CHUNK = 256 * 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


async def lock_blob(session: AsyncSession, sha256: str) -> None:
    """Hold the hash's advisory lock until ``session``'s transaction ends."""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"blob:{sha256}"})


@dataclass
class Spooled:
    """An upload being written to a temporary file, hashed as it goes."""

    path: Path
    handle: BinaryIO
    size: int = 0
    head: bytes = b""
    _hash: hashlib._Hash = field(default_factory=hashlib.sha256)

    def write(self, data: bytes) -> None:  # in a thread
        if len(self.head) < SNIFF_BYTES:
            self.head += data[: SNIFF_BYTES - len(self.head)]
        self._hash.update(data)
        self.handle.write(data)
        self.size += len(data)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.tmp = self.root / "tmp"

    def path(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise ValueError("not a SHA-256 hex digest")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    # --- writing --------------------------------------------------------------------------

    async def spool(self) -> Spooled:
        def open_temp() -> Spooled:
            self.tmp.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=self.tmp, prefix="upload-")
            return Spooled(Path(name), os.fdopen(fd, "wb"))

        return await asyncio.to_thread(open_temp)

    async def write(self, spooled: Spooled, data: bytes) -> None:
        await asyncio.to_thread(spooled.write, data)

    async def finish(self, spooled: Spooled) -> None:
        def close() -> None:
            spooled.handle.flush()
            os.fsync(spooled.handle.fileno())
            spooled.handle.close()

        await asyncio.to_thread(close)

    async def discard(self, spooled: Spooled) -> None:
        def remove() -> None:
            with contextlib.suppress(OSError):
                spooled.handle.close()
            with contextlib.suppress(FileNotFoundError):
                spooled.path.unlink()

        await asyncio.to_thread(remove)

    async def place(self, spooled: Spooled) -> None:
        """Move the spooled file to its content address, unless those bytes are there already
        (then the spooled copy goes). Call under :func:`lock_blob`."""
        final = self.path(spooled.sha256)

        def move() -> None:
            if final.exists():
                spooled.path.unlink(missing_ok=True)
                return
            final.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(spooled.path, 0o640)
            os.replace(spooled.path, final)

        await asyncio.to_thread(move)

    async def remove(self, sha256: str) -> None:
        """Call under :func:`lock_blob`, once the database holds no reference."""
        await asyncio.to_thread(self.path(sha256).unlink, missing_ok=True)

    async def sweep_spool(self, older_than_seconds: float) -> int:
        """Remove spooled uploads a crashed process left behind (another replica's upload in
        progress is younger than ``older_than_seconds``); how many went."""

        def sweep() -> int:
            if not self.tmp.is_dir():
                return 0
            cutoff = time.time() - older_than_seconds
            removed = 0
            for path in self.tmp.iterdir():
                with contextlib.suppress(FileNotFoundError):
                    if path.is_file() and path.stat().st_mtime < cutoff:
                        path.unlink()
                        removed += 1
            return removed

        return await asyncio.to_thread(sweep)

    # --- reading --------------------------------------------------------------------------

    async def exists(self, sha256: str) -> bool:
        return await asyncio.to_thread(self.path(sha256).is_file)

    async def read(self, sha256: str, start: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """The bytes ``[start, start + length)`` of a blob, in chunks read in a thread."""
        handle = await asyncio.to_thread(open, self.path(sha256), "rb")
        try:
            await asyncio.to_thread(handle.seek, start)
            remaining = length
            while remaining is None or remaining > 0:
                size = READ_CHUNK if remaining is None else min(READ_CHUNK, remaining)
                chunk = await asyncio.to_thread(handle.read, size)
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            await asyncio.to_thread(handle.close)
