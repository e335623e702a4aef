"""Outbox relay. Interface used by shared/app.py and shared/metrics.py:

OutboxRelay(db: Database, bus: EventBus, *, poll_seconds: float)
    async start() / async stop()  (stop publishes what is already committed, bounded by a timeout)
    async publish_pending() -> int   (one pass; tests call it directly)
    async backlog() -> int           (rows not yet published)
"""
# STUB: owned by the events helper — fill in.
