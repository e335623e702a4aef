"""What user-service publishes (through the outbox, in the transaction of the change).

user-service consumes nothing of its own; ``create_app`` subscribes every service
to the link events for its local ``access_links`` table.
"""

from __future__ import annotations

import uuid

from services.user_service.models import StudentLink, User
from shared.events.catalogue import StudentLinked, StudentUnlinked, UserRegistered, UserUpdated


def user_registered(user: User, *, tutor_id: uuid.UUID | None) -> UserRegistered:
    return UserRegistered(
        user_id=user.id,
        role=user.role,
        full_name=user.full_name,
        email=user.email,
        timezone=user.timezone,
        language=user.language,
        telegram_id=user.telegram_id,
        tutor_id=tutor_id,
    )


def user_updated(user: User) -> UserUpdated:
    return UserUpdated(
        user_id=user.id,
        full_name=user.full_name,
        timezone=user.timezone,
        language=user.language,
        telegram_id=user.telegram_id,
    )


def student_linked(link: StudentLink) -> StudentLinked:
    return StudentLinked(**_link_fields(link))


def student_unlinked(link: StudentLink) -> StudentUnlinked:
    return StudentUnlinked(**_link_fields(link))


def _link_fields(link: StudentLink) -> dict[str, object]:
    return {
        "student_id": link.student_id,
        "principal_id": link.principal_id,
        "relation": link.relation,
        "tutor_id": link.tutor_id,
    }
