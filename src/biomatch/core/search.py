"""One search path for every probe: 1:1 verification and 1:N identification, each recorded
as an encounter.

A probe is a list of items (a face, up to four fingers, of any capture kind). Each item is
extracted by the plug-in chosen for it, compared with the templates of its comparison family
(the same finger position where both are known), and its best score per subject becomes an
estimated FMR through the item's model calibration; ``fusion.fuse`` joins the items (one
item: its own FMR). ``decide`` applies the target FMR to 1:1 and 1:N alike. Single-image
verify and identify are the one-item case.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from biomatch.accountability import encounters as enc
from biomatch.accountability.principal import Principal
from biomatch.accountability.roles import Action
from biomatch.calibration import ScoreCalibration
from biomatch.core.probe import ProbeItem
from biomatch.core.state import DEFAULT_MODALITY, CoreState, GalleryRef
from biomatch.errors import (
    InvalidRequest,
    NoReference,
    PolicyForbids,
    SearchContextMissing,
)
from biomatch.extraction import ExtractedSample
from biomatch.fusion import Evidence, FusedScore, fuse
from biomatch.modalities import Modality
from biomatch.results import (
    CandidateOut,
    CaptureQuality,
    ComparisonOut,
    ContributionOut,
    IdentificationOut,
    ModelRef,
    SearchContext,
    VerificationOut,
)
from biomatch.store import Gallery
from biomatch.store import repository as repo


@dataclass(frozen=True)
class _ProbeSample:
    """An extracted probe item and the gallery templates it can be compared with."""

    number: int
    plugin: Modality
    sample: ExtractedSample
    position: int
    reference_keys: tuple[str, ...]
    split: bool = False  # a part of a split capture (a fingertip of a four-finger photo)


@dataclass(frozen=True)
class _Scored:
    fused: FusedScore
    comparisons: list[ComparisonOut]


def decide(estimated_fmr: float, target_fmr: float) -> bool:
    """The one decision rule, for 1:1 answers and strong 1:N candidates alike."""
    return estimated_fmr <= target_fmr


class SearchAPI(CoreState):
    def verify(
        self,
        actor: Principal,
        gallery: str,
        subject_id: str,
        image: bytes,
        context: SearchContext,
        modality: str = DEFAULT_MODALITY,
        *,
        primary_only: bool = False,
        layout: str | None = None,
        hand: str | None = None,
    ) -> VerificationOut:
        """1:1 with one image (the one-item case of ``verify_probe``; a four-finger photo,
        ``layout`` and ``hand`` given, is its four fingers)."""
        item = ProbeItem(modality, image, primary_only=primary_only, layout=layout, hand=hand)
        return self.verify_probe(actor, gallery, subject_id, [item], context)

    def identify(
        self,
        actor: Principal,
        gallery: str,
        image: bytes,
        context: SearchContext,
        modality: str = DEFAULT_MODALITY,
        *,
        top_k: int = 10,
        primary_only: bool = False,
        layout: str | None = None,
        hand: str | None = None,
    ) -> IdentificationOut:
        """1:N with one image (the one-item case of ``identify_probe``; a four-finger photo,
        ``layout`` and ``hand`` given, is its four fingers)."""
        item = ProbeItem(modality, image, primary_only=primary_only, layout=layout, hand=hand)
        return self.identify_probe(actor, gallery, [item], context, top_k=top_k)

    def verify_probe(
        self,
        actor: Principal,
        gallery: str,
        subject_id: str,
        probe: Sequence[ProbeItem],
        context: SearchContext,
    ) -> VerificationOut:
        """1:1: every probe item against every template of the claimed subject it can be
        compared with; one fused, calibrated decision."""
        started = datetime.now(UTC)
        record = self._authorise_search(actor, gallery, "verify", context)
        if not record.policy.enforcement:
            self._refuse_opted_out(subject_id)
        plan = self._plan_probe(record, probe)
        keys = sorted({key for _, _, item_keys in plan for key in item_keys})
        with self.db.transaction() as session:
            subject_pk = repo.subject_by_id(
                session, repo.gallery_by_name(session, gallery), subject_id
            ).id
            references = repo.count_templates(session, [subject_pk], keys)
        if not references:  # refused before any model runs
            raise NoReference(
                f"Subject {subject_id!r} has no template that the probe can be compared with.",
                subject_id=subject_id,
                models=sorted({plugin.info.key for _, plugin, _ in plan}),
            )
        samples, left_out = self._extract_probe(plan)
        scored = self._score_subjects(record, [subject_pk], samples).get(subject_pk)
        if scored is None:  # positions left nothing to compare
            raise NoReference(
                f"Subject {subject_id!r} has no template at the probe's positions.",
                subject_id=subject_id,
            )
        target = self.settings.verify_target_fmr
        fused = scored.fused
        decision = "match" if decide(fused.estimated_fmr, target) else "no_match"
        out = VerificationOut(
            encounter_id=str(uuid.uuid4()),
            gallery=gallery,
            subject_id=subject_id,
            decision=decision,
            score=_lone_score(fused),
            estimated_fmr=fused.estimated_fmr,
            fmr_is_upper_bound=fused.fmr_is_upper_bound,
            target_fmr=target,
            score_threshold=_score_threshold(
                self._lone_calibration(samples), target, _comparisons(fused)
            ),
            modalities=list(fused.modalities),
            contributions=_contributions(fused),
            comparisons=scored.comparisons,
            model=_lone_model(samples),
            models=[model_ref(s.plugin) for s in samples],
            probe_quality=[*(s.sample.quality for s in samples), *left_out],
        )
        result = out.model_dump(
            include={"subject_id", "decision", "decision_rule", "score", "estimated_fmr"}
        ) | _parts_record(samples, left_out)
        self._record_search(actor, record, "verify", context, samples, probe, started, out, result)
        return out

    def identify_probe(
        self,
        actor: Principal,
        gallery: str,
        probe: Sequence[ProbeItem],
        context: SearchContext,
        *,
        top_k: int = 10,
    ) -> IdentificationOut:
        """1:N: the union of each item's index shortlist, re-scored by the items' matchers,
        ranked by fused estimated FMR. Candidates are leads for human review."""
        started = datetime.now(UTC)
        limit = self.settings.identify_max_top_k
        if not 1 <= top_k <= limit:
            raise InvalidRequest(f"top_k must be between 1 and {limit}.", top_k=top_k)
        record = self._authorise_search(actor, gallery, "identify", context)
        samples, left_out = self._extract_probe(self._plan_probe(record, probe))
        shortlist = self._shortlist(record, samples, top_k)
        scored = self._score_subjects(record, shortlist, samples)
        # FMRs tie at the calibration's resolution; the evidence, then the score, breaks it.
        order = sorted(scored, key=lambda pk: _rank_key(scored[pk].fused))[:top_k]
        with self.db.transaction() as session:
            names = repo.external_ids(session, order)
            keys = sorted({key for s in samples for key in s.reference_keys})
            size = repo.subjects_with_templates(session, record.id, keys) if keys else 0
        target = self.settings.identify_target_fmr
        calibration = self._lone_calibration(samples)
        candidates = []
        for rank, pk in enumerate(order, start=1):
            fused = scored[pk].fused
            threshold = _score_threshold(calibration, target, _comparisons(fused))
            candidates.append(_candidate(rank, names[pk], fused, size, target, threshold))
        out = IdentificationOut(
            encounter_id=str(uuid.uuid4()),
            gallery=gallery,
            gallery_size=size,
            candidates=candidates,
            target_fmr=target,
            score_threshold=_score_threshold(calibration, target),
            model=_lone_model(samples),
            models=[model_ref(s.plugin) for s in samples],
            probe_quality=[*(s.sample.quality for s in samples), *left_out],
        )
        result = {
            "gallery_size": size,
            "decision_rule": "ranked by fused estimated FMR; strong where it is <= target_fmr",
            "candidates": [c.model_dump() for c in out.candidates],
        } | _parts_record(samples, left_out)
        self._record_search(
            actor, record, "identify", context, samples, probe, started, out, result
        )
        return out

    def _authorise_search(
        self, actor: Principal, gallery: str, mode: str, context: SearchContext
    ) -> GalleryRef:
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
        authorities = self.settings.legal_authorities
        if authorities and context.legal_authority not in authorities:
            raise SearchContextMissing(
                f"Legal authority {context.legal_authority!r} is not one of the configured "
                "authorities.",
                legal_authorities=authorities,
            )
        if context.training and not policy.training:
            raise PolicyForbids(
                f"Gallery {gallery!r} is operational: a training search may only use a "
                "training gallery."
            )
        self._search_limit.take(actor.name)
        return record

    def _plan_probe(
        self, gallery: GalleryRef, probe: Sequence[ProbeItem]
    ) -> list[tuple[ProbeItem, Modality, tuple[str, ...]]]:
        """Each item (multi-finger captures split) with its plug-in and the gallery's
        models it can be compared with."""
        probe = self.expand_probe(probe)
        with self.db.transaction() as session:
            stored = repo.gallery_model_keys(session, gallery.id)
        plugins = [self._choose_plugin(gallery, item, stored) for item in probe]
        _check_probe(probe, plugins)
        return [
            (item, plugin, self._comparable(plugin, stored))
            for item, plugin in zip(probe, plugins, strict=True)
        ]

    def _comparable(self, plugin: Modality, stored: list[str]) -> tuple[str, ...]:
        family = plugin.info.comparison_family
        return tuple(key for key in stored if self.family_of(key) == family)

    def _extract_probe(
        self, plan: list[tuple[ProbeItem, Modality, tuple[str, ...]]]
    ) -> tuple[list[_ProbeSample], list[CaptureQuality]]:
        """The probe's samples (numbered as the plan's items), and the quality of the parts
        of split captures that were left out for failing the gate."""
        work = [
            (item, plugin, f"{item.modality} {number}")
            for number, (item, plugin, _) in enumerate(plan, start=1)
        ]
        extracted, left_out = self.extract_items(work)
        samples = [
            _ProbeSample(number, plugin, sample, item.position, keys, item.split_of is not None)
            for number, ((item, plugin, keys), sample) in enumerate(
                zip(plan, extracted, strict=True), start=1
            )
            if sample is not None
        ]
        return samples, left_out

    def _choose_plugin(self, gallery: GalleryRef, item: ProbeItem, stored: list[str]) -> Modality:
        """The named plug-in; else, of the plug-ins for the modality's default capture kind,
        the one whose comparison family covers the most enrolled subjects (the default one
        on a tie), so that a gallery part-way through a model upgrade is searched with the
        model it is templated with."""
        chosen = self.modality(item.plugin or item.modality)
        if item.plugin is not None:
            return chosen
        rivals = [
            p
            for p in self.all_plugins()
            if p.info.modality == chosen.info.modality
            and p.info.capture_kind == chosen.info.capture_kind
            and p.info.comparison_family != chosen.info.comparison_family
        ]
        if not rivals:
            return chosen
        with self.db.transaction() as session:

            def coverage(plugin: Modality) -> int:
                family = plugin.info.comparison_family
                keys = [key for key in stored if self.family_of(key) == family]
                return repo.subjects_with_templates(session, gallery.id, keys) if keys else 0

            return max([chosen, *rivals], key=coverage)

    def _shortlist(self, gallery: GalleryRef, samples: list[_ProbeSample], top_k: int) -> list[int]:
        shortlist: set[int] = set()
        for probe in samples:
            width = max(top_k, probe.plugin.shortlist_subjects)
            vector = probe.plugin.index_vector(probe.sample.template)
            for key in probe.reference_keys:
                self._sync_index(gallery, key, self.plugin_for_key(key) or probe.plugin)
                hits = self.indexes.search_subjects(gallery.id, key, vector, width)
                shortlist.update(subject for subject, _ in hits)
        return sorted(shortlist)

    def _score_subjects(
        self, gallery: GalleryRef, subject_pks: Sequence[int], samples: list[_ProbeSample]
    ) -> dict[int, _Scored]:
        """Fused evidence of each subject that holds a template some probe item can be
        compared with. Each item is compared once with all those templates (one query, one
        ``compare`` call); each score becomes an estimated FMR through the calibration of
        the probe's and the reference's models (``calibration_between``: contactless against
        contact has its own), and the item's strongest evidence per subject counts, its FMR
        multiplied by the number of the subject's templates compared: an impostor enrolled
        with k templates has k chances to score high (``FmrEstimate.best_of``)."""
        evidence: dict[int, list[Evidence]] = {}
        comparisons: dict[int, list[ComparisonOut]] = {}
        if not subject_pks:
            return {}
        for probe in samples:
            if not probe.reference_keys:
                continue
            with self.db.transaction() as session:
                rows = self._subject_templates(
                    session, gallery.id, list(subject_pks), probe.reference_keys
                )
            rows = [row for row in rows if _same_position(probe, row[3])]
            if not rows:
                continue
            scores = probe.plugin.compare(probe.sample.template, [row[3] for row in rows])
            per_subject = Counter(row[2] for row in rows)
            best: dict[int, Evidence] = {}
            for row, score in zip(rows, scores, strict=True):
                calibration = self.calibration_between(probe.plugin, row[4])
                found = _evidence(probe, float(score), calibration, per_subject[row[2]])
                held = best.get(row[2])
                if held is None or _stronger(found, held):
                    best[row[2]] = found
                comparisons.setdefault(row[2], []).append(
                    ComparisonOut(item=probe.number, sample_id=row[1], score=round(float(score), 6))
                )
            for subject_pk, item in best.items():
                evidence.setdefault(subject_pk, []).append(item)
        return {
            pk: _Scored(fuse(items), comparisons[pk]) for pk, items in evidence.items() if items
        }

    def _lone_calibration(self, samples: list[_ProbeSample]) -> ScoreCalibration | None:
        """The one calibration covering a lone probe item's references (None for fused
        probes and mixed calibrations)."""
        if len(samples) != 1:
            return None
        probe = samples[0]
        keys = probe.reference_keys or (probe.plugin.info.key,)
        calibrations = [self.calibration_between(probe.plugin, key) for key in keys]
        if len({calibration.model_key for calibration in calibrations}) != 1:
            return None
        return calibrations[0]

    def _record_search(
        self,
        actor: Principal,
        gallery: GalleryRef,
        kind: str,
        context: SearchContext,
        samples: list[_ProbeSample],
        probe: Sequence[ProbeItem],
        started: datetime,
        out: VerificationOut | IdentificationOut,
        result: dict[str, object],
    ) -> None:
        """The encounter and its audit entry, in one transaction. The probe images are kept,
        encrypted, only as long as the gallery's policy says."""
        ended = datetime.now(UTC)
        if gallery.policy.training:
            result = {**result, "training": True}
        hashes = [s.sample.image_sha256 for s in samples]
        models = [s.sample.model_key for s in samples]
        with self._write_lock, self.db.write_transaction() as session:
            record = session.get_one(Gallery, gallery.id)
            encounter = enc.new_encounter(
                encounter_id=out.encounter_id,
                kind=kind,
                actor=actor,
                gallery=record,
                context=context,
                started=started,
                ended=ended,
                model_key="+".join(sorted(set(models))),
                score_threshold=out.score_threshold,
                target_fmr=out.target_fmr,
                probe_sha256=hashes[0] if len(hashes) == 1 else _digest(hashes),
                probe_quality=_probe_quality(samples),
                result=result,
            )
            expiry = enc.probe_expiry(gallery.policy, started)
            if expiry is not None:
                images = enc.pack_probe_images([item.image for item in probe])
                encounter.probe_image = self.vault.seal(
                    session, gallery.id, images, f"probe:{out.encounter_id}"
                )
                encounter.probe_expires_at = expiry
            session.add(encounter)
            self.audit.append(
                session,
                actor,
                f"search.{kind}",
                gallery=gallery.name,
                encounter=out.encounter_id,
                subject=str(result.get("subject_id")) if kind == "verify" else None,
                details={
                    "period": [started.isoformat(), ended.isoformat()],
                    "purpose": context.purpose,
                    "legal_authority": context.legal_authority,
                    "case_reference": context.case_reference,
                    "training": gallery.policy.training,
                    "probe_sha256": hashes,
                    "model": sorted(set(models)),
                    "result": result,
                },
            )


def _check_probe(probe: Sequence[ProbeItem], plugins: list[Modality]) -> None:
    if not probe:
        raise InvalidRequest("A probe holds at least one capture.")
    per_modality = Counter(plugin.info.modality for plugin in plugins)
    for plugin in {p.info.modality: p for p in plugins}.values():
        allowed = plugin.max_probe_items
        if per_modality[plugin.info.modality] > allowed:
            raise InvalidRequest(
                f"A probe holds at most {allowed} {plugin.info.modality} capture(s).",
                modality=plugin.info.modality,
            )
    positions = [(item.modality, item.position) for item in probe if item.position]
    if len(positions) != len(set(positions)):
        raise InvalidRequest("A position appears twice in the probe.")


def _same_position(probe: _ProbeSample, reference: bytes) -> bool:
    """Items and references of known positions compare only with the same position."""
    if not probe.position:
        return True
    position = probe.plugin.position_of(reference)
    return position in (0, probe.position)


def _stronger(first: Evidence, second: Evidence) -> bool:
    return (first.estimated_fmr, -first.score) < (second.estimated_fmr, -second.score)


def _evidence(
    probe: _ProbeSample, score: float, calibration: ScoreCalibration, comparisons: int
) -> Evidence:
    """Evidence about a subject from its best score over ``comparisons`` templates."""
    estimate = calibration.estimate(score).best_of(comparisons)
    return Evidence(
        modality=probe.plugin.info.modality,
        estimated_fmr=estimate.value,
        fmr_is_upper_bound=estimate.is_upper_bound,
        quality_weight=probe.plugin.quality_weight(probe.sample.quality_scores()),
        position=probe.position or None,
        score=score,
        item=probe.number,
        model=probe.sample.model_key,
        comparisons=comparisons,
    )


def _rank_key(fused: FusedScore) -> tuple[float, float, float]:
    best_score = max(item.score for item in fused.contributions)
    return (fused.estimated_fmr, -fused.evidence, -best_score)


def _lone_score(fused: FusedScore) -> float | None:
    if len(fused.contributions) != 1:
        return None
    return round(fused.contributions[0].score, 6)


def _lone_model(samples: list[_ProbeSample]) -> ModelRef | None:
    return model_ref(samples[0].plugin) if len(samples) == 1 else None


def _contributions(fused: FusedScore) -> list[ContributionOut]:
    return [
        ContributionOut(
            item=item.item,
            modality=item.modality,
            model=item.model,
            position=item.position,
            score=round(item.score, 6),
            estimated_fmr=item.estimated_fmr,
            fmr_is_upper_bound=item.fmr_is_upper_bound,
            quality_weight=round(item.quality_weight, 4),
            comparisons=item.comparisons,
        )
        for item in fused.contributions
    ]


def _score_threshold(
    calibration: ScoreCalibration | None, target_fmr: float, comparisons: int = 1
) -> float | None:
    """The score a lone probe item needs against a subject compared through
    ``comparisons`` templates; None without one calibration, or where it cannot resolve
    target / comparisons (no score reaches it)."""
    target_fmr /= comparisons
    if calibration is None or target_fmr < 1.0 / calibration.n_impostor:
        return None
    return round(calibration.threshold_for(target_fmr), 6)


def _comparisons(fused: FusedScore) -> int:
    """The templates a one-item result's score is the best of (1 for a fused result)."""
    return fused.contributions[0].comparisons if len(fused.contributions) == 1 else 1


def _candidate(
    rank: int,
    subject_id: str,
    fused: FusedScore,
    size: int,
    target_fmr: float,
    score_threshold: float | None,
) -> CandidateOut:
    return CandidateOut(
        rank=rank,
        subject_id=subject_id,
        score=_lone_score(fused),
        score_threshold=score_threshold,
        estimated_fmr=fused.estimated_fmr,
        fmr_is_upper_bound=fused.fmr_is_upper_bound,
        expected_false_matches=fused.estimated_fmr * size,
        strong=decide(fused.estimated_fmr, target_fmr),
        modalities=list(fused.modalities),
        contributions=_contributions(fused),
    )


def model_ref(plugin: Modality) -> ModelRef:
    return ModelRef(
        modality=plugin.info.modality, model_id=plugin.info.model_id, version=plugin.info.version
    )


def _digest(hashes: list[str]) -> str:
    return hashlib.sha256(",".join(hashes).encode()).hexdigest()


def _parts_record(samples: list[_ProbeSample], left_out: list[CaptureQuality]) -> dict[str, object]:
    """What the encounter records of a split capture's parts: where each lay in the photo and
    whether it was searched (the review console draws them), and the reasons of those left
    out."""
    parts = [s.sample.quality for s in samples if s.split] + left_out
    record: dict[str, object] = {}
    if parts:
        record["parts"] = [
            {"position": q.position, "region": q.region, "passed": q.passed}
            for q in sorted(parts, key=lambda q: q.position or 0)
        ]
    if left_out:
        record["parts_left_out"] = [
            {"position": q.position, "reasons": [c.name for c in q.checks if not c.passed]}
            for q in left_out
        ]
    return record


def _probe_quality(samples: list[_ProbeSample]) -> dict[str, float]:
    if len(samples) == 1:
        return samples[0].sample.quality_scores()
    return {
        f"{s.number}.{s.sample.modality}.{name}": score
        for s in samples
        for name, score in s.sample.quality_scores().items()
    }
