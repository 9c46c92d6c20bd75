"""Human review of 1:N leads: the reviewer's queue and the candidates' reference photos."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from biomatch.accountability import encounters as enc
from biomatch.accountability.policy import GalleryPolicy
from biomatch.accountability.principal import Principal
from biomatch.accountability.roles import Action
from biomatch.core.state import CoreState
from biomatch.errors import AdjudicationRefused, ImageNotKept
from biomatch.results import ReviewItemOut
from biomatch.store import Gallery
from biomatch.store import repository as repo
from biomatch.store.models import Encounter


class ReviewAPI(CoreState):
    def review_queue(self, actor: Principal, limit: int = 100) -> list[ReviewItemOut]:
        """1:N encounters with a candidate that is still a lead and that this reviewer has
        not judged, oldest first; a reviewer's own searches never appear."""
        actor.require(Action.ADJUDICATE)
        queue: list[ReviewItemOut] = []
        with self.db.transaction() as session:
            galleries = {g.id: g for g in session.scalars(select(Gallery))}
            encounters = session.scalars(
                select(Encounter)
                .where(Encounter.kind == "identify", Encounter.operator != actor.name)
                .order_by(Encounter.started_at, Encounter.id)
                .options(selectinload(Encounter.adjudications))
            )
            for encounter in encounters:
                item = _review_item(encounter, galleries[encounter.gallery_id], actor)
                if item is not None:
                    queue.append(item)
                if len(queue) >= limit:
                    break
        return queue

    def candidate_reference_image(
        self, actor: Principal, encounter_id: str, subject_id: str
    ) -> bytes:
        """The kept enrolment photo of one candidate of a 1:N encounter, for its reviewers
        and for the operator who made the search (audited)."""
        actor.require(Action.CANDIDATE_IMAGE_READ)
        with self._write_lock, self.db.write_transaction() as session:
            encounter = enc.load_visible(session, actor, encounter_id)
            candidates = {c.subject_id: c for c in enc.candidates_of(encounter)}
            if subject_id not in candidates:
                raise AdjudicationRefused(
                    f"{subject_id!r} is not a candidate of this encounter.", subject_id=subject_id
                )
            gallery = session.get_one(Gallery, encounter.gallery_id)
            subject = repo.subject_by_id(session, gallery, subject_id)
            modalities = candidates[subject_id].modalities or ["face"]
            kept = [s for s in subject.samples if s.image is not None]
            kept.sort(key=lambda s: (s.modality not in modalities, s.id))
            if not kept:
                raise ImageNotKept(f"No reference photo of {subject_id!r} is kept.")
            sample = kept[0]
            image = self.vault.open(
                session, gallery.id, sample.image or b"", f"reference:{sample.id}"
            )
            self.audit.append(
                session,
                actor,
                "image.candidate.read",
                gallery=gallery.name,
                subject=subject_id,
                encounter=encounter_id,
                details={"sample": sample.id, "image_sha256": sample.image_sha256},
            )
        return image


def _review_item(encounter: Encounter, gallery: Gallery, actor: Principal) -> ReviewItemOut | None:
    view = enc.encounter_view(encounter, gallery)
    judged = {a.subject_id for a in view.adjudications if a.reviewer == actor.name}
    open_candidates = [
        c for c in view.candidates if c.status == "lead" and c.subject_id not in judged
    ]
    if not open_candidates:
        return None
    return ReviewItemOut(
        encounter_id=encounter.id,
        gallery=gallery.name,
        operator=encounter.operator,
        started_at=encounter.started_at,
        purpose=encounter.purpose,
        case_reference=encounter.case_reference,
        training=GalleryPolicy.model_validate(gallery.policy).training,
        probe_image_kept=encounter.probe_image is not None,
        open_candidates=len(open_candidates),
    )
