"""Galleries and their policies."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from biomatch.accountability.policy import PRESETS, GalleryPolicy, stored_policy
from biomatch.accountability.principal import Principal
from biomatch.accountability.roles import Action
from biomatch.core.state import (
    CoreState,
    check_name,
)
from biomatch.errors import (
    GalleryExists,
    InvalidRequest,
)
from biomatch.results import (
    GalleryDeletionOut,
    GalleryOut,
)
from biomatch.store import Gallery, Sample, Subject, Template
from biomatch.store import repository as repo
from biomatch.store.changes import IndexChange
from biomatch.store.models import Adjudication, Consent, Encounter


class GalleriesAPI(CoreState):
    def create_gallery(
        self,
        actor: Principal,
        name: str,
        description: str = "",
        *,
        policy: GalleryPolicy | None = None,
        preset: str | None = None,
    ) -> GalleryOut:
        actor.require(Action.GALLERY_CREATE)
        name = check_name("gallery name", name)
        chosen = _choose_policy(policy, preset)
        try:
            with self._write_lock, self.db.write_transaction() as session:
                gallery = Gallery(
                    name=name, description=description, policy=chosen.model_dump(mode="json")
                )
                session.add(gallery)
                session.flush()
                self.audit.append(
                    session,
                    actor,
                    "gallery.create",
                    gallery=name,
                    details={"policy": gallery.policy},
                )
                return _gallery_out(gallery, subjects=0)
        except IntegrityError:
            raise GalleryExists(f"A gallery named {name!r} exists.", gallery=name) from None

    def list_galleries(self, actor: Principal) -> list[GalleryOut]:
        actor.require(Action.GALLERY_READ)
        with self.db.transaction() as session:
            counts = repo.subject_counts(session)
            galleries = session.scalars(repo.live_galleries().order_by(Gallery.name))
            return [_gallery_out(g, counts.get(g.id, 0)) for g in galleries]

    def get_gallery(self, actor: Principal, name: str) -> GalleryOut:
        actor.require(Action.GALLERY_READ)
        with self.db.transaction() as session:
            gallery = repo.gallery_by_name(session, name)
            return _gallery_out(gallery, repo.subject_counts(session).get(gallery.id, 0))

    def delete_gallery(self, actor: Principal, name: str, reason: str) -> GalleryDeletionOut:
        """Erase the gallery and everything in it (subjects, samples, templates, reference
        and probe images, encounters, data keys, change feed); the audit trail stays. The
        row stays as a tombstone under a name no gallery can take, so its id is not reused."""
        actor.require(Action.GALLERY_DELETE)
        with self._write_lock, self.db.write_transaction() as session:
            gallery = repo.gallery_by_name(session, name)
            out = _erase_contents(session, gallery)
            out = out.model_copy(
                update={"data_keys_destroyed": self.vault.destroy_gallery(session, gallery.id)}
            )
            gallery.name = f"{repo.DELETED_PREFIX}{gallery.id}"
            gallery.description = ""
            gallery.policy = {}
            gallery.revision += 1
            self.audit.append(
                session,
                actor,
                "gallery.delete",
                gallery=name,
                details={**out.model_dump(exclude={"gallery"}), "reason": reason},
            )
        self.indexes.forget(gallery.id)
        return out


def _erase_contents(session: Session, gallery: Gallery) -> GalleryDeletionOut:
    def count(query: Any) -> int:
        return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)

    subjects = select(Subject.id).where(Subject.gallery_id == gallery.id)
    out = GalleryDeletionOut(
        gallery=gallery.name,
        subjects_deleted=count(subjects),
        samples_deleted=count(select(Sample.id).where(Sample.subject_id.in_(subjects))),
        encounters_deleted=count(select(Encounter.id).where(Encounter.gallery_id == gallery.id)),
        data_keys_destroyed=0,
    )
    encounters = select(Encounter.id).where(Encounter.gallery_id == gallery.id)
    session.execute(delete(Adjudication).where(Adjudication.encounter_id.in_(encounters)))
    session.execute(delete(Encounter).where(Encounter.gallery_id == gallery.id))
    session.execute(delete(Template).where(Template.gallery_id == gallery.id))
    session.execute(delete(Consent).where(Consent.subject_id.in_(subjects)))
    session.execute(delete(Sample).where(Sample.subject_id.in_(subjects)))
    session.execute(delete(Subject).where(Subject.gallery_id == gallery.id))
    session.execute(delete(IndexChange).where(IndexChange.gallery_id == gallery.id))
    return out


def _choose_policy(policy: GalleryPolicy | None, preset: str | None) -> GalleryPolicy:
    if policy is not None and preset is not None:
        raise InvalidRequest("Give a policy or a preset, not both.")
    if preset is None:
        return policy or GalleryPolicy()
    if preset not in PRESETS:
        raise InvalidRequest(f"Unknown policy preset {preset!r}; known: {', '.join(PRESETS)}.")
    return PRESETS[preset]


def _gallery_out(gallery: Gallery, subjects: int) -> GalleryOut:
    return GalleryOut(
        name=gallery.name,
        description=gallery.description,
        created_at=gallery.created_at,
        subjects=subjects,
        policy=stored_policy(gallery.policy, gallery.name),
    )
