"""Files written once and shared by every process that starts: development secrets, compose secrets, keys."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def create_once(path: Path, make: Callable[[], str | bytes], mode: int = 0o600) -> bytes:
    """The content of ``path``, which ``make()`` writes first when the file does not exist yet.

    Safe when threads or processes race (two ``make run``, a test run, a service
    starting): each writes a temporary file of its own beside ``path`` and
    hard-links it into place. Exactly one link wins; the others find the file and
    return the winner's content, so every caller sees the same, complete file.
    An existing file is never replaced. ``make()`` runs only when the file is
    missing (in a race, possibly in several callers; one result is kept).

    A ``str`` is written as a line of text (UTF-8, with a newline after it),
    ``bytes`` exactly. The file gets ``mode`` whatever the umask; missing parent
    folders are created (0700).
    """
    with contextlib.suppress(FileNotFoundError):
        return path.read_bytes()
    made = make()
    content = (made + "\n").encode() if isinstance(made, str) else made
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, staging = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # a unique name
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(staging, mode)
        try:
            os.link(staging, path)  # atomic, and fails if someone else created the file first
        except FileExistsError:
            return path.read_bytes()
        return content
    finally:
        os.unlink(staging)
