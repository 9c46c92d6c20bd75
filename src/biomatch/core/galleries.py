"""Galleries and their policies."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from biomatch.accountability.policy import PRESETS, GalleryPolicy
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
    GalleryOut,
)
from biomatch.store import Gallery
from biomatch.store import repository as repo


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
        check_name("gallery name", name)
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
            galleries = session.scalars(select(Gallery).order_by(Gallery.name))
            return [_gallery_out(g, counts.get(g.id, 0)) for g in galleries]

    def get_gallery(self, actor: Principal, name: str) -> GalleryOut:
        actor.require(Action.GALLERY_READ)
        with self.db.transaction() as session:
            gallery = repo.gallery_by_name(session, name)
            return _gallery_out(gallery, repo.subject_counts(session).get(gallery.id, 0))


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
        policy=GalleryPolicy.model_validate(gallery.policy),
    )
