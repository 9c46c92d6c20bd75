"""Standard template records in and out of a gallery (ISO/IEC 19794-2 for fingers): a
subject's templates exported as one record, and a record made by another system enrolled so
that it can be searched. Any plug-in that implements ``InterchangeFormat`` takes part."""

from __future__ import annotations

import hashlib

from biomatch.accountability.principal import Principal
from biomatch.accountability.roles import Action
from biomatch.core.enrolment import EnrolmentAPI
from biomatch.errors import InvalidTemplate, NoReference
from biomatch.extraction import ExtractedSample, capture_quality
from biomatch.modalities import Capture, InterchangeFormat, Modality
from biomatch.results import EnrolmentOut
from biomatch.store import repository as repo


class InterchangeAPI(EnrolmentAPI):
    def export_iso19794(
        self, actor: Principal, gallery: str, subject_id: str, version: str = "2011"
    ) -> bytes:
        """The subject's finger templates as one ISO/IEC 19794-2 record (audited)."""
        return self.export_record(actor, gallery, subject_id, "finger", version)

    def import_iso19794(
        self,
        actor: Principal,
        gallery: str,
        subject_id: str,
        data: bytes,
        *,
        add_to_existing: bool = False,
    ) -> EnrolmentOut:
        return self.import_record(
            actor, gallery, subject_id, data, "finger", add_to_existing=add_to_existing
        )

    def export_record(
        self, actor: Principal, gallery: str, subject_id: str, modality: str, version: str
    ) -> bytes:
        actor.require(Action.SUBJECT_READ)
        plugin = self.modality(modality)
        codec = _codec(plugin)
        with self._write_lock, self.db.write_transaction() as session:
            record = repo.gallery_by_name(session, gallery)
            subject = repo.subject_by_id(session, record, subject_id)
            # Every template of the plug-in's family: contact and contactless captures alike.
            family = plugin.info.comparison_family
            keys = [
                key
                for key in repo.gallery_model_keys(session, record.id)
                if self.family_of(key) == family
            ]
            rows = self._subject_templates(session, record.id, [subject.id], keys)
            if not rows:
                raise NoReference(
                    f"Subject {subject_id!r} has no {plugin.info.key} template.",
                    subject_id=subject_id,
                )
            data = codec.export_record([row[3] for row in rows], version)
            self.audit.append(
                session,
                actor,
                "subject.export",
                gallery=gallery,
                subject=subject_id,
                details={"format": f"{codec.interchange_name}:{version}", "templates": len(rows)},
            )
        return data

    def import_record(
        self,
        actor: Principal,
        gallery: str,
        subject_id: str,
        data: bytes,
        modality: str,
        *,
        add_to_existing: bool = False,
    ) -> EnrolmentOut:
        """Enrol every view of a record as one sample each."""
        actor.require(Action.SUBJECT_ENROL)
        plugin = self.modality(modality)
        digest = hashlib.sha256(data).hexdigest()
        samples = [
            ExtractedSample(
                modality=plugin.info.modality,
                model_key=plugin.info.key,
                template=view.template,
                image_sha256=digest,
                width=view.width,
                height=view.height,
                quality=capture_quality(Capture(view.quality)),
                label=view.label,
            )
            for view in _codec(plugin).import_record(data)
        ]
        return self.enrol_samples(
            actor, gallery, subject_id, samples, add_to_existing=add_to_existing
        )


def _codec(plugin: Modality) -> InterchangeFormat:
    if not isinstance(plugin, InterchangeFormat):
        raise InvalidTemplate(f"The {plugin.info.key} plug-in reads and writes no record format.")
    return plugin
