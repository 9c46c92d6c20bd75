"""Oversight: encounters and adjudication, the audit log, retention, key rotation."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from biomatch.accountability import encounters as enc
from biomatch.accountability import reports
from biomatch.accountability.audit import ChainReport
from biomatch.accountability.audit_filter import AuditFilter
from biomatch.accountability.crypto import MasterKey
from biomatch.accountability.policy import stored_policy
from biomatch.accountability.principal import SYSTEM, Principal
from biomatch.accountability.roles import Action
from biomatch.core.state import (
    CoreState,
)
from biomatch.errors import (
    InvalidRequest,
)
from biomatch.results import (
    AuditEntryOut,
    EncounterOut,
    RetentionFailure,
    RetentionOut,
)
from biomatch.store import Gallery, Sample, Subject, Template
from biomatch.store import repository as repo
from biomatch.store.models import Adjudication, AuditEntry, Encounter

log = logging.getLogger("biomatch.retention")


class OversightAPI(CoreState):
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

    def audit_entries(
        self,
        actor: Principal,
        after_seq: int = 0,
        limit: int = 1000,
        where: AuditFilter | None = None,
        *,
        newest_first: bool = False,
    ) -> list[AuditEntryOut]:
        """Entries after ``after_seq`` that ``where`` selects, in chain order (or newest first:
        page back with ``where.before_seq``)."""
        actor.require(Action.AUDIT_READ)
        query = select(AuditEntry).where(AuditEntry.seq > after_seq)
        if where is not None:
            query = query.where(*where.conditions())
        order = AuditEntry.seq.desc() if newest_first else AuditEntry.seq
        with self.db.transaction() as session:
            rows = session.scalars(query.order_by(order).limit(limit))
            return [AuditEntryOut.model_validate(row, from_attributes=True) for row in rows]

    def verify_audit(self, actor: Principal) -> ChainReport:
        actor.require(Action.AUDIT_READ)
        with self.db.transaction() as session:
            return self.audit.verify(session)

    def transparency_report(self, actor: Principal) -> dict[str, object]:
        actor.require(Action.AUDIT_READ)
        with self.db.transaction() as session:
            return reports.transparency(session)

    def run_retention(self, actor: Principal = SYSTEM, now: datetime | None = None) -> RetentionOut:
        """Delete expired probe images and expired enrolments, from the store and the index,
        with a deletion record (what, when, which rule) in the audit log. Each gallery runs
        in its own transaction: one that fails is logged, audited and reported, and the
        others proceed."""
        actor.require(Action.RETENTION_RUN)
        now = now or datetime.now(UTC)
        with self.db.transaction() as session:
            galleries = [(g.id, g.name) for g in session.scalars(repo.live_galleries())]
        result = RetentionOut(probes_deleted=0, subjects_deleted=0, failures=[])
        for gallery_id, name in galleries:
            try:
                probes, subjects = self._expire_gallery(actor, gallery_id, now)
            except Exception as exc:  # one gallery's failure must not stop the others
                log.exception("retention failed for gallery %r", name)
                self.indexes.forget(gallery_id)  # reloads from the store when next searched
                failure = RetentionFailure(gallery=name, error=f"{type(exc).__name__}: {exc}")
                self._audit_retention_failure(actor, failure)
                result.failures.append(failure)
                continue
            result.probes_deleted += probes
            result.subjects_deleted += subjects
        return result

    def _expire_gallery(self, actor: Principal, gallery_id: int, now: datetime) -> tuple[int, int]:
        with self._write_lock, self.db.write_transaction() as session:
            gallery = session.get(Gallery, gallery_id)
            if gallery is None:
                return 0, 0
            return (
                self._expire_probes(session, actor, gallery, now),
                self._expire_subjects(session, actor, gallery, now),
            )

    def _audit_retention_failure(self, actor: Principal, failure: RetentionFailure) -> None:
        with self._write_lock, self.db.write_transaction() as session:
            self.audit.append(
                session,
                actor,
                "retention.failed",
                gallery=failure.gallery,
                details={"error": failure.error},
            )

    def _expire_probes(
        self, session: Session, actor: Principal, gallery: Gallery, now: datetime
    ) -> int:
        expired = session.scalars(
            select(Encounter).where(
                Encounter.gallery_id == gallery.id,
                Encounter.probe_image.is_not(None),
                Encounter.probe_expires_at <= now,
            )
        ).all()
        for encounter in expired:
            encounter.probe_image = None
            self.audit.append(
                session,
                actor,
                "retention.probe_deleted",
                gallery=gallery.name,
                encounter=encounter.id,
                details={"rule": "probe_retention_hours", "expired_at": encounter.probe_expires_at},
            )
        return len(expired)

    def _expire_subjects(
        self, session: Session, actor: Principal, gallery: Gallery, now: datetime
    ) -> int:
        days = stored_policy(gallery.policy, gallery.name).enrolment_retention_days
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
        """New data key per gallery; every template, kept probe and kept reference image is
        re-encrypted under it and the old keys are destroyed. Returns the records re-encrypted."""
        actor.require(Action.OPERATOR_MANAGE)
        count = 0
        with self._write_lock, self.db.write_transaction() as session:
            for gallery in session.scalars(repo.live_galleries()).all():
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
        references = session.scalars(
            select(Sample)
            .join(Subject)
            .where(Subject.gallery_id == gallery_id, Sample.image.is_not(None))
        ).all()
        plain_references = [
            self.vault.open(session, gallery_id, s.image or b"", f"reference:{s.id}")
            for s in references
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
        for sample, plain in zip(references, plain_references, strict=True):
            sample.image = self.vault.seal(session, gallery_id, plain, f"reference:{sample.id}")
        self.vault.retire_inactive(session, gallery_id)
        return len(templates) + len(probes) + len(references)
