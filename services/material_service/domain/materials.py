"""Materials in the database: create, share, view, delete, list. Plain functions over a session;
events go to the outbox in the same transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, and_, delete, exists, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.material_service.domain.blobs import BlobStore, Spooled, lock_blob
from services.material_service.models import Blob, Material, MaterialShare, MaterialView
from shared.auth.deps import Caller
from shared.errors import Unprocessable
from shared.events.catalogue import MaterialShared, MaterialUploaded, MaterialViewed
from shared.events.outbox import add_event
from shared.idempotency import IDEMPOTENCY_HEADER
from shared.tables import access_links


@dataclass(frozen=True)
class NewFile:
    spooled: Spooled
    content_type: str
    filename: str


async def create(
    session: AsyncSession,
    store: BlobStore,
    caller: Caller,
    fields: dict[str, object],
    file: NewFile | None,
) -> Material:
    material = Material(id=uuid.uuid4(), owner_id=uuid.UUID(caller.id), owner_role=caller.role, **fields)
    if file is not None:
        sha256 = file.spooled.sha256
        await lock_blob(session, sha256)
        statement = insert(Blob).values(
            sha256=sha256, size=file.spooled.size, content_type=file.content_type, refcount=1
        )
        await session.execute(
            statement.on_conflict_do_update(index_elements=[Blob.sha256], set_={"refcount": Blob.refcount + 1})
        )
        await store.place(file.spooled)
        material.sha256, material.size = sha256, file.spooled.size
        material.content_type, material.filename = file.content_type, file.filename
    session.add(material)
    await session.flush()
    await add_event(
        session,
        MaterialUploaded(
            material_id=material.id,
            owner_id=material.owner_id,
            owner_role=caller.role,
            title=material.title,
            filename=material.filename or "",
            content_type=material.content_type or "text/uri-list",
            size=material.size or 0,
            sha256=material.sha256 or "",
            homework_id=material.homework_id,
            url=material.url,
            subject=material.subject,
            grade=material.grade,
        ),
    )
    return material


async def earlier_upload(session: AsyncSession, owner_id: uuid.UUID, key: str, request_hash: str) -> Material | None:
    """The material a previous upload with this ``Idempotency-Key`` made (None: the first time).
    Holds the key's lock until the transaction ends, so a concurrent retry waits and finds it;
    the same key with another request → 422."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"upload:{owner_id}:{key}"}
    )
    material = await session.scalar(
        select(Material).where(Material.owner_id == owner_id, Material.idempotency_key == key)
    )
    if material is not None and material.request_hash != request_hash:
        raise Unprocessable(
            f"This {IDEMPOTENCY_HEADER} was already used for a different upload",
            code="idempotency_key_reused",
            details=[{"field": IDEMPOTENCY_HEADER, "message": "already used with another body", "type": "value_error"}],
        )
    return material


async def shared_with(session: AsyncSession, material_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await session.scalars(
        select(MaterialShare.student_id)
        .where(MaterialShare.material_id == material_id)
        .order_by(MaterialShare.created_at, MaterialShare.student_id)
    )
    return list(rows)


async def share(session: AsyncSession, material: Material, student_ids: list[uuid.UUID], *, all_students: bool) -> None:
    """Share with these students (and, with ``all_students``, every student of the owner);
    ``material.shared`` names only what changed, and is not said for a repeated share."""
    added: list[uuid.UUID] = []
    if student_ids:
        statement = (
            insert(MaterialShare)
            .values([{"material_id": material.id, "student_id": s} for s in dict.fromkeys(student_ids)])
            .on_conflict_do_nothing()
            .returning(MaterialShare.student_id)
        )
        added = list(await session.scalars(statement))
    newly_all = all_students and not material.share_all
    if newly_all:
        material.share_all = True
        await session.execute(update(Material).where(Material.id == material.id).values(share_all=True))
    if added or newly_all:
        await add_event(
            session,
            MaterialShared(
                material_id=material.id,
                owner_id=material.owner_id,
                title=material.title,
                student_ids=added,
                all_students=newly_all,
            ),
        )


async def record_view(session: AsyncSession, material: Material, caller: Caller) -> bool:
    """A student opening a material: ``material.viewed`` once per student and material."""
    if caller.role != "student" or caller.id == str(material.owner_id):
        return False
    student_id = uuid.UUID(caller.id)
    statement = (
        insert(MaterialView)
        .values(material_id=material.id, student_id=student_id)
        .on_conflict_do_nothing()
        .returning(MaterialView.student_id)
    )
    if (await session.scalar(statement)) is None:
        return False
    await add_event(
        session,
        MaterialViewed(
            material_id=material.id, owner_id=material.owner_id, viewer_id=student_id, viewer_role="student"
        ),
    )
    return True


async def remove(session: AsyncSession, material: Material) -> str | None:
    """Delete the material; the hash of a blob that no material references any more (its file is
    removed by :func:`collect_blob` after this transaction commits)."""
    await session.execute(delete(Material).where(Material.id == material.id))
    if material.sha256 is None:
        return None
    await lock_blob(session, material.sha256)
    left = await session.scalar(
        update(Blob).where(Blob.sha256 == material.sha256).values(refcount=Blob.refcount - 1).returning(Blob.refcount)
    )
    return material.sha256 if left == 0 else None


async def collect_blob(session: AsyncSession, store: BlobStore, sha256: str) -> bool:
    """In a transaction of its own, after the one that dropped the last reference: remove the
    blob unless an upload of the same bytes took it again meanwhile."""
    await lock_blob(session, sha256)
    refcount = await session.scalar(select(Blob.refcount).where(Blob.sha256 == sha256).with_for_update())
    if refcount:
        return False
    await session.execute(delete(Blob).where(Blob.sha256 == sha256))
    await store.remove(sha256)
    return True


# --- lists ---------------------------------------------------------------------------------


def _active(relation: str) -> object:
    return and_(access_links.c.relation == relation, access_links.c.active == 1)


def visible_to(caller: Caller) -> Select[tuple[Material]]:
    """Materials the caller sees, from the local links (a link not seen here yet shows up once
    its ``student.linked`` event arrives)."""
    query = select(Material)
    if caller.is_admin or caller.is_service:
        return query
    me = uuid.UUID(caller.id)
    own = Material.owner_id == me
    if caller.role == "tutor":
        my_students = select(access_links.c.student_id).where(access_links.c.principal_id == me, _active("tutor"))
        return query.where(or_(own, and_(Material.owner_role == "student", Material.owner_id.in_(my_students))))
    if caller.role == "student":
        my_tutors = select(access_links.c.principal_id).where(access_links.c.student_id == me, _active("tutor"))
        named = exists().where(MaterialShare.material_id == Material.id, MaterialShare.student_id == me)
        return query.where(or_(own, and_(Material.owner_id.in_(my_tutors), or_(Material.share_all, named))))
    if caller.role == "parent":
        child = access_links.alias("child")
        teacher = access_links.alias("teacher")
        named = (
            exists()
            .where(MaterialShare.material_id == Material.id, MaterialShare.student_id == child.c.student_id)
            .correlate(Material, child)
        )
        through_a_child = (
            exists()
            .where(
                child.c.principal_id == me,
                child.c.relation == "parent",
                child.c.active == 1,
                teacher.c.student_id == child.c.student_id,
                teacher.c.principal_id == Material.owner_id,
                teacher.c.relation == "tutor",
                teacher.c.active == 1,
            )
            .where(or_(Material.share_all, named))
        )
        return query.where(Material.owner_role != "student", through_a_child)
    return query.where(own)


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def search(
    session: AsyncSession,
    caller: Caller,
    *,
    q: str | None,
    subject: str | None,
    grade: int | None,
    tag: str | None,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[Material]:
    query = visible_to(caller)
    if q:
        query = query.where(Material.title.ilike(_like(q), escape="\\"))
    if subject:
        query = query.where(func.lower(Material.subject) == subject.strip().lower())
    if grade is not None:
        query = query.where(Material.grade == grade)
    if tag:
        query = query.where(Material.tags.contains([tag.strip().lower()]))
    if after is not None:
        query = query.where(
            or_(Material.created_at < after[0], and_(Material.created_at == after[0], Material.id < after[1]))
        )
    query = query.order_by(Material.created_at.desc(), Material.id.desc()).limit(limit)
    return list(await session.scalars(query))
