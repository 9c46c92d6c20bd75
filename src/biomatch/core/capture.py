"""What a capture device needs before it searches: the quality gate alone, the choices the
operator may make (capabilities), and the record of captures discarded while offline."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from sqlalchemy import select

from biomatch.accountability.policy import GalleryPolicy
from biomatch.accountability.principal import Principal
from biomatch.accountability.roles import MATRIX, Action
from biomatch.core.state import DEFAULT_MODALITY, CoreState
from biomatch.extraction import assess
from biomatch.results import (
    CapabilitiesOut,
    GalleryChoice,
    OfflineDiscardIn,
    PluginOut,
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
    ) -> QualityVerdictOut:
        """Run the plug-in's capture-quality gate on one capture and say why it fails, in
        the plug-in's own words. Nothing is searched, templated or kept; the check is
        audited (its verdict and the capture's hash, never the image)."""
        actor.require(Action.CAPTURE_CHECK)
        plugin = self.modality(modality)
        with self._extraction_gate.admit():
            quality, found, (width, height) = assess(
                image, plugin, self.settings, primary_only=primary_only
            )
        passed = quality.passed and found
        verdict = QualityVerdictOut(
            passed=passed,
            modality=plugin.info.modality,
            model=plugin.info.key,
            reasons=[
                QualityReason(name=c.name, message=c.message)
                for c in quality.checks
                if not c.passed
            ],
            checks=quality.checks,
            region=quality.region,
            width=width,
            height=height,
        )
        with self._write_lock, self.db.write_transaction() as session:
            self.audit.append(
                session,
                actor,
                "capture.quality_check",
                details={
                    "modality": plugin.info.modality,
                    "model": plugin.info.key,
                    "passed": passed,
                    "failed": [reason.name for reason in verdict.reasons],
                    "image_sha256": hashlib.sha256(image).hexdigest(),
                },
            )
        return verdict

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
