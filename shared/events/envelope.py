"""The envelope every event travels in (DESIGN.md §5).

The envelope is what the outbox stores, what goes over the wire (JSON, via
orjson) and what a handler receives. Its ``payload`` is a plain JSON object;
``shared.events.catalogue.parse_payload`` turns it into the typed model.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from shared.events.catalogue import EventPayload


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: uuid.UUID
    event_type: str = Field(min_length=1, max_length=100)
    version: int = Field(ge=1)
    occurred_at: AwareDatetime
    producer: str = Field(min_length=1)
    correlation_id: str = Field(min_length=1)
    causation_id: str | None = None
    payload: dict[str, Any]

    @field_validator("occurred_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @classmethod
    def wrap(
        cls,
        payload: EventPayload,
        *,
        producer: str,
        correlation_id: str,
        causation_id: str | None = None,
        occurred_at: datetime | None = None,
        event_id: uuid.UUID | None = None,
    ) -> Envelope:
        """A new event carrying ``payload``; its type and version come from the payload model."""
        return cls(
            event_id=event_id or uuid.uuid4(),
            event_type=payload.event_type,
            version=payload.version,
            occurred_at=occurred_at or datetime.now(UTC),
            producer=producer,
            correlation_id=correlation_id,
            causation_id=causation_id,
            payload=payload.model_dump(mode="json"),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: UUIDs and times as strings (this is what the outbox's JSONB column holds)."""
        return self.model_dump(mode="json")

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_json(cls, data: bytes | str) -> Envelope:
        """Parse wire bytes; raises ``ValueError`` (pydantic's ValidationError included) when malformed."""
        try:
            raw = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"event body is not JSON: {exc}") from exc
        return cls.model_validate(raw)
