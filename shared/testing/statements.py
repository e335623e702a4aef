"""The SQL statements an engine sends inside a block: for statement budgets and "exactly once" checks."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


@contextmanager
def statements_sent(engine: AsyncEngine, *, this_task_only: bool = False) -> Iterator[list[str]]:
    """Yield a list that collects each statement ``engine`` sends until the block ends. With
    ``this_task_only``, only those of the task that entered the block (not a relay's or another
    consumer's sharing the engine)."""
    sync_engine = engine.sync_engine
    task = asyncio.current_task() if this_task_only else None
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if task is None or asyncio.current_task() is task:
            seen.append(statement)

    event.listen(sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(sync_engine, "before_cursor_execute", record)
