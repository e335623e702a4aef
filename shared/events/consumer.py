"""Event consumer with the inbox. Interface used by shared/app.py:

EventConsumer(db: Database, bus: EventBus, *, service: str, handlers: Mapping[str, EventHandler])
    async start() / async stop()
"""
# STUB: owned by the events helper — fill in.
