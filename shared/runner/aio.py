"""Run a coroutine from the runner's synchronous code, also when the caller is inside an event loop.

The runner is synchronous (a CLI and a pytest fixture); asyncpg and aio-pika are
not. A pytest session with a running loop must not be disturbed, so in that case
the coroutine runs on its own loop in a worker thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
