"""Enrolment, subject records, erasure, consent and opt-out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from biomatch.accountability.policy import stored_policy
from biomatch.accountability.principal import Principal
from biomatch.accountability.roles import Action
from biomatch.core.probe import ProbeItem
from biomatch.core.state import (
    DEFAULT_MODALITY,
    CoreState,
    GalleryRef,
    check_name,
    person_hash,
)
from biomatch.errors import (
    ConsentRequired,
    InvalidRequest,
    SubjectExists,
    TooManyImages,
)
from biomatch.extraction import ExtractedSample
from biomatch.results import (
    ConsentIn,
    EnrolmentOut,
    SampleOut,
    SubjectOut,
)
from biomatch.store import Gallery, Sample, Subject, Template
from biomatch.store import repository as repo
from biomatch.store.changes import record_changes
from biomatch.store.models import Consent, OptOut

MAX_ENROLLED_POSITIONS = 10


class EnrolmentAPI(CoreState):
    def enrol(
        self,
        actor: Principal,
        gallery: str,
        subject_id: str,
        images: Sequence[bytes],
        modality: str = DEFAULT_MODALITY,
        *,
        primary_only: bool = False,
        add_to_existing: bool = False,
        consent: ConsentIn | None = None,
        layout: str | None = None,
        hand: str | None = None,
    ) -> EnrolmentOut:
        """Enrol every image or none: one failed capture rejects the whole request. With a
        ``layout`` (and its ``hand``), each image is a split capture, enrolled as its parts
        (``enrol_probe_items``: the parts that fail the gate are left out and listed)."""
        if layout is not None or hand is not None:
            items = [ProbeItem(modality, image, layout=layout, hand=hand) for image in images]
            return self.enrol_probe_items(
                actor, gallery, subject_id, items, add_to_existing=add_to_existing, consent=consent
            )
        actor.require(Action.SUBJECT_ENROL)
        subject_id = check_name("subject id", subject_id)
        if not images:
            raise InvalidRequest("An enrolment needs at least one image.")
        self._check_image_count(len(images))
        self._check_enrolment_allowed(
            self._gallery_ref(gallery), subject_id, consent, add_to_existing
        )
        samples = [
            self.extract(
                image,
                modality,
                primary_only=primary_only,
                label=f"image {number}",
                keep_image=True,
            )
            for number, image in enumerate(images, start=1)
        ]
        return self.enrol_samples(
            actor, gallery, subject_id, samples, add_to_existing=add_to_existing, consent=consent
        )

    def enrol_positions(
        self,
        actor: Principal,
        gallery: str,
        subject_id: str,
        captures: Sequence[tuple[int, bytes]],
        modality: str = "finger",
        *,
        add_to_existing: bool = False,
        consent: ConsentIn | None = None,
    ) -> EnrolmentOut:
        """Enrol (position, image) pairs, e.g. up to ten fingers by ANSI/NIST code: every
        capture or none. The plug-in writes the position into each template."""
        items = [ProbeItem(modality, image, position=position) for position, image in captures]
        return self.enrol_probe_items(
            actor, gallery, subject_id, items, add_to_existing=add_to_existing, consent=consent
        )

    def enrol_probe_items(
        self,
        actor: Principal,
        gallery: str,
        subject_id: str,
        items: Sequence[ProbeItem],
        *,
        add_to_existing: bool = False,
        consent: ConsentIn | None = None,
    ) -> EnrolmentOut:
        """Enrol captures as a probe holds them (each with its plug-in and position; a
        four-finger photo split into its fingers): every capture or none, except the parts
        of a split capture that fail the gate (``CoreState.extract_items``): those are left
        out and listed in the answer."""
        actor.require(Action.SUBJECT_ENROL)
        subject_id = check_name("subject id", subject_id)
        self._gallery_ref(gallery)  # fail fast, before any model runs
        captures = self.expand_probe(items)
        if not 1 <= len(captures) <= MAX_ENROLLED_POSITIONS:
            raise InvalidRequest(f"Enrol 1 to {MAX_ENROLLED_POSITIONS} captures at a time.")
        work = []
        for number, item in enumerate(captures, start=1):
            plugin = self.modality(item.plugin or item.modality)
            work.append((item, plugin, f"{plugin.info.modality} {item.position or number}"))
        extracted, left_out = self.extract_items(work, keep_image=True)
        samples = [sample for sample in extracted if sample is not None]
        enrolled = self.enrol_samples(
            actor, gallery, subject_id, samples, add_to_existing=add_to_existing, consent=consent
        )
        return enrolled.model_copy(update={"left_out": left_out})

    def enrol_samples(
        self,
        actor: Principal,
        gallery: str,
        subject_id: str,
        samples: Sequence[ExtractedSample],
        *,
        add_to_existing: bool = False,
        consent: ConsentIn | None = None,
    ) -> EnrolmentOut:
        actor.require(Action.SUBJECT_ENROL)
        subject_id = check_name("subject id", subject_id)
        if not samples:
            raise InvalidRequest("An enrolment needs at least one sample.")
        self._check_enrolment_allowed(
            self._gallery_ref(gallery), subject_id, consent, add_to_existing
        )
        with self._write_lock:
            with self.db.write_transaction() as session:
                record = repo.gallery_by_name(session, gallery)
                subject, created = self._subject_for_enrolment(
                    session, record, subject_id, add_to_existing
                )
                keep = stored_policy(record.policy, record.name).keep_reference_images
                stored = [
                    self._store_sample(session, record, subject, sample, keep) for sample in samples
                ]
                if consent is not None:
                    session.add(_consent(subject, consent, actor))
                session.flush()
                revision = record_changes(
                    session, record.id, added=[(t.id, subject.id, t.model_key) for _, t in stored]
                )
                self.audit.append(
                    session,
                    actor,
                    "subject.enrol",
                    gallery=gallery,
                    subject=subject_id,
                    details={
                        "created": created,
                        "samples": [s.id for s, _ in stored],
                        "image_sha256": [sample.image_sha256 for sample in samples],
                        "models": sorted({sample.model_key for sample in samples}),
                        "consent_notice": consent.notice_version if consent else None,
                    },
                )
                result = EnrolmentOut(
                    gallery=gallery,
                    subject_id=subject_id,
                    created=created,
                    samples=[_sample_out(s) for s, _ in stored],
                )
                additions = [
                    (template.id, subject.id, template.model_key, sample.template)
                    for (_, template), sample in zip(stored, samples, strict=True)
                ]
            self._index_additions(record.id, revision, additions)
        return result

    def get_subject(self, actor: Principal, gallery: str, subject_id: str) -> SubjectOut:
        actor.require(Action.SUBJECT_READ)
        with self.db.transaction() as session:
            record = repo.gallery_by_name(session, gallery)
            subject = repo.subject_by_id(session, record, subject_id)
            return SubjectOut(
                gallery=gallery,
                subject_id=subject_id,
                created_at=subject.created_at,
                samples=[_sample_out(sample) for sample in subject.samples],
            )

    def erase_subject(
        self, actor: Principal, gallery: str, subject_id: str, reason: str = "erasure request"
    ) -> int:
        """Remove every sample, template, consent and index entry of the subject; only the
        audit trail of the erasure remains. Returns the number of samples erased."""
        actor.require(Action.SUBJECT_ERASE)
        with self._write_lock, self.db.write_transaction() as session:
            record = repo.gallery_by_name(session, gallery)
            subject = repo.subject_by_id(session, record, subject_id)
            erased = self._delete_subject(session, record, subject)
            self.audit.append(
                session,
                actor,
                "subject.erase",
                gallery=gallery,
                subject=subject_id,
                details={"samples": erased, "reason": reason},
            )
        return erased

    def record_optout(self, actor: Principal, person_ref: str) -> int:
        """Add the person to the opt-out registry and erase their enrolments in galleries that
        honour it (non-enforcement). Returns the number of enrolments erased."""
        actor.require(Action.OPTOUT_RECORD)
        person_ref = check_name("person reference", person_ref)
        hashed = person_hash(person_ref)
        with self._write_lock, self.db.write_transaction() as session:
            if session.scalars(select(OptOut).where(OptOut.person_hash == hashed)).first() is None:
                session.add(OptOut(person_hash=hashed, recorded_by=actor.name))
            erased = 0
            for gallery in session.scalars(repo.live_galleries()):
                subject = repo.find_subject(session, gallery, person_ref)
                if (
                    subject is not None
                    and not stored_policy(gallery.policy, gallery.name).enforcement
                ):
                    self._delete_subject(session, gallery, subject)
                    erased += 1
            self.audit.append(
                session,
                actor,
                "optout.record",
                subject=person_ref,
                details={"person_hash": hashed, "enrolments_erased": erased},
            )
        return erased

    def _check_image_count(self, count: int) -> None:
        limit = self.settings.max_images_per_enrolment
        if count > limit:
            raise TooManyImages(
                f"{count} images in one enrolment; the limit is {limit}.", limit=limit
            )

    def _check_enrolment_allowed(
        self, gallery: GalleryRef, subject_id: str, consent: ConsentIn | None, adding: bool
    ) -> None:
        if not gallery.policy.enforcement:
            self._refuse_opted_out(subject_id)
        if gallery.policy.consent_required and consent is None and not adding:
            raise ConsentRequired(
                f"Gallery {gallery.name!r} needs a consent record (notice version, purpose, "
                "term) with each enrolment."
            )

    def _store_sample(
        self,
        session: Session,
        gallery: Gallery,
        subject: Subject,
        sample: ExtractedSample,
        keep_image: bool,
    ) -> tuple[Sample, Template]:
        record = Sample(
            subject_id=subject.id,
            modality=sample.modality,
            image_sha256=sample.image_sha256,
            width=sample.width,
            height=sample.height,
            quality=sample.quality_scores(),
            capture={"region": sample.quality.region, "label": sample.label},
        )
        session.add(record)
        session.flush()
        if keep_image and sample.image is not None:
            record.image = self.vault.seal(
                session, gallery.id, sample.image, f"reference:{record.id}"
            )
        template = Template(
            sample_id=record.id,
            subject_id=subject.id,
            gallery_id=gallery.id,
            model_key=sample.model_key,
            data=self.vault.seal(
                session, gallery.id, sample.template, f"template:{sample.model_key}"
            ),
        )
        session.add(template)
        record.templates.append(template)
        return record, template

    def _subject_for_enrolment(
        self, session: Session, gallery: Gallery, subject_id: str, add_to_existing: bool
    ) -> tuple[Subject, bool]:
        existing = repo.find_subject(session, gallery, subject_id)
        if existing is not None:
            if not add_to_existing:
                raise SubjectExists(
                    f"Gallery {gallery.name!r} already has subject {subject_id!r}.",
                    gallery=gallery.name,
                    subject_id=subject_id,
                )
            return existing, False
        if add_to_existing:
            repo.subject_by_id(session, gallery, subject_id)  # raises SubjectNotFound
        subject = Subject(gallery_id=gallery.id, external_id=subject_id)
        session.add(subject)
        session.flush()
        return subject, True


def _consent(subject: Subject, consent: ConsentIn, actor: Principal) -> Consent:
    given = datetime.now(UTC)
    expires = given + timedelta(days=consent.term_days) if consent.term_days else None
    return Consent(
        subject_id=subject.id,
        notice_version=consent.notice_version,
        purpose=consent.purpose,
        given_at=given,
        expires_at=expires,
        recorded_by=actor.name,
    )


def _sample_out(sample: Sample) -> SampleOut:
    return SampleOut(
        sample_id=sample.id,
        modality=sample.modality,
        model=sample.templates[0].model_key,
        models=[template.model_key for template in sample.templates],
        image_kept=sample.image is not None,
        image_sha256=sample.image_sha256,
        width=sample.width,
        height=sample.height,
        quality=sample.quality,
        created_at=sample.created_at,
    )
