"""The change feed: one row per template added to or removed from a gallery's index.

Rows are written in the same transaction that bumps the gallery's revision, so a process
whose in-memory index stands at revision ``r`` can bring it to the current revision by
applying the rows with ``revision > r`` (``changes_since``) instead of reloading and
decrypting the whole gallery. Where the feed cannot cover a gap (rows pruned), the caller
rebuilds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, String, delete, func, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from biomatch.store.models import Base, Gallery, Template, utcnow
from biomatch.store.repository import bump_revision

ADD = "add"
REMOVE = "remove"

# (template id, subject id, model key)
TemplateRef = tuple[int, int, str]


class IndexChange(Base):
    __tablename__ = "index_changes"
    __table_args__ = (Index("ix_index_changes_gallery_revision", "gallery_id", "revision"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    gallery_id: Mapped[int] = mapped_column(ForeignKey("galleries.id", ondelete="CASCADE"))
    revision: Mapped[int]
    # No foreign key: a removal outlives its template.
    template_id: Mapped[int]
    subject_id: Mapped[int]
    model_key: Mapped[str] = mapped_column(String(96))
    op: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


@dataclass(frozen=True, slots=True)
class Change:
    revision: int
    template_id: int
    subject_id: int
    op: str


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """What changed for one model since a revision. ``complete`` is False where the feed
    no longer holds every revision in the gap (pruned): the caller must rebuild."""

    since: int
    revision: int
    changes: Sequence[Change]
    complete: bool


def record_changes(
    session: Session,
    gallery_id: int,
    *,
    added: Iterable[TemplateRef] = (),
    removed: Iterable[TemplateRef] = (),
) -> int:
    """Bump the gallery's revision and write its change rows, in the caller's transaction.
    Returns the new revision."""
    revision = bump_revision(session, gallery_id)
    rows = [
        {
            "gallery_id": gallery_id,
            "revision": revision,
            "template_id": template_id,
            "subject_id": subject_id,
            "model_key": model_key,
            "op": op,
        }
        for op, refs in ((REMOVE, removed), (ADD, added))
        for template_id, subject_id, model_key in refs
    ]
    if rows:
        session.execute(insert(IndexChange), rows)
    return revision


def changes_since(session: Session, gallery_id: int, revision: int, model_key: str) -> ChangeSet:
    """The changes of ``model_key`` after ``revision``, in order, up to the gallery's current
    revision."""
    current = session.scalar(select(Gallery.revision).where(Gallery.id == gallery_id))
    if current is None:
        return ChangeSet(revision, revision, (), False)
    if current <= revision:
        return ChangeSet(revision, current, (), True)
    # Every revision leaves at least one row (for some model) unless the feed was pruned
    # or the revision was written without the feed (before it existed, or by a write that
    # changed no template): then the feed cannot cover the gap.
    covered = session.scalar(
        select(func.count(func.distinct(IndexChange.revision))).where(
            IndexChange.gallery_id == gallery_id,
            IndexChange.revision > revision,
            IndexChange.revision <= current,
        )
    )
    if covered != current - revision:
        return ChangeSet(revision, current, (), False)
    rows = session.execute(
        select(
            IndexChange.revision, IndexChange.template_id, IndexChange.subject_id, IndexChange.op
        )
        .where(
            IndexChange.gallery_id == gallery_id,
            IndexChange.model_key == model_key,
            IndexChange.revision > revision,
            IndexChange.revision <= current,
        )
        .order_by(IndexChange.revision, IndexChange.id)
    )
    return ChangeSet(revision, current, [Change(r, t, s, o) for r, t, s, o in rows], True)


def templates_by_id(
    session: Session, gallery_id: int, model_key: str, template_ids: Sequence[int]
) -> list[tuple[int, int, bytes]]:
    """(template id, subject id, sealed data) of those of the given templates that still
    exist, in id order."""
    found: list[tuple[int, int, bytes]] = []
    ids = sorted(set(template_ids))
    for start in range(0, len(ids), 500):
        rows = session.execute(
            select(Template.id, Template.subject_id, Template.data)
            .where(
                Template.gallery_id == gallery_id,
                Template.model_key == model_key,
                Template.id.in_(ids[start : start + 500]),
            )
            .order_by(Template.id)
        )
        found += [(t, s, d) for t, s, d in rows]
    return found


def prune_changes(session: Session, gallery_id: int, before_revision: int) -> int:
    """Delete the feed rows at or below ``before_revision``; indexes older than that rebuild."""
    result = session.execute(
        delete(IndexChange).where(
            IndexChange.gallery_id == gallery_id, IndexChange.revision <= before_revision
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
