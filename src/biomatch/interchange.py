"""ISO/IEC 19794-2 records in and out of a gallery: a subject's finger templates exported as
one record, and a record made by another system enrolled so that it can be searched."""

from __future__ import annotations

import hashlib

from biomatch.errors import InvalidTemplate, NoReference
from biomatch.extraction import ExtractedSample
from biomatch.modalities.finger import FingerModality, iso19794
from biomatch.modalities.finger.template import FingerTemplate
from biomatch.results import CaptureQuality, EnrolmentOut, QualityCheckOut
from biomatch.service import BioMatch
from biomatch.store import repository as repo

MIN_IMPORTED_MINUTIAE = 3


def export_subject(
    core: BioMatch, gallery: str, subject_id: str, version: iso19794.Version = "2011"
) -> bytes:
    plugin = core.modality("finger")
    with core.db.transaction() as session:
        record = repo.gallery_by_name(session, gallery)
        subject = repo.subject_by_id(session, record, subject_id)
        rows = repo.subject_templates(session, [subject.id], plugin.info.key)
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


def enrol_record(
    core: BioMatch,
    gallery: str,
    subject_id: str,
    data: bytes,
    *,
    add_to_existing: bool = False,
) -> EnrolmentOut:
    """Enrol every finger view of an ISO/IEC 19794-2 record as one sample each."""
    plugin = core.modality("finger")
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
    return core.enrol_samples(gallery, subject_id, samples, add_to_existing=add_to_existing)
