"""What every part of the core shares: storage, keys, audit, modalities, indexes."""

from __future__ import annotations

import hashlib
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from biomatch.accountability.audit import AuditLog, CheckpointSigner
from biomatch.accountability.crypto import load_master_key
from biomatch.accountability.policy import GalleryPolicy, stored_policy
from biomatch.accountability.ratelimit import (
    LoginThrottle,
    RateLimiter,
    buckets_for,
    redis_client,
)
from biomatch.accountability.vault import Vault
from biomatch.accountability.witness import RedisHeads
from biomatch.calibration import ScoreCalibration, load_pair_calibration
from biomatch.config import Settings
from biomatch.core.gate import ExtractionGate
from biomatch.core.indexing import GalleryIndexes, IndexedTemplate
from biomatch.core.probe import ProbeItem
from biomatch.errors import (
    InvalidIdentifier,
    InvalidRequest,
    ModelUnavailable,
    OptedOut,
)
from biomatch.extraction import CaptureRejected, ExtractedSample, split_capture_rejected
from biomatch.extraction import extract as extract_with
from biomatch.imaging import decode_image, encode_png
from biomatch.modalities import (
    CapturePart,
    Modality,
    MultiCapture,
    available_plugins,
    load_modality,
    plugin_for_capture,
)
from biomatch.results import CaptureQuality
from biomatch.store import Database, Gallery, Subject, Template
from biomatch.store import repository as repo
from biomatch.store.changes import record_changes
from biomatch.store.models import OptOut
from biomatch.store.permissions import secure_data_dir

DEFAULT_MODALITY = "face"


@dataclass(frozen=True)
class GalleryRef:
    id: int
    name: str
    revision: int
    policy: GalleryPolicy


class CoreState:
    """Cheap to construct: plug-ins load their models on first use, indexes catch up with
    the store when a gallery is first searched, and the schema is only checked (migrations
    run once: ``biomatch db upgrade``, or ``serve`` before it forks its workers)."""

    def __init__(self, settings: Settings, modalities: Sequence[str] = ()) -> None:
        self.settings = settings
        secure_data_dir(settings.data_dir, settings.resolved_database_url)
        self.db = Database(settings.resolved_database_url)
        self.db.ensure_current()
        self.vault = Vault(
            load_master_key(settings.resolved_master_key_file, settings.master_key_env)
        )
        with self.db.transaction() as session:
            self.vault.check_master(session)
        self.audit = AuditLog(
            CheckpointSigner.from_file(settings.resolved_audit_key_file),
            settings.audit_checkpoint_every,
            settings.resolved_audit_witness_file,
            second_witness(settings),
        )
        with self.db.write_transaction() as session:
            self.audit.key_legacy_log(session)
        self._plugins: dict[str, Modality] = {}
        self._pair_calibrations: dict[tuple[str, str], ScoreCalibration | None] = {}
        for name in modalities:
            self.modality(name)
        self.indexes = GalleryIndexes(self.db, self.vault, settings.index)
        buckets = buckets_for(settings.redis_url, deployment_namespace(settings))
        self._search_limit = RateLimiter(settings.search_rate_per_minute, "searches", buckets)
        self._request_limit = RateLimiter(settings.request_rate_per_minute, "requests", buckets)
        self._login_throttle = LoginThrottle(settings.login_failures_per_minute, buckets)
        self._extraction_gate = ExtractionGate(
            settings.extraction_concurrency, settings.extraction_queue
        )
        # Serialises this process's writes: index revisions and audit entries stay in order.
        self._write_lock = threading.Lock()

    def close(self) -> None:
        self.db.dispose()

    def modality(self, name: str) -> Modality:
        """The plug-in named ``name`` (BioMatch's own are named after their modality)."""
        if name not in self._plugins:
            self._plugins[name] = load_modality(name, self.settings)
        return self._plugins[name]

    def all_plugins(self) -> list[Modality]:
        """Every installed plug-in that can run here (cheap: constructing one loads no
        model)."""
        return [self.modality(name) for name in self.runnable_plugin_names()]

    def runnable_plugin_names(self) -> list[str]:
        """The installed plug-ins but those whose library or configuration is missing
        (``ModelUnavailable``: face-dlib without the dlib extra, face-onnx unconfigured)."""
        names = []
        for name in available_plugins():
            try:
                self.modality(name)
            except ModelUnavailable:
                continue
            names.append(name)
        return names

    def plugin_for_key(self, model_key: str) -> Modality | None:
        return next((p for p in self.all_plugins() if p.info.key == model_key), None)

    def plugin_for_capture(self, modality: str, capture: str | None) -> str:
        """The name of the plug-in for a modality's capture kind (None: the modality's own
        plug-in, e.g. contact prints for ``finger``)."""
        return plugin_for_capture(modality, capture, self.settings)

    def capture_kinds(self) -> dict[str, list[str]]:
        """Capture kinds by modality, as the installed plug-ins declare them."""
        kinds: dict[str, set[str]] = {}
        for plugin in self.all_plugins():
            kinds.setdefault(plugin.info.modality, set()).add(plugin.info.capture_kind)
        return {modality: sorted(found) for modality, found in sorted(kinds.items())}

    def capture_parts(
        self, image: bytes, plugin_name: str, layout: str, hand: str | None
    ) -> list[tuple[CapturePart, bytes]]:
        """The parts of a multi-subject capture (the fingers of a four-finger photo), each
        with its image encoded as PNG for the rest of the data path."""
        parts = self.split_decoded(self.decode_upload(image), plugin_name, layout, hand)
        return [(part, encode_png(part.image)) for part in parts]

    def decode_upload(self, image: bytes) -> np.ndarray:
        settings = self.settings
        return decode_image(
            image,
            max_bytes=settings.max_upload_bytes,
            max_pixels=settings.max_image_pixels,
            min_side=settings.min_image_side,
        )

    def split_decoded(
        self, decoded: np.ndarray, plugin_name: str, layout: str, hand: str | None
    ) -> list[CapturePart]:
        """The plug-in's parts of a decoded capture; raises ``QualityRejected`` (named
        reasons) where they are not all found, ``InvalidRequest`` for a layout the plug-in
        does not split or a missing hand."""
        plugin = self.modality(plugin_name)
        if not isinstance(plugin, MultiCapture) or layout not in plugin.capture_layouts:
            raise InvalidRequest(
                f"The {plugin_name} plug-in does not split {layout!r} captures.",
                layout=layout,
                layouts=list(plugin.capture_layouts) if isinstance(plugin, MultiCapture) else [],
            )
        if hand is None:
            raise InvalidRequest(f"A {layout} capture needs hand=left or hand=right.")
        return plugin.split_capture(decoded, layout, hand)

    def expand_probe(self, probe: Sequence[ProbeItem]) -> list[ProbeItem]:
        """The probe with each multi-finger capture replaced by its fingers."""
        expanded: list[ProbeItem] = []
        for number, item in enumerate(probe):
            if item.layout is None:
                expanded.append(item)
                continue
            name = item.plugin or item.modality
            for part, image in self.capture_parts(item.image, name, item.layout, item.hand):
                expanded.append(
                    replace(
                        item,
                        image=image,
                        position=part.position,
                        layout=None,
                        hand=None,  # the part is one fingertip: its position names the hand
                        region=part.region,
                        split_of=number,
                    )
                )
        return expanded

    def calibration_between(self, plugin: Modality, reference_key: str) -> ScoreCalibration:
        """Calibration of the plug-in's comparisons with templates of ``reference_key``: the
        pair's where one was measured (contactless photos against contact prints), else
        the plug-in's own (its own templates, or another model of its family)."""
        key = (plugin.info.key, reference_key)
        if key not in self._pair_calibrations:
            pair = None
            if reference_key != plugin.info.key:
                pair = load_pair_calibration(plugin.info.key, reference_key)
            self._pair_calibrations[key] = pair
        return self._pair_calibrations[key] or plugin.calibration

    def family_of(self, model_key: str) -> str:
        plugin = self.plugin_for_key(model_key)
        return plugin.info.comparison_family if plugin is not None else model_key

    def extract(
        self,
        image: bytes,
        modality: str = DEFAULT_MODALITY,
        *,
        primary_only: bool = False,
        label: str | None = None,
        keep_image: bool = False,
    ) -> ExtractedSample:
        plugin = self.modality(modality)
        with self._extraction_gate.admit():
            return extract_with(
                image,
                plugin,
                self.settings,
                primary_only=primary_only,
                label=label,
                keep_image=keep_image,
            )

    def extract_item(
        self, item: ProbeItem, plugin: Modality, label: str, *, keep_image: bool = False
    ) -> ExtractedSample:
        """One capture of a probe or an enrolment: its template tagged with its position,
        its quality with its position and its region in a split capture."""
        with self._extraction_gate.admit():
            sample = extract_with(
                item.image,
                plugin,
                self.settings,
                primary_only=item.primary_only,
                label=label,
                keep_image=keep_image,
            )
        if item.region is not None:
            sample = sample.in_capture(item.region)
        if not item.position:
            return sample
        template = plugin.with_position(sample.template, item.position)
        return sample.at_position(template, item.position)

    def extract_items(
        self, work: Sequence[tuple[ProbeItem, Modality, str]], *, keep_image: bool = False
    ) -> tuple[list[ExtractedSample | None], list[CaptureQuality]]:
        """Each (item, plug-in, label)'s sample, None where a part of a split capture failed
        the gate: such parts are left out, their quality listed, while at least
        ``split_capture_min_passed`` parts of that capture pass. A whole capture that fails,
        or a split one with fewer passing parts, is refused (422 quality_rejected)."""
        samples: list[ExtractedSample | None] = []
        left_out: dict[int, list[tuple[str, CaptureQuality]]] = {}
        for item, plugin, label in work:
            try:
                samples.append(self.extract_item(item, plugin, label, keep_image=keep_image))
            except CaptureRejected as rejected:
                if item.split_of is None:
                    raise
                samples.append(None)
                where = {"region": item.region, "position": item.position or None}
                quality = rejected.quality.model_copy(update=where)
                left_out.setdefault(item.split_of, []).append((label, quality))
        qualities: list[CaptureQuality] = []
        for capture, failed in left_out.items():
            parts = sum(item.split_of == capture for item, _, _ in work)
            if parts - len(failed) < self.settings.split_capture_min_passed:
                raise split_capture_rejected(failed, parts, self.settings.split_capture_min_passed)
            qualities.extend(quality for _, quality in failed)
        return samples, qualities

    def rebuild_indexes(self) -> None:
        """Bring the index of every model of every gallery up to the store now (otherwise
        each catches up when it is first searched)."""
        with self.db.transaction() as session:
            galleries = [gallery_ref_of(g) for g in session.scalars(repo.live_galleries())]
            keys = {g.id: repo.gallery_model_keys(session, g.id) for g in galleries}
        for gallery in galleries:
            for key in keys[gallery.id]:
                plugin = self.plugin_for_key(key)
                if plugin is not None:
                    self._sync_index(gallery, key, plugin)

    def _gallery_ref(self, name: str) -> GalleryRef:
        with self.db.transaction() as session:
            return gallery_ref_of(repo.gallery_by_name(session, name))

    def _sync_index(self, gallery: GalleryRef, model_key: str, plugin: Modality) -> None:
        """``plugin`` computes index vectors: one of the key's comparison family."""
        self.indexes.catch_up(gallery.id, gallery.revision, model_key, plugin)

    def _index_additions(
        self, gallery_id: int, revision: int, additions: list[tuple[int, int, str, bytes]]
    ) -> None:
        plugins = {key: self.plugin_for_key(key) for _, _, key, _ in additions}
        self.indexes.added(
            gallery_id,
            revision,
            [
                IndexedTemplate(t_id, s_id, key, plugin.index_vector(data))
                for t_id, s_id, key, data in additions
                if (plugin := plugins[key]) is not None
            ],
        )

    def _subject_templates(
        self, session: Session, gallery_id: int, subject_ids: list[int], model_keys: Sequence[str]
    ) -> list[tuple[int, int, int, bytes, str]]:
        """(template id, sample id, subject id, plaintext template, model key) of the
        subjects' templates of the given models."""
        return [
            (t_id, sample_id, subject_id, self._open_template(session, gallery_id, key, data), key)
            for t_id, sample_id, subject_id, key, data in repo.subject_templates(
                session, subject_ids, model_keys
            )
        ]

    def _open_template(
        self, session: Session, gallery_id: int, model_key: str, sealed: bytes
    ) -> bytes:
        return self.vault.open(session, gallery_id, sealed, f"template:{model_key}")

    def _delete_subject(self, session: Session, gallery: Gallery, subject: Subject) -> int:
        """Delete the subject's records and index entries; returns the samples deleted."""
        removed = session.execute(
            select(Template.id, Template.model_key).where(Template.subject_id == subject.id)
        ).all()
        deleted = len(subject.samples)
        session.delete(subject)
        session.flush()
        revision = record_changes(
            session, gallery.id, removed=[(t_id, subject.id, key) for t_id, key in removed]
        )
        self.indexes.removed(gallery.id, revision, [(t_id, key) for t_id, key in removed])
        return deleted

    def _refuse_opted_out(self, person_ref: str) -> None:
        with self.db.transaction() as session:
            found = session.scalars(
                select(OptOut).where(OptOut.person_hash == person_hash(person_ref))
            ).first()
        if found is not None:
            raise OptedOut(
                "This person is in the opt-out registry: use a non-biometric check.",
                subject_id=person_ref,
            )


def gallery_ref_of(gallery: Gallery) -> GalleryRef:
    return GalleryRef(
        gallery.id, gallery.name, gallery.revision, stored_policy(gallery.policy, gallery.name)
    )


# Control, format (bidi overrides, zero-width), surrogate, private-use, unassigned, and
# line/paragraph separator characters: none belongs in an identifier a person reads.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def check_name(what: str, value: str) -> str:
    """The identifier in NFC, or ``InvalidIdentifier`` where it is empty, over 128
    characters, has surrounding spaces or a '/', or holds a character that does not print
    (controls, bidi overrides, zero-width characters)."""
    normal = unicodedata.normalize("NFC", value)
    if (
        not normal
        or len(normal) > 128
        or normal != normal.strip()
        or "/" in normal
        or any(unicodedata.category(char) in _UNPRINTABLE for char in normal)
    ):
        raise InvalidIdentifier(
            f"The {what} must be 1-128 printable characters, without '/', surrounding spaces, "
            "control or bidi-override characters.",
            value=value,
        )
    return normal


def second_witness(settings: Settings) -> RedisHeads | None:
    if not (settings.audit_witness_redis and settings.redis_url):
        return None
    return RedisHeads(redis_client(settings.redis_url), deployment_namespace(settings))


def deployment_namespace(settings: Settings) -> str:
    """Names this deployment's keys in shared stores (Redis): every instance on one database
    shares them, and two deployments on one Redis server do not."""
    return hashlib.sha256(settings.resolved_database_url.encode()).hexdigest()[:16]


def person_hash(person_ref: str) -> str:
    return hashlib.sha256(f"biomatch-optout:{person_ref.strip().casefold()}".encode()).hexdigest()
