"""The machine's fleet lock, held while a benchmark measures.

Test sessions that start the real fleet hold ``/tmp/repitbot-fleet.lock`` (``flock`` in
README.md); a benchmark takes the same lock around its measured phases, so no test run
takes CPU from it meanwhile, and no test run is slowed by it. Start-up and tear-down
happen outside the lock: they measure nothing.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.common.fleet import say

FLEET_LOCK = Path(os.environ.get("REPITBOT_FLEET_LOCK", "/tmp/repitbot-fleet.lock"))


@contextmanager
def fleet_lock(path: Path = FLEET_LOCK) -> Iterator[None]:
    """Hold the fleet lock (exclusive, waiting as long as it takes) inside the block."""
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for {path} (a test run holds it) before measuring")
            started = time.monotonic()
            fcntl.flock(handle, fcntl.LOCK_EX)
            say(f"got {path} after {time.monotonic() - started:.0f}s")
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
