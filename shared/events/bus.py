"""The event bus: a small interface, RabbitMQ in every deployment, in-process for fast unit tests.

Interface the rest of shared/ relies on (see shared/app.py):

class EventBus(Protocol):
    is_connected: bool
    async def start(self) -> None            # returns at once; connects (and reconnects) in the background
    async def close(self) -> None
    async def publish(self, envelope: Envelope) -> None   # publisher-confirmed, raises on timeout/failure
    async def consume(self, service: str, event_types: Iterable[str],
                      on_message: Callable[[IncomingEvent], Awaitable[None]]) -> None

RabbitMQBus(url, *, service, exchange, delivery_limit, publish_timeout)
InMemoryBus()
"""
# STUB: owned by the events helper — fill in.
