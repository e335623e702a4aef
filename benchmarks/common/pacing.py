"""Open-loop pacing: start each request at its own moment, whatever the earlier ones are doing.

A closed loop (send, wait for the answer, send the next) slows down exactly when the
system does and so hides its stalls (coordinated omission). Here item ``i`` is started
at ``start + i / rate`` on the event loop's monotonic clock; a slow answer delays no
later request, and the time each one waited is charged to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


async def paced(items: Sequence[Item], rate: float, send: Callable[[Item], Awaitable[Result]]) -> list[Result]:
    """``send(item)`` for every item at ``rate`` per second; the results in the items' order."""
    if rate <= 0:
        raise ValueError("the rate must be positive")
    loop = asyncio.get_running_loop()
    start = loop.time()
    tasks: list[asyncio.Task[Result]] = []
    for index, item in enumerate(items):
        delay = start + index / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(send(item)))
    return list(await asyncio.gather(*tasks))
