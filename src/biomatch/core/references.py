"""Kept reference images: shown to reviewers, and templated again by a new model."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from biomatch.accountability import encounters as enc
from biomatch.accountability.principal import Principal
from biomatch.accountability.roles import Action
from biomatch.core.enrolment import EnrolmentAPI
from biomatch.core.indexing import IndexedTemplate
from biomatch.errors import BioMatchError, ImageNotKept, SubjectNotFound
from biomatch.extraction import extract
from biomatch.modalities import Modality
from biomatch.results import TemplateUpgradeOut
from biomatch.store import Gallery, Sample, Subject, Template
from biomatch.store import repository as repo
from biomatch.store.changes import record_changes

Progress = Callable[[int, int], None]


class ReferencesAPI(EnrolmentAPI):
    def reference_image(
        self, actor: Principal, gallery: str, subject_id: str, sample_id: int
    ) -> bytes:
        """A kept enrolment image, for a reviewer adjudicating a lead (audited)."""
        actor.require(Action.IMAGE_READ)
        with self._write_lock, self.db.write_transaction() as session:
            record = repo.gallery_by_name(session, gallery)
            subject = repo.subject_by_id(session, record, subject_id)
            sample = next((s for s in subject.samples if s.id == sample_id), None)
            if sample is None:
                raise SubjectNotFound(
                    f"Subject {subject_id!r} has no sample {sample_id}.", sample_id=sample_id
                )
            if sample.image is None:
                raise ImageNotKept(f"Sample {sample_id}'s image is not kept.", sample_id=sample_id)
            image = self.vault.open(session, record.id, sample.image, f"reference:{sample.id}")
            self.audit.append(
                session,
                actor,
                "image.reference.read",
                gallery=gallery,
                subject=subject_id,
                details={"sample": sample_id, "image_sha256": sample.image_sha256},
            )
        return image

    def probe_image(self, actor: Principal, encounter_id: str, item: int = 1) -> bytes:
        """A kept probe image of an encounter (item 1 = the first capture), audited."""
        actor.require(Action.IMAGE_READ)
        with self._write_lock, self.db.write_transaction() as session:
            encounter = enc.load_visible(session, actor, encounter_id)
            if encounter.probe_image is None:
                raise ImageNotKept(f"Encounter {encounter_id}'s probe images are not kept.")
            blob = self.vault.open(
                session, encounter.gallery_id, encounter.probe_image, f"probe:{encounter.id}"
            )
            images = enc.unpack_probe_images(blob)
            if not 1 <= item <= len(images):
                raise ImageNotKept(f"The probe has no item {item}.", items=len(images))
            gallery = session.get_one(Gallery, encounter.gallery_id)
            self.audit.append(
                session,
                actor,
                "image.probe.read",
                gallery=gallery.name,
                encounter=encounter_id,
                details={"item": item},
            )
        return images[item - 1]

    def upgrade_templates(
        self,
        actor: Principal,
        gallery: str,
        model: str,
        *,
        progress: Progress | None = None,
    ) -> TemplateUpgradeOut:
        """Template every kept reference image of the plug-in's modality with the plug-in
        named ``model`` (a plug-in name or a model key). Resumable: samples that already hold
        a template of the model are skipped; each sample is committed on its own."""
        actor.require(Action.TEMPLATES_UPGRADE)
        plugin = self._plugin_named(model)
        with self.db.transaction() as session:
            record = repo.gallery_by_name(session, gallery)
            todo = _samples_of(session, record.id, plugin)
        done = already = 0
        recapture: set[str] = set()
        for number, (sample_id, external_id, keys) in enumerate(todo, start=1):
            if plugin.info.key in keys:
                already += 1
            elif self._template_sample(record.id, sample_id, plugin):
                done += 1
            else:
                recapture.add(external_id)
            if progress is not None:
                progress(number, len(todo))
        with self._write_lock, self.db.write_transaction() as session:
            self.audit.append(
                session,
                actor,
                "templates.upgrade",
                gallery=gallery,
                details={
                    "model": plugin.info.key,
                    "templated": done,
                    "needs_recapture": len(recapture),
                },
            )
        return TemplateUpgradeOut(
            gallery=gallery,
            model=plugin.info.key,
            templated=done,
            already_templated=already,
            needs_recapture=sorted(recapture),
        )

    def _plugin_named(self, model: str) -> Modality:
        found = self.plugin_for_key(model)
        return found if found is not None else self.modality(model)

    def _template_sample(self, gallery_id: int, sample_id: int, plugin: Modality) -> bool:
        """Template one sample's kept image; False where it has none or it fails the gate."""
        with self.db.transaction() as session:
            sample = session.get_one(Sample, sample_id)
            if sample.image is None:
                return False
            image = self.vault.open(session, gallery_id, sample.image, f"reference:{sample.id}")
            position = self._position_of_sample(session, gallery_id, sample)
        try:
            made = extract(image, plugin, self.settings, primary_only=True)
            template = plugin.with_position(made.template, position)
        except BioMatchError:
            return False
        with self._write_lock, self.db.write_transaction() as session:
            sample = session.get_one(Sample, sample_id)
            key = plugin.info.key
            row = Template(
                sample_id=sample.id,
                subject_id=sample.subject_id,
                gallery_id=gallery_id,
                model_key=key,
                data=self.vault.seal(session, gallery_id, template, f"template:{key}"),
            )
            session.add(row)
            session.flush()
            revision = record_changes(session, gallery_id, added=[(row.id, sample.subject_id, key)])
            indexed = IndexedTemplate(row.id, sample.subject_id, key, plugin.index_vector(template))
        self.indexes.added(gallery_id, revision, [indexed])
        return True

    def _position_of_sample(self, session: Session, gallery_id: int, sample: Sample) -> int:
        """The position (finger code) its first template carries, read by that model."""
        first = session.scalars(
            select(Template).where(Template.sample_id == sample.id).order_by(Template.id)
        ).first()
        reader = self.plugin_for_key(first.model_key) if first is not None else None
        if first is None or reader is None:
            return 0
        return reader.position_of(
            self._open_template(session, gallery_id, first.model_key, first.data)
        )


def _samples_of(
    session: Session, gallery_id: int, plugin: Modality
) -> list[tuple[int, str, set[str]]]:
    """(sample id, subject id, models it is templated with) of the modality's samples."""
    samples = session.scalars(
        select(Sample)
        .join(Subject)
        .where(Subject.gallery_id == gallery_id, Sample.modality == plugin.info.modality)
        .options(selectinload(Sample.templates), selectinload(Sample.subject))
        .order_by(Sample.id)
    )
    return [(s.id, s.subject.external_id, {t.model_key for t in s.templates}) for s in samples]
