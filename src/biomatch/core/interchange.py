"""ISO/IEC 19794-2 records in and out of a gallery: a subject's finger templates exported as
one record, and a record made by another system enrolled so that it can be searched."""

from __future__ import annotations

import hashlib

from biomatch.accountability.principal import Principal
from biomatch.accountability.roles import Action
from biomatch.core.enrolment import EnrolmentAPI
from biomatch.errors import InvalidTemplate, NoReference
from biomatch.extraction import ExtractedSample
from biomatch.modalities.finger import FingerModality, iso19794
from biomatch.modalities.finger.template import FingerTemplate
from biomatch.results import CaptureQuality, EnrolmentOut, QualityCheckOut
from biomatch.store import repository as repo

MIN_IMPORTED_MINUTIAE = 3


class InterchangeAPI(EnrolmentAPI):
    def export_iso19794(
        self, actor: Principal, gallery: str, subject_id: str, version: iso19794.Version = "2011"
    ) -> bytes:
        """The subject's finger templates as one ISO/IEC 19794-2 record (audited)."""
        actor.require(Action.SUBJECT_READ)
        with self._write_lock, self.db.write_transaction() as session:
            record = repo.gallery_by_name(session, gallery)
            subject = repo.subject_by_id(session, record, subject_id)
            plugin = self.modality("finger")
            rows = self._subject_templates(session, record.id, [subject.id], plugin.info.key)
            if rows:
                self.audit.append(
                    session,
                    actor,
                    "subject.export",
                    gallery=gallery,
                    subject=subject_id,
                    details={"format": f"ISO/IEC 19794-2:{version}", "templates": len(rows)},
                )
        return _encode(rows, subject_id, version)

    def import_iso19794(
        self,
        actor: Principal,
        gallery: str,
        subject_id: str,
        data: bytes,
        *,
        add_to_existing: bool = False,
    ) -> EnrolmentOut:
        """Enrol every finger view of an ISO/IEC 19794-2 record as one sample each."""
        actor.require(Action.SUBJECT_ENROL)
        samples = _samples_from_record(self.modality("finger"), data)
        return self.enrol_samples(
            actor, gallery, subject_id, samples, add_to_existing=add_to_existing
        )


def _encode(
    rows: list[tuple[int, int, int, bytes]], subject_id: str, version: iso19794.Version
) -> bytes:
    if not rows:
        raise NoReference(f"Subject {subject_id!r} has no finger template.", subject_id=subject_id)
    views = []
    for row in rows:
        template = FingerTemplate.from_bytes(row[3])
        views.append(
            iso19794.FingerView(
                template.minutiae,
                template.width,
                template.height,
                template.resolution_ppi,
                template.finger_position,
            )
        )
    return iso19794.encode(views, version)


def _samples_from_record(plugin: object, data: bytes) -> list[ExtractedSample]:
    if not isinstance(plugin, FingerModality):
        raise InvalidTemplate("The finger modality is not BioMatch's own plug-in.")
    views = iso19794.decode(data)
    samples = []
    for number, view in enumerate(views, start=1):
        if view.minutiae.shape[0] < MIN_IMPORTED_MINUTIAE:
            raise InvalidTemplate(f"Finger view {number} holds too few minutiae to match.")
        template = plugin.template_from_minutiae(
            view.minutiae, view.width, view.height, view.finger_position
        )
        count = float(view.minutiae.shape[0])
        samples.append(
            ExtractedSample(
                modality="finger",
                model_key=plugin.info.key,
                template=template.to_bytes(),
                image_sha256=hashlib.sha256(data).hexdigest(),
                width=view.width,
                height=view.height,
                quality=CaptureQuality(
                    passed=True,
                    checks=[
                        QualityCheckOut(
                            name="minutiae_count",
                            score=count,
                            threshold=f">= {MIN_IMPORTED_MINUTIAE}",
                            passed=True,
                            message="Imported from an ISO/IEC 19794-2 record.",
                        )
                    ],
                ),
                label=f"iso19794-2 view {number}",
            )
        )
    return samples
