"""The outbox: an event is written in the same transaction as the change it describes (DESIGN.md §5).

Request handlers never publish. ``add_event`` adds the envelope to ``outbox_events``
inside the caller's transaction, and a NOTIFY that PostgreSQL delivers only if that
transaction commits; the relay then publishes. A rolled-back change therefore
leaves no event behind, and a committed one cannot be lost to a broker outage.

The rows are written when the transaction commits, all in one statement that also
sends the NOTIFY: a consumer applying a batch of events, each adding two or three of
its own, sends one INSERT for all of them instead of one each (docs/performance.md,
the event path). Until then they wait in the session, each with the (sub)transaction
it was added in: a savepoint rolled back takes its events with it, a savepoint
released leaves them to the transaction's commit, and the rows keep the order the
events were added in (``created_at`` is ``clock_timestamp()`` per row).

Where the process runs a relay of its own (``Database.outbox_handoff``), the rows are
written claimed by it for a lease and without the NOTIFY, and once the transaction
has committed their envelopes are handed to that relay, which publishes them at once
and marks them published: no wake-up through PostgreSQL and no claiming pass per
commit (decision 0024). A row whose process dies before it is published is any
relay pass's again when the lease runs out.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Interval, Select, bindparam, event, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from shared import context
from shared.db import DriverStatement, after_commit
from shared.events.catalogue import EventPayload
from shared.events.envelope import Envelope
from shared.tables import outbox_events

NOTIFY_CHANNEL = "outbox_events"


@dataclass(frozen=True)
class OutboxHandoff:
    """A relay in this process taking the events its database's transactions commit: ``receive`` gets
    each committed transaction's envelopes, in the order added (called from the committing thread, after
    the commit); until ``lease`` has passed no other relay pass claims their rows."""

    receive: Callable[[Sequence[Envelope]], None]
    lease: timedelta


def _new_rows() -> Any:
    """A transaction's events as rows: arrays (one element per event) unnested in the order added."""
    return (
        func.unnest(
            bindparam("ids", type_=ARRAY(outbox_events.c.id.type)),
            bindparam("event_types", type_=ARRAY(outbox_events.c.event_type.type)),
            bindparam("envelopes", type_=ARRAY(outbox_events.c.envelope.type)),
        )
        .table_valued("id", "event_type", "envelope")
        .render_derived(name="new")
    )


def _add_and_notify() -> Select[Any]:
    """A transaction's events inserted and the relays notified, in one statement built once;
    ``clock_timestamp()``, unlike ``now()``, differs between rows of one transaction, so they are
    published in the order added too. PostgreSQL runs a data-modifying WITH to completion whether or
    not the query reads it."""
    new = _new_rows()
    added = (
        outbox_events.insert()
        .from_select(
            ["id", "event_type", "envelope", "created_at"],
            select(new.c.id, new.c.event_type, new.c.envelope, func.clock_timestamp()),
        )
        .cte("added")
    )
    return select(func.pg_notify(NOTIFY_CHANNEL, "")).add_cte(added)


def _add_claimed() -> Any:
    """A transaction's events inserted claimed by this process's relay for ``lease``: no NOTIFY, the
    relay gets them from the commit itself."""
    new = _new_rows()
    return outbox_events.insert().from_select(
        ["id", "event_type", "envelope", "created_at", "claimed_until"],
        select(
            new.c.id,
            new.c.event_type,
            new.c.envelope,
            func.clock_timestamp(),
            func.clock_timestamp() + bindparam("lease", type_=Interval()),
        ),
    )


# on the driver's connection: every event's transaction runs one of them
_ADD_AND_NOTIFY = DriverStatement(_add_and_notify())
_ADD_CLAIMED = DriverStatement(_add_claimed())
_WAITING = "outbox_waiting"  # session.info: [(the (sub)transaction an event was added in, its envelope)]


async def add_event(session: AsyncSession, payload: EventPayload, *, occurred_at: datetime | None = None) -> Envelope:
    """Add ``payload`` as an event to the outbox in ``session``'s transaction; returns its envelope.

    The producer is ``session.info["service"]`` (set by ``shared.db.Database``);
    the correlation ID is the current request's (or a new one), and the causation
    ID is the event being handled, if any, so events emitted by handlers chain.
    """
    producer = session.info.get("service")
    if not producer:
        raise RuntimeError("session.info['service'] is not set: open sessions through shared.db.Database")
    envelope = Envelope.wrap(
        payload,
        producer=producer,
        correlation_id=context.current_correlation_id(),
        causation_id=context.causation_id.get(),
        occurred_at=occurred_at,
    )
    sync = session.sync_session
    added_in = sync.get_nested_transaction() or sync.get_transaction() or sync.begin()
    session.info.setdefault(_WAITING, []).append((added_in, envelope))
    return envelope


@event.listens_for(Session, "before_commit")
def _write_waiting_events(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint released: its events wait for the transaction's commit
        return
    waiting: list[tuple[SessionTransaction, Envelope]] = session.info.pop(_WAITING, [])
    if not waiting:
        return
    envelopes = [envelope for _, envelope in waiting]
    rows = {
        "ids": [envelope.event_id for envelope in envelopes],
        "event_types": [envelope.event_type for envelope in envelopes],
        "envelopes": [envelope.to_json().decode() for envelope in envelopes],
    }
    handoff: OutboxHandoff | None = getattr(session.info.get("database"), "outbox_handoff", None)
    if handoff is None:
        _ADD_AND_NOTIFY.fetch_in_sync_hook(session, **rows)
        return
    _ADD_CLAIMED.fetch_in_sync_hook(session, **rows, lease=handoff.lease)
    # only once committed: a transaction rolled back, or whose commit fails, hands nothing over
    after_commit(session, functools.partial(handoff.receive, envelopes))


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back_events(session: Session, rolled_back: SessionTransaction) -> None:
    waiting: list[tuple[SessionTransaction, Envelope]] = session.info.get(_WAITING, [])
    if waiting:
        session.info[_WAITING] = [entry for entry in waiting if not _within(entry[0], rolled_back)]


@event.listens_for(Session, "after_transaction_end")
def _forget_events_of_an_ended_transaction(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # closed without a commit (a commit has written them already)
        session.info.pop(_WAITING, None)


def _within(transaction: SessionTransaction | None, outer: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is outer:
            return True
        transaction = transaction.parent
    return False
