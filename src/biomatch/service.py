"""The core API. The HTTP service, the CLI and Python callers all go through ``BioMatch``.

Every call names the ``Principal`` it acts for; the role matrix, the gallery's policy and the
audit log apply to all of them alike.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from biomatch.accountability import encounters as enc
from biomatch.accountability import reports, tokens
from biomatch.accountability.audit import AuditLog, ChainReport, CheckpointSigner, verify_chain
from biomatch.accountability.crypto import MasterKey, load_master_key
from biomatch.accountability.policy import PRESETS, GalleryPolicy
from biomatch.accountability.principal import SYSTEM, Principal
from biomatch.accountability.ratelimit import RateLimiter
from biomatch.accountability.roles import Action, Role
from biomatch.accountability.vault import Vault
from biomatch.config import Settings
from biomatch.errors import (
    ConsentRequired,
    GalleryExists,
    InvalidRequest,
    NoReference,
    OperatorExists,
    OperatorNotFound,
    OptedOut,
    PolicyForbids,
    SearchContextMissing,
    SubjectExists,
    Unauthenticated,
)
from biomatch.extraction import ExtractedSample, extract
from biomatch.index import IndexRegistry
from biomatch.modalities import Modality, load_modality
from biomatch.results import (
    AuditEntryOut,
    CandidateOut,
    ComparisonOut,
    ConsentIn,
    EncounterOut,
    EnrolmentOut,
    GalleryOut,
    IdentificationOut,
    IssuedOperator,
    ModelRef,
    OperatorOut,
    RetentionOut,
    SampleOut,
    ScoreMeaning,
    SearchContext,
    SubjectOut,
    VerificationOut,
)
from biomatch.store import Database, Gallery, Sample, Subject, Template
from biomatch.store import repository as repo
from biomatch.store.models import Adjudication, AuditEntry, Consent, Encounter, Operator, OptOut

DEFAULT_MODALITY = "face"


@dataclass(frozen=True)
class _GalleryRef:
    id: int
    name: str
    revision: int
    policy: GalleryPolicy


class BioMatch:
    def __init__(self, settings: Settings, modalities: Sequence[str] = (DEFAULT_MODALITY,)) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.db = Database(settings.resolved_database_url)
        self.db.migrate()
        self.vault = Vault(
            load_master_key(settings.resolved_master_key_file, settings.master_key_env)
        )
        self.audit = AuditLog(
            CheckpointSigner.from_file(settings.resolved_audit_key_file),
            settings.audit_checkpoint_every,
        )
        self._modalities = {name: load_modality(name, settings) for name in modalities}
        self._indexes = IndexRegistry(settings.index)
        self._search_limit = RateLimiter(settings.search_rate_per_minute, "searches")
        self._request_limit = RateLimiter(settings.request_rate_per_minute, "requests")
        # Serialises this process's writes: index revisions and audit entries stay in order.
        self._write_lock = threading.Lock()
        self.rebuild_indexes()

    def close(self) -> None:
        self.db.dispose()

    # -- operators -------------------------------------------------------------------------

    def create_operator(self, actor: Principal, name: str, role: Role) -> IssuedOperator:
        actor.require(Action.OPERATOR_MANAGE)
        _check_name("operator name", name)
        issued = tokens.issue()
        try:
            with self._write_lock, self.db.write_transaction() as session:
                operator = Operator(
                    name=name,
                    role=role.value,
                    token_id=issued.token_id,
                    token_salt=issued.salt,
                    token_hash=issued.secret_hash,
                )
                session.add(operator)
                session.flush()
                self.audit.append(
                    session,
                    actor,
                    "operator.create",
                    details={"operator": name, "role": role.value},
                )
                return IssuedOperator(**_operator_out(operator).model_dump(), token=issued.token)
        except IntegrityError:
            raise OperatorExists(f"An operator named {name!r} exists.", operator=name) from None

    def list_operators(self, actor: Principal) -> list[OperatorOut]:
        actor.require(Action.OPERATOR_MANAGE)
        with self.db.transaction() as session:
            return [
                _operator_out(o) for o in session.scalars(select(Operator).order_by(Operator.name))
            ]

    def revoke_operator(self, actor: Principal, name: str) -> OperatorOut:
        actor.require(Action.OPERATOR_MANAGE)
        with self._write_lock, self.db.write_transaction() as session:
            operator = session.scalars(select(Operator).where(Operator.name == name)).first()
            if operator is None:
                raise OperatorNotFound(f"There is no operator {name!r}.", operator=name)
            operator.active = False
            self.audit.append(session, actor, "operator.revoke", details={"operator": name})
            return _operator_out(operator)

    def authenticate(self, token: str | None) -> Principal:
        parsed = tokens.parse(token or "")
        if parsed is None:
            raise Unauthenticated("A bearer token of the form bm_<id>_<secret> is required.")
        token_id, secret = parsed
        with self.db.transaction() as session:
            operator = session.scalars(
                select(Operator).where(Operator.token_id == token_id)
            ).first()
            if (
                operator is None
                or not operator.active
                or not tokens.matches(secret, operator.token_salt, operator.token_hash)
            ):
                raise Unauthenticated("The token is unknown, revoked or wrong.")
            principal = Principal(operator.id, operator.name, Role(operator.role))
        self._request_limit.take(principal.name)
        return principal

    # -- galleries -------------------------------------------------------------------------

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
        _check_name("gallery name", name)
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

    # -- enrolment -------------------------------------------------------------------------

    def extract(
        self,
        image: bytes,
        modality: str = DEFAULT_MODALITY,
        *,
        largest_only: bool = False,
        label: str | None = None,
    ) -> ExtractedSample:
        return extract(
            image, self.modality(modality), self.settings, largest_only=largest_only, label=label
        )

    def enrol(
        self,
        actor: Principal,
        gallery: str,
        subject_id: str,
        images: Sequence[bytes],
        modality: str = DEFAULT_MODALITY,
        *,
        largest_only: bool = False,
        add_to_existing: bool = False,
        consent: ConsentIn | None = None,
    ) -> EnrolmentOut:
        """Enrol every image or none: one failed capture rejects the whole request."""
        actor.require(Action.SUBJECT_ENROL)
        if not images:
            raise InvalidRequest("An enrolment needs at least one image.")
        self._check_enrolment_allowed(
            self._gallery_ref(gallery), subject_id, consent, add_to_existing
        )
        samples = [
            self.extract(image, modality, largest_only=largest_only, label=f"image {number}")
            for number, image in enumerate(images, start=1)
        ]
        return self.enrol_samples(
            actor, gallery, subject_id, samples, add_to_existing=add_to_existing, consent=consent
        )

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
        _check_name("subject id", subject_id)
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
                stored = [
                    self._store_sample(session, record, subject, sample) for sample in samples
                ]
                if consent is not None:
                    session.add(_consent(subject, consent, actor))
                session.flush()
                revision = repo.bump_revision(session, record.id)
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
                    samples=[_sample_out(s, t) for s, t in stored],
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
                samples=[_sample_out(sample, sample.template) for sample in subject.samples],
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
        _check_name("person reference", person_ref)
        person_hash = _person_hash(person_ref)
        with self._write_lock, self.db.write_transaction() as session:
            if (
                session.scalars(select(OptOut).where(OptOut.person_hash == person_hash)).first()
                is None
            ):
                session.add(OptOut(person_hash=person_hash, recorded_by=actor.name))
            erased = 0
            for gallery in session.scalars(select(Gallery)):
                subject = repo.find_subject(session, gallery, person_ref)
                if (
                    subject is not None
                    and not GalleryPolicy.model_validate(gallery.policy).enforcement
                ):
                    self._delete_subject(session, gallery, subject)
                    erased += 1
            self.audit.append(
                session,
                actor,
                "optout.record",
                subject=person_ref,
                details={"person_hash": person_hash, "enrolments_erased": erased},
            )
        return erased

    # -- search ----------------------------------------------------------------------------

    def verify(
        self,
        actor: Principal,
        gallery: str,
        subject_id: str,
        image: bytes,
        context: SearchContext,
        modality: str = DEFAULT_MODALITY,
        *,
        largest_only: bool = False,
    ) -> VerificationOut:
        """1:1: the probe against every sample of the claimed subject, fused by the maximum."""
        started = datetime.now(UTC)
        record = self._authorise_search(actor, gallery, "verify", context)
        if not record.policy.enforcement:
            self._refuse_opted_out(subject_id)
        plugin = self.modality(modality)
        with self.db.transaction() as session:
            subject = repo.subject_by_id(
                session, repo.gallery_by_name(session, gallery), subject_id
            )
            references = self._subject_templates(session, record.id, [subject.id], plugin.info.key)
        if not references:
            raise NoReference(
                f"Subject {subject_id!r} has no {plugin.info.key} template to compare with.",
                subject_id=subject_id,
                model=plugin.info.key,
            )
        probe = self.extract(image, modality, largest_only=largest_only)
        scores = plugin.compare(probe.template, [row[3] for row in references])
        target = self.settings.verify_target_fmr
        threshold = plugin.calibration.threshold_for(target)
        meaning = self._meaning(plugin, float(scores.max()))
        decision = "match" if meaning.score >= threshold else "no_match"
        encounter_id = self._record_search(
            actor,
            record,
            "verify",
            context,
            probe,
            image,
            started,
            threshold,
            target,
            {"subject_id": subject_id, "decision": decision, **meaning.model_dump()},
        )
        return VerificationOut(
            encounter_id=encounter_id,
            gallery=gallery,
            subject_id=subject_id,
            decision=decision,
            score=meaning.score,
            estimated_fmr=meaning.estimated_fmr,
            fmr_is_upper_bound=meaning.fmr_is_upper_bound,
            threshold=round(threshold, 6),
            target_fmr=target,
            comparisons=[
                ComparisonOut(sample_id=row[1], score=round(float(score), 6))
                for row, score in zip(references, scores, strict=True)
            ],
            model=_model_ref(plugin),
            probe_quality=probe.quality,
        )

    def identify(
        self,
        actor: Principal,
        gallery: str,
        image: bytes,
        context: SearchContext,
        modality: str = DEFAULT_MODALITY,
        *,
        top_k: int = 10,
        largest_only: bool = False,
    ) -> IdentificationOut:
        """1:N: a ranked list of candidates (leads), each with its estimated FMR."""
        started = datetime.now(UTC)
        if not 1 <= top_k <= self.settings.identify_max_top_k:
            raise InvalidRequest(
                f"top_k must be between 1 and {self.settings.identify_max_top_k}.", top_k=top_k
            )
        record = self._authorise_search(actor, gallery, "identify", context)
        plugin = self.modality(modality)
        probe = self.extract(image, modality, largest_only=largest_only)
        self._sync_index(record, plugin)
        vector = plugin.index_vector(probe.template)
        shortlist = self._indexes.search_subjects(record.id, plugin.info.key, vector, top_k)
        ranked = self._rescore(
            plugin, record, probe.template, [subject for subject, _ in shortlist]
        )
        size = self._indexes.subject_count(record.id, plugin.info.key)
        candidates = [
            self._candidate(plugin, rank, external_id, score, size)
            for rank, (external_id, score) in enumerate(ranked[:top_k], start=1)
        ]
        target = self.settings.identify_target_fmr
        encounter_id = self._record_search(
            actor,
            record,
            "identify",
            context,
            probe,
            image,
            started,
            plugin.calibration.threshold_for(target),
            target,
            {"gallery_size": size, "candidates": [c.model_dump() for c in candidates]},
        )
        return IdentificationOut(
            encounter_id=encounter_id,
            gallery=gallery,
            gallery_size=size,
            candidates=candidates,
            target_fmr=target,
            model=_model_ref(plugin),
            probe_quality=probe.quality,
        )

    # -- encounters and adjudication -------------------------------------------------------

    def list_encounters(self, actor: Principal, limit: int = 100) -> list[EncounterOut]:
        actor.require(Action.ENCOUNTER_READ)
        with self.db.transaction() as session:
            return [
                enc.encounter_view(e, session.get_one(Gallery, e.gallery_id))
                for e in enc.list_visible(session, actor, limit)
            ]

    def get_encounter(self, actor: Principal, encounter_id: str) -> EncounterOut:
        actor.require(Action.ENCOUNTER_READ)
        with self.db.transaction() as session:
            encounter = enc.load_visible(session, actor, encounter_id)
            return enc.encounter_view(encounter, session.get_one(Gallery, encounter.gallery_id))

    def adjudicate(
        self, actor: Principal, encounter_id: str, subject_id: str, decision: str, reason: str
    ) -> EncounterOut:
        """Record one reviewer's decision on one candidate, with the reason."""
        actor.require(Action.ADJUDICATE)
        if decision not in ("confirm", "reject", "inconclusive"):
            raise InvalidRequest("decision must be confirm, reject or inconclusive.")
        if len(reason.strip()) < 3:
            raise InvalidRequest("An adjudication needs a reason.")
        with self._write_lock, self.db.write_transaction() as session:
            encounter = enc.load_visible(session, actor, encounter_id)
            enc.check_adjudication(encounter, actor, subject_id)
            encounter.adjudications.append(
                Adjudication(
                    subject_external_id=subject_id,
                    reviewer=actor.name,
                    decision=decision,
                    reason=reason,
                )
            )
            session.flush()
            gallery = session.get_one(Gallery, encounter.gallery_id)
            self.audit.append(
                session,
                actor,
                "encounter.adjudicate",
                gallery=gallery.name,
                subject=subject_id,
                encounter=encounter_id,
                details={"decision": decision, "reason": reason},
            )
            return enc.encounter_view(encounter, gallery)

    # -- audit -----------------------------------------------------------------------------

    def audit_entries(
        self, actor: Principal, after_seq: int = 0, limit: int = 1000
    ) -> list[AuditEntryOut]:
        actor.require(Action.AUDIT_READ)
        with self.db.transaction() as session:
            rows = session.scalars(
                select(AuditEntry)
                .where(AuditEntry.seq > after_seq)
                .order_by(AuditEntry.seq)
                .limit(limit)
            )
            return [AuditEntryOut.model_validate(row, from_attributes=True) for row in rows]

    def verify_audit(self, actor: Principal) -> ChainReport:
        actor.require(Action.AUDIT_READ)
        with self.db.transaction() as session:
            return verify_chain(session, self.audit.public_key)

    def transparency_report(self, actor: Principal) -> dict[str, object]:
        actor.require(Action.AUDIT_READ)
        with self.db.transaction() as session:
            return reports.transparency(session)

    # -- retention and keys ----------------------------------------------------------------

    def run_retention(self, actor: Principal = SYSTEM, now: datetime | None = None) -> RetentionOut:
        """Delete expired probe images and expired enrolments, from the store and the index,
        with a deletion record (what, when, which rule) in the audit log."""
        actor.require(Action.RETENTION_RUN)
        now = now or datetime.now(UTC)
        with self._write_lock, self.db.write_transaction() as session:
            probes = self._expire_probes(session, actor, now)
            subjects = sum(
                self._expire_subjects(session, actor, gallery, now)
                for gallery in session.scalars(select(Gallery)).all()
            )
        return RetentionOut(probes_deleted=probes, subjects_deleted=subjects)

    def _expire_probes(self, session: Session, actor: Principal, now: datetime) -> int:
        expired = session.scalars(
            select(Encounter).where(
                Encounter.probe_image.is_not(None), Encounter.probe_expires_at <= now
            )
        ).all()
        for encounter in expired:
            encounter.probe_image = None
            self.audit.append(
                session,
                actor,
                "retention.probe_deleted",
                encounter=encounter.id,
                details={"rule": "probe_retention_hours", "expired_at": encounter.probe_expires_at},
            )
        return len(expired)

    def _expire_subjects(
        self, session: Session, actor: Principal, gallery: Gallery, now: datetime
    ) -> int:
        days = GalleryPolicy.model_validate(gallery.policy).enrolment_retention_days
        if days is None:
            return 0
        cutoff = now - timedelta(days=days)
        expired = session.scalars(
            select(Subject).where(Subject.gallery_id == gallery.id, Subject.created_at <= cutoff)
        ).all()
        for subject in expired:
            samples = self._delete_subject(session, gallery, subject)
            self.audit.append(
                session,
                actor,
                "retention.subject_deleted",
                gallery=gallery.name,
                subject=subject.external_id,
                details={"rule": f"enrolment_retention_days={days}", "samples": samples},
            )
        return len(expired)

    def rotate_data_keys(self, actor: Principal = SYSTEM) -> int:
        """New data key per gallery; every template and kept probe is re-encrypted under it and
        the old keys are destroyed. Returns the records re-encrypted."""
        actor.require(Action.OPERATOR_MANAGE)
        count = 0
        with self._write_lock, self.db.write_transaction() as session:
            for gallery in session.scalars(select(Gallery)).all():
                count += self._reseal_gallery(session, gallery.id)
            self.audit.append(session, actor, "keys.rotate_data", details={"records": count})
        return count

    def rotate_master_key(self, actor: Principal, new_master: MasterKey) -> int:
        """Re-wrap every gallery data key under a new master key; returns the keys re-wrapped."""
        actor.require(Action.OPERATOR_MANAGE)
        with self._write_lock, self.db.write_transaction() as session:
            count = self.vault.rewrap_all(session, new_master)
            self.audit.append(
                session,
                actor,
                "keys.rotate_master",
                details={"data_keys": count, "master_key_id": new_master.key_id},
            )
        return count

    def _reseal_gallery(self, session: Session, gallery_id: int) -> int:
        templates = session.scalars(select(Template).where(Template.gallery_id == gallery_id)).all()
        probes = session.scalars(
            select(Encounter).where(
                Encounter.gallery_id == gallery_id, Encounter.probe_image.is_not(None)
            )
        ).all()
        plain_templates = [
            self._open_template(session, gallery_id, t.model_key, t.data) for t in templates
        ]
        plain_probes = [
            self.vault.open(session, gallery_id, e.probe_image or b"", f"probe:{e.id}")
            for e in probes
        ]
        self.vault.new_version(session, gallery_id)
        for template, plain in zip(templates, plain_templates, strict=True):
            template.data = self.vault.seal(
                session, gallery_id, plain, f"template:{template.model_key}"
            )
        for encounter, plain in zip(probes, plain_probes, strict=True):
            encounter.probe_image = self.vault.seal(
                session, gallery_id, plain, f"probe:{encounter.id}"
            )
        self.vault.retire_inactive(session, gallery_id)
        return len(templates) + len(probes)

    # -- internals -------------------------------------------------------------------------

    def modality(self, name: str) -> Modality:
        if name not in self._modalities:
            self._modalities[name] = load_modality(name, self.settings)
        return self._modalities[name]

    def rebuild_indexes(self) -> None:
        """Rebuild every in-memory index from the store (start-up, or after a crash)."""
        with self.db.transaction() as session:
            galleries = [_ref(g) for g in session.scalars(select(Gallery))]
        for gallery in galleries:
            for plugin in self._modalities.values():
                self._sync_index(gallery, plugin)

    def _authorise_search(
        self, actor: Principal, gallery: str, mode: str, context: SearchContext
    ) -> _GalleryRef:
        actor.require(Action.SEARCH)
        record = self._gallery_ref(gallery)
        policy = record.policy
        if mode not in policy.modes:
            raise PolicyForbids(f"Gallery {gallery!r} does not allow {mode}.", allowed=policy.modes)
        if actor.role not in policy.search_roles:
            raise PolicyForbids(
                f"Gallery {gallery!r} may not be searched by role {actor.role.value}."
            )
        if context.purpose not in self.settings.purposes:
            raise SearchContextMissing(
                f"Purpose {context.purpose!r} is not one of the configured purposes.",
                purposes=self.settings.purposes,
            )
        if policy.case_reference_required and not (context.case_reference or "").strip():
            raise SearchContextMissing(f"Gallery {gallery!r} requires a case reference.")
        self._search_limit.take(actor.name)
        return record

    def _record_search(
        self,
        actor: Principal,
        gallery: _GalleryRef,
        kind: str,
        context: SearchContext,
        probe: ExtractedSample,
        image: bytes,
        started: datetime,
        threshold: float,
        target_fmr: float,
        result: dict[str, object],
    ) -> str:
        """The encounter and its audit entry, in one transaction; the probe image is kept
        (encrypted) only as long as the gallery's policy allows."""
        encounter_id = str(uuid.uuid4())
        ended = datetime.now(UTC)
        with self._write_lock, self.db.write_transaction() as session:
            record = session.get_one(Gallery, gallery.id)
            encounter = enc.new_encounter(
                encounter_id=encounter_id,
                kind=kind,
                actor=actor,
                gallery=record,
                context=context,
                started=started,
                ended=ended,
                model_key=probe.model_key,
                threshold=threshold,
                target_fmr=target_fmr,
                probe_sha256=probe.image_sha256,
                probe_quality=probe.quality_scores(),
                result=result,
            )
            expiry = enc.probe_expiry(gallery.policy, started)
            if expiry is not None:
                encounter.probe_image = self.vault.seal(
                    session, gallery.id, image, f"probe:{encounter_id}"
                )
                encounter.probe_expires_at = expiry
            session.add(encounter)
            self.audit.append(
                session,
                actor,
                f"search.{kind}",
                gallery=gallery.name,
                encounter=encounter_id,
                subject=str(result.get("subject_id")) if kind == "verify" else None,
                details={
                    "period": [started.isoformat(), ended.isoformat()],
                    "purpose": context.purpose,
                    "legal_authority": context.legal_authority,
                    "case_reference": context.case_reference,
                    "probe_sha256": probe.image_sha256,
                    "model": probe.model_key,
                    "result": result,
                },
            )
        return encounter_id

    def _check_enrolment_allowed(
        self, gallery: _GalleryRef, subject_id: str, consent: ConsentIn | None, adding: bool
    ) -> None:
        if not gallery.policy.enforcement:
            self._refuse_opted_out(subject_id)
        if gallery.policy.consent_required and consent is None and not adding:
            raise ConsentRequired(
                f"Gallery {gallery.name!r} needs a consent record (notice version, purpose, "
                "term) with each enrolment."
            )

    def _refuse_opted_out(self, person_ref: str) -> None:
        with self.db.transaction() as session:
            found = session.scalars(
                select(OptOut).where(OptOut.person_hash == _person_hash(person_ref))
            ).first()
        if found is not None:
            raise OptedOut(
                "This person is in the opt-out registry: use a non-biometric check.",
                subject_id=person_ref,
            )

    def _gallery_ref(self, name: str) -> _GalleryRef:
        with self.db.transaction() as session:
            return _ref(repo.gallery_by_name(session, name))

    def _sync_index(self, gallery: _GalleryRef, plugin: Modality) -> None:
        def load() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            with self.db.transaction() as session:
                rows = repo.gallery_templates(session, gallery.id, plugin.info.key)
                vectors = [
                    plugin.index_vector(
                        self._open_template(session, gallery.id, plugin.info.key, data)
                    )
                    for _, _, data in rows
                ]
            return (
                np.array([row[0] for row in rows], dtype=np.int64),
                np.array([row[1] for row in rows], dtype=np.int64),
                np.stack(vectors) if vectors else np.empty((0, plugin.info.dimensions)),
            )

        self._indexes.sync(
            gallery.id, plugin.info.key, plugin.info.dimensions, gallery.revision, load
        )

    def _index_additions(
        self, gallery_id: int, revision: int, additions: list[tuple[int, int, str, bytes]]
    ) -> None:
        for model_key in {row[2] for row in additions}:
            plugin = next(p for p in self._modalities.values() if p.info.key == model_key)
            rows = [
                (template_id, subject_id, plugin.index_vector(data))
                for template_id, subject_id, key, data in additions
                if key == model_key
            ]
            self._indexes.apply_added(gallery_id, model_key, revision, rows)

    def _subject_templates(
        self, session: Session, gallery_id: int, subject_ids: list[int], model_key: str
    ) -> list[tuple[int, int, int, bytes]]:
        """(template id, sample id, subject id, plaintext template) of the subjects."""
        return [
            (t_id, sample_id, subject_id, self._open_template(session, gallery_id, model_key, data))
            for t_id, sample_id, subject_id, data in repo.subject_templates(
                session, subject_ids, model_key
            )
        ]

    def _open_template(
        self, session: Session, gallery_id: int, model_key: str, sealed: bytes
    ) -> bytes:
        return self.vault.open(session, gallery_id, sealed, f"template:{model_key}")

    def _store_sample(
        self, session: Session, gallery: Gallery, subject: Subject, sample: ExtractedSample
    ) -> tuple[Sample, Template]:
        record = Sample(
            subject_id=subject.id,
            modality=sample.modality,
            image_sha256=sample.image_sha256,
            width=sample.width,
            height=sample.height,
            quality=sample.quality_scores(),
            capture={"face_box": sample.quality.face_box, "label": sample.label},
        )
        session.add(record)
        session.flush()
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
        return record, template

    def _delete_subject(self, session: Session, gallery: Gallery, subject: Subject) -> int:
        """Delete the subject's records and index entries; returns the samples deleted."""
        removed = session.execute(
            select(Template.id, Template.model_key).where(Template.subject_id == subject.id)
        ).all()
        deleted = len(subject.samples)
        session.delete(subject)
        session.flush()
        revision = repo.bump_revision(session, gallery.id)
        for model_key in {key for _, key in removed}:
            ids = [template_id for template_id, key in removed if key == model_key]
            self._indexes.apply_removed(gallery.id, model_key, revision, ids)
        return deleted

    def _rescore(
        self, plugin: Modality, gallery: _GalleryRef, probe: bytes, subject_ids: list[int]
    ) -> list[tuple[str, float]]:
        """Full comparison of the probe with every template of the shortlisted subjects."""
        if not subject_ids:
            return []
        with self.db.transaction() as session:
            rows = self._subject_templates(session, gallery.id, subject_ids, plugin.info.key)
            names = repo.external_ids(session, subject_ids)
        scores = plugin.compare(probe, [row[3] for row in rows])
        best: dict[int, float] = {}
        for row, score in zip(rows, scores, strict=True):
            best[row[2]] = max(best.get(row[2], -np.inf), float(score))
        return sorted(((names[s], score) for s, score in best.items()), key=lambda p: -p[1])

    def _meaning(self, plugin: Modality, score: float) -> ScoreMeaning:
        estimate = plugin.calibration.estimate(score)
        return ScoreMeaning(
            score=round(score, 6),
            estimated_fmr=estimate.value,
            fmr_is_upper_bound=estimate.is_upper_bound,
        )

    def _candidate(
        self, plugin: Modality, rank: int, external_id: str, score: float, size: int
    ) -> CandidateOut:
        meaning = self._meaning(plugin, score)
        return CandidateOut(
            rank=rank,
            subject_id=external_id,
            score=meaning.score,
            estimated_fmr=meaning.estimated_fmr,
            fmr_is_upper_bound=meaning.fmr_is_upper_bound,
            expected_false_matches=meaning.estimated_fmr * size,
            strong=meaning.estimated_fmr <= self.settings.identify_target_fmr,
        )

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


def _choose_policy(policy: GalleryPolicy | None, preset: str | None) -> GalleryPolicy:
    if policy is not None and preset is not None:
        raise InvalidRequest("Give a policy or a preset, not both.")
    if preset is None:
        return policy or GalleryPolicy()
    if preset not in PRESETS:
        raise InvalidRequest(f"Unknown policy preset {preset!r}; known: {', '.join(PRESETS)}.")
    return PRESETS[preset]


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


def _person_hash(person_ref: str) -> str:
    return hashlib.sha256(f"biomatch-optout:{person_ref.strip().casefold()}".encode()).hexdigest()


def _ref(gallery: Gallery) -> _GalleryRef:
    return _GalleryRef(
        gallery.id, gallery.name, gallery.revision, GalleryPolicy.model_validate(gallery.policy)
    )


def _check_name(what: str, value: str) -> None:
    if not value or len(value) > 128 or value != value.strip() or "/" in value:
        raise InvalidRequest(
            f"The {what} must be 1-128 characters, without '/' or surrounding spaces.",
            value=value,
        )


def _operator_out(operator: Operator) -> OperatorOut:
    return OperatorOut(
        name=operator.name,
        role=operator.role,
        active=operator.active,
        created_at=operator.created_at,
    )


def _gallery_out(gallery: Gallery, subjects: int) -> GalleryOut:
    return GalleryOut(
        name=gallery.name,
        description=gallery.description,
        created_at=gallery.created_at,
        subjects=subjects,
        policy=GalleryPolicy.model_validate(gallery.policy),
    )


def _sample_out(sample: Sample, template: Template) -> SampleOut:
    return SampleOut(
        sample_id=sample.id,
        modality=sample.modality,
        model=template.model_key,
        image_sha256=sample.image_sha256,
        width=sample.width,
        height=sample.height,
        quality=sample.quality,
        created_at=sample.created_at,
    )


def _model_ref(plugin: Modality) -> ModelRef:
    return ModelRef(
        modality=plugin.info.modality, model_id=plugin.info.model_id, version=plugin.info.version
    )


__all__ = ["SYSTEM", "BioMatch"]
