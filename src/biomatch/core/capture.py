"""What a capture device needs before it searches: the quality gate alone, the choices the
operator may make (capabilities), and the record of captures discarded while offline."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from sqlalchemy import select

from biomatch.accountability.policy import GalleryPolicy
from biomatch.accountability.principal import Principal
from biomatch.accountability.roles import MATRIX, Action
from biomatch.core.probe import check_split_request
from biomatch.core.state import DEFAULT_MODALITY, CoreState
from biomatch.errors import QualityRejected
from biomatch.extraction import assess
from biomatch.imaging import encode_png
from biomatch.modalities import CapturePart, Modality
from biomatch.results import (
    CapabilitiesOut,
    GalleryChoice,
    OfflineDiscardIn,
    PartVerdictOut,
    PluginOut,
    QualityCheckOut,
    QualityReason,
    QualityVerdictOut,
)
from biomatch.store import Gallery


class CaptureAPI(CoreState):
    def check_capture(
        self,
        actor: Principal,
        image: bytes,
        modality: str = DEFAULT_MODALITY,
        *,
        primary_only: bool = False,
        layout: str | None = None,
        hand: str | None = None,
    ) -> QualityVerdictOut:
        """Run the plug-in's capture-quality gate on one capture and say why it fails, in
        the plug-in's own words; a split capture (``layout``, with its ``hand``) part by
        part, as a search would use it. Nothing is searched, templated or kept; the check
        is audited (its verdict and the capture's hash, never the image)."""
        actor.require(Action.CAPTURE_CHECK)
        check_split_request(layout, hand)
        plugin = self.modality(modality)
        if layout is None:
            verdict = self._check_whole(image, plugin, primary_only)
        else:
            verdict = self._check_split(image, modality, layout, hand)
        with self._write_lock, self.db.write_transaction() as session:
            self.audit.append(
                session,
                actor,
                "capture.quality_check",
                details={
                    "modality": plugin.info.modality,
                    "model": plugin.info.key,
                    "passed": verdict.passed,
                    "failed": [reason.name for reason in verdict.reasons],
                    "image_sha256": hashlib.sha256(image).hexdigest(),
                }
                | _parts_record(layout, verdict.parts),
            )
        return verdict

    def _check_whole(self, image: bytes, plugin: Modality, primary_only: bool) -> QualityVerdictOut:
        with self._extraction_gate.admit():
            quality, found, (width, height) = assess(
                image, plugin, self.settings, primary_only=primary_only
            )
        return QualityVerdictOut(
            passed=quality.passed and found,
            modality=plugin.info.modality,
            model=plugin.info.key,
            reasons=_failed(quality.checks),
            checks=quality.checks,
            region=quality.region,
            width=width,
            height=height,
        )

    def _check_split(
        self, image: bytes, plugin_name: str, layout: str, hand: str | None
    ) -> QualityVerdictOut:
        """Each part's verdict; the capture passes where enough parts pass to be searched
        (``split_capture_min_passed``, as ``extract_items`` applies it)."""
        plugin = self.modality(plugin_name)
        decoded = self.decode_upload(image)
        height, width = decoded.shape[:2]
        verdict = QualityVerdictOut(
            passed=False,
            modality=plugin.info.modality,
            model=plugin.info.key,
            reasons=[],
            checks=[],
            region=None,
            width=int(width),
            height=int(height),
        )
        try:
            split = self.split_decoded(decoded, plugin_name, layout, hand)
        except QualityRejected as rejected:  # the parts were not all found
            checks = [QualityCheckOut(**r) for r in rejected.details.get("reasons", [])]
            return verdict.model_copy(update={"reasons": _failed(checks), "checks": checks})
        parts = [self._part_verdict(part, plugin) for part in split]
        needed = self.settings.split_capture_min_passed
        passing = sum(part.passed for part in parts)
        if passing >= needed:
            return verdict.model_copy(update={"passed": True, "parts": parts})
        summary = QualityReason(
            name="parts_passed",
            message=f"{passing} of the {len(parts)} fingertips passed; at least {needed} must. "
            "Retake the photo, following the fingertips' instructions.",
        )
        reasons = {r.name: r for part in parts for r in part.reasons}
        return verdict.model_copy(update={"reasons": [summary, *reasons.values()], "parts": parts})

    def _part_verdict(self, part: CapturePart, plugin: Modality) -> PartVerdictOut:
        with self._extraction_gate.admit():
            quality, found, _ = assess(encode_png(part.image), plugin, self.settings)
        return PartVerdictOut(
            position=part.position,
            region=part.region,
            passed=quality.passed and found,
            reasons=_failed(quality.checks),
            checks=quality.checks,
        )

    def capabilities(self, actor: Principal) -> CapabilitiesOut:
        """What this operator may choose: purposes, authorities, the galleries their role may
        search with the modes each allows, and the installed plug-ins' capture kinds."""
        with self.db.transaction() as session:
            galleries = list(session.scalars(select(Gallery).order_by(Gallery.name)))
            choices = [_choice(g, GalleryPolicy.model_validate(g.policy), actor) for g in galleries]
        may = [action for action, roles in MATRIX.items() if actor.role in roles]
        return CapabilitiesOut(
            operator=actor.name,
            role=actor.role.value,
            may=[action.value for action in may],
            purposes=self.settings.purposes,
            legal_authorities=self.settings.legal_authorities,
            galleries=[c for c in choices if c.modes] if Action.SEARCH in may else [],
            plugins=self._plugin_list(self.runnable_plugin_names()),
            verify_target_fmr=self.settings.verify_target_fmr,
            identify_target_fmr=self.settings.identify_target_fmr,
            max_upload_bytes=self.settings.max_upload_bytes,
        )

    def _plugin_list(self, names: Sequence[str]) -> list[PluginOut]:
        plugins = []
        for name in names:
            info = self.modality(name).info
            plugins.append(
                PluginOut(
                    plugin=name,
                    modality=info.modality,
                    capture_kind=info.capture_kind,
                    model=info.key,
                )
            )
        return plugins

    def record_offline_discards(self, actor: Principal, discards: list[OfflineDiscardIn]) -> int:
        """Audit captures an operator queued offline and discarded unsent (reported by the
        device when it reconnects); the images never reached the service."""
        actor.require(Action.SEARCH)
        with self._write_lock, self.db.write_transaction() as session:
            for discard in discards:
                self.audit.append(
                    session,
                    actor,
                    "capture.offline_discarded",
                    gallery=discard.gallery,
                    details=discard.model_dump(mode="json", exclude={"gallery"}),
                )
        return len(discards)


def _choice(gallery: Gallery, policy: GalleryPolicy, actor: Principal) -> GalleryChoice:
    searchable = actor.role in policy.search_roles
    return GalleryChoice(
        name=gallery.name,
        description=gallery.description,
        modes=list(policy.modes) if searchable else [],
        case_reference_required=policy.case_reference_required,
        training=policy.training,
        keeps_reference_images=policy.keep_reference_images,
        confirmations_required=policy.confirmations_required,
    )


def _failed(checks: Sequence[QualityCheckOut]) -> list[QualityReason]:
    return [QualityReason(name=c.name, message=c.message) for c in checks if not c.passed]


def _parts_record(layout: str | None, parts: Sequence[PartVerdictOut]) -> dict[str, object]:
    if layout is None:
        return {}
    return {"layout": layout, "parts_passed": [p.position for p in parts if p.passed]}
