"""Queries the service needs, each on a caller's session (the caller owns the transaction)."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session, selectinload

from biomatch.errors import GalleryNotFound, SubjectNotFound
from biomatch.store.models import Gallery, Sample, Subject, Template

# A deleted gallery keeps its row under this name (no gallery name holds a '/'), so its id
# is never reused: an index another worker still holds for it can never serve a new gallery.
DELETED_PREFIX = "/deleted/"


def live_galleries() -> Select[Gallery]:
    return select(Gallery).where(Gallery.name.not_like(f"{DELETED_PREFIX}%"))


def gallery_by_name(session: Session, name: str) -> Gallery:
    gallery = session.scalar(live_galleries().where(Gallery.name == name))
    if gallery is None:
        raise GalleryNotFound(f"There is no gallery {name!r}.", gallery=name)
    return gallery


def subject_by_id(session: Session, gallery: Gallery, external_id: str) -> Subject:
    external_id = unicodedata.normalize("NFC", external_id)
    subject = session.scalar(
        select(Subject)
        .where(Subject.gallery_id == gallery.id, Subject.external_id == external_id)
        .options(selectinload(Subject.samples).selectinload(Sample.templates))
    )
    if subject is None:
        raise SubjectNotFound(
            f"Gallery {gallery.name!r} has no subject {external_id!r}.",
            gallery=gallery.name,
            subject_id=external_id,
        )
    return subject


def find_subject(session: Session, gallery: Gallery, external_id: str) -> Subject | None:
    external_id = unicodedata.normalize("NFC", external_id)
    return session.scalar(
        select(Subject).where(Subject.gallery_id == gallery.id, Subject.external_id == external_id)
    )


def bump_revision(session: Session, gallery_id: int) -> int:
    """Atomically advance the gallery's revision; returns the new value."""
    session.execute(
        update(Gallery).where(Gallery.id == gallery_id).values(revision=Gallery.revision + 1)
    )
    revision = session.scalar(select(Gallery.revision).where(Gallery.id == gallery_id))
    assert revision is not None
    return revision


def subject_counts(session: Session) -> dict[int, int]:
    rows = session.execute(select(Subject.gallery_id, func.count()).group_by(Subject.gallery_id))
    return {gallery_id: count for gallery_id, count in rows}


def gallery_templates(
    session: Session, gallery_id: int, model_key: str
) -> Sequence[tuple[int, int, bytes]]:
    """(template id, subject id, data) of every template of one model in a gallery."""
    rows = session.execute(
        select(Template.id, Template.subject_id, Template.data)
        .where(Template.gallery_id == gallery_id, Template.model_key == model_key)
        .order_by(Template.id)
    )
    return [(template_id, subject_id, data) for template_id, subject_id, data in rows]


def gallery_template_ids(session: Session, gallery_id: int, model_key: str) -> Sequence[int]:
    """Ids of every template of one model in a gallery."""
    return session.scalars(
        select(Template.id).where(
            Template.gallery_id == gallery_id, Template.model_key == model_key
        )
    ).all()


def subject_templates(
    session: Session, subject_ids: Sequence[int], model_keys: Sequence[str]
) -> Sequence[tuple[int, int, int, str, bytes]]:
    """(template id, sample id, subject id, model key, data) of the given subjects'
    templates of the given models."""
    rows = session.execute(
        select(
            Template.id, Template.sample_id, Template.subject_id, Template.model_key, Template.data
        )
        .where(Template.subject_id.in_(subject_ids), Template.model_key.in_(model_keys))
        .order_by(Template.id)
    )
    return [tuple(row) for row in rows]  # type: ignore[misc]


def gallery_model_keys(session: Session, gallery_id: int) -> list[str]:
    rows = session.scalars(
        select(Template.model_key).where(Template.gallery_id == gallery_id).distinct()
    )
    return sorted(rows)


def count_templates(session: Session, subject_ids: Sequence[int], model_keys: Sequence[str]) -> int:
    if not model_keys:
        return 0
    count = session.scalar(
        select(func.count(Template.id)).where(
            Template.subject_id.in_(subject_ids), Template.model_key.in_(model_keys)
        )
    )
    return int(count or 0)


def subjects_with_templates(session: Session, gallery_id: int, model_keys: Sequence[str]) -> int:
    """How many of the gallery's subjects hold a template of one of the models."""
    count = session.scalar(
        select(func.count(func.distinct(Template.subject_id))).where(
            Template.gallery_id == gallery_id, Template.model_key.in_(model_keys)
        )
    )
    return int(count or 0)


def external_ids(session: Session, subject_ids: Sequence[int]) -> dict[int, str]:
    rows = session.execute(
        select(Subject.id, Subject.external_id).where(Subject.id.in_(subject_ids))
    )
    return {subject_id: external_id for subject_id, external_id in rows}
