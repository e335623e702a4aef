"""Handlers that can take several events at once, and the context every handler runs in.

A ``BatchHandler`` applies a run of consecutive deliveries of its event types in one call, so that
what a per-event handler does with one statement per event (lock a row, insert a ledger row, read
what a rule needs) it does with one statement for the whole run: the consumer hands it every new
event of the run in delivery order (docs/performance.md, the event path). Called with one event it
is an ordinary ``EventHandler``, so a rebuild, a test or a single delivery need nothing else. It must
give the same result as applying the events one at a time, in order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from shared import context
from shared.events.envelope import Envelope

ApplyAll = Callable[[AsyncSession, Sequence[Envelope]], Awaitable[None]]


class BatchHandler:
    def __init__(self, apply_all: ApplyAll) -> None:
        self.apply_all = apply_all
        self.__name__ = apply_all.__name__
        self.__doc__ = apply_all.__doc__

    async def __call__(self, session: AsyncSession, envelope: Envelope) -> None:
        await self.apply_all(session, [envelope])


def batch_handler(apply_all: ApplyAll) -> BatchHandler:
    """Make ``apply_all(session, envelopes)`` the handler of a run of events (see the module)."""
    return BatchHandler(apply_all)


@contextlib.contextmanager
def handling(envelope: Envelope) -> Iterator[None]:
    """The event's correlation, and the event itself as the cause, for logs and the events it adds.

    The consumer sets it around a handler; a ``BatchHandler`` sets it around each event's part."""
    correlation_token = context.correlation_id.set(envelope.correlation_id)
    causation_token = context.causation_id.set(str(envelope.event_id))
    try:
        yield
    finally:
        context.causation_id.reset(causation_token)
        context.correlation_id.reset(correlation_token)
