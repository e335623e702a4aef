"""The machine's fleet lock, held while a benchmark measures.

Test sessions that start the real fleet hold ``/tmp/repitbot-fleet.lock`` (``flock`` in
README.md); a benchmark takes the same lock around its measured phases, so no test run
takes CPU from it meanwhile, and no test run is slowed by it. Start-up and tear-down
happen outside the lock: they measure nothing. The lock is polled rather than waited
for in the kernel, so Ctrl-C still stops a benchmark that is waiting for it (and its
fleet is still torn down). ``REPITBOT_FLEET_LOCK`` names another file (for a trial run
of a harness while tests are running; its figures are then not quotable).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import IO

from benchmarks.common.output import say

POLL_SECONDS = 0.5


def lock_path() -> Path:
    return Path(os.environ.get("REPITBOT_FLEET_LOCK", "/tmp/repitbot-fleet.lock"))


def try_lock(handle: IO[str]) -> bool:
    """Take an exclusive flock on ``handle`` if nobody holds one; False if somebody does."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class _Waiting:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.started = time.monotonic()
        say(f"waiting for {path} (a test run holds it) before measuring")

    def done(self) -> None:
        say(f"got {self.path} after {time.monotonic() - self.started:.0f}s")


@contextmanager
def fleet_lock(path: Path | None = None) -> Iterator[None]:
    """Hold the fleet lock inside the block, waiting as long as it takes (for synchronous harnesses)."""
    path = path or lock_path()
    with open(path, "a") as handle:
        if not try_lock(handle):
            waiting = _Waiting(path)
            while not try_lock(handle):
                time.sleep(POLL_SECONDS)
            waiting.done()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@asynccontextmanager
async def fleet_lock_async(path: Path | None = None) -> AsyncIterator[None]:
    """The same inside an event loop: waiting for the lock blocks nothing else, and can be cancelled."""
    path = path or lock_path()
    with open(path, "a") as handle:  # noqa: ASYNC230 (a local lock file: opening it does not block)
        if not try_lock(handle):
            waiting = _Waiting(path)
            while not try_lock(handle):  # noqa: ASYNC110 (a flock has no event to wait on)
                await asyncio.sleep(POLL_SECONDS)
            waiting.done()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
