"""``trueframe calibrate``: fit calibration, fusion and verdict bands on real fakes of the dev set.

Fitted on the *calibrate* half of the documented split (:mod:`.dev_set`), original and matched
variants together, from the cached stage outputs (:mod:`.collect`), with the same aggregation the
service uses (:meth:`ReportAssembler.evidence`):

1. per model, Platt scaling of its item-level logit (face model on items with a face, synthetic
   model on every photographic item), so its probability means what it says on real media;
2. the fusion stack (:func:`fit_stack`) on the calibrated logits;
3. verdict bands on the fused probability at stated error rates (``manipulated`` at 1% of real
   items, ``likely_manipulated`` at 5%; ``authentic`` / ``likely_authentic`` at 1% / 5% of fakes).
   The two accusing bands keep their rate on all real items and, when a section has enough of
   them, on the real items of sources no model trained on (:attr:`DevItem.seen` false): the rate
   a band states then holds on footage like a user's, not only on other clips of a training source.

Steps 2 and 3 run once on every item (the shared section) and once per media kind (images,
videos) with enough real and fake items: a video's score aggregates many frames, so its bands are
chosen on videos alone, and the stated rates hold per kind rather than only on the mix.

Items the scope calls degraded (the ``thumbnail``, ``heavy``, ``webp``, ``avif`` and ``heic``
copies: heavy compression, tiny pictures) take no part in steps 1-3; they get sections of their
own per media kind (``image_degraded``, ``video_degraded``), fitted the same way on the calibrated
logits, so that the probability reported for such a file is calibrated on such files (their
verdicts are still held back by rule: :mod:`detector.scoring.fusion.rules`); the degraded videos'
weights are pulled towards none as far as grouped cross-validation says (:data:`NO_EVIDENCE`).

The tables go into ``weights/manifest.toml`` and ``weights/fusion.toml``; the dev suite then
reports on the other half. ``--dry-run`` writes nothing.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast, get_args

import numpy as np

from detector.errors import InvalidRequest
from detector.evaluation.dev_set import read_dev_set
from detector.scoring.calibration import (
    CalibrationDataError,
    Calibrator,
    expected_calibration_error,
    fit_calibrator,
)
from detector.scoring.fusion.fit import (
    MIN_ROWS_PER_CLASS,
    Pool,
    choose_thresholds,
    dump_parameters,
    fit_stack,
    stack_logits,
)
from detector.scoring.fusion.params import (
    FusionParameters,
    KindParameters,
    Pattern,
    Priors,
    SectionKind,
    SubModel,
    media_of,
    section_kind,
)
from detector.scoring.logodds import sigmoid
from detector.tomlwrite import replace_table, write_atomic

if TYPE_CHECKING:
    from detector.evaluation.runner import SuiteConfig
    from detector.report.assemble import StageOutputs
    from detector.settings import Settings


@dataclass
class Features:
    """Item-level raw logits (NaN: signal missing), labels and each item's media kind."""

    face: np.ndarray
    synthetic: np.ndarray
    labels: np.ndarray
    kinds: np.ndarray | None = None  # section per row ("image", "video_degraded"...); None: shared only
    seen: np.ndarray | None = None  # rows whose source training used (DevItem.seen); None: none
    groups: np.ndarray | None = None  # each row's clip or identity (DevItem.group); None: no pull


def raw_features(outputs: list[StageOutputs], labels: list[int], settings: Settings) -> Features:
    """The uncalibrated item logits each model contributes, aggregated exactly as the service does."""
    from detector.report.assemble import ReportAssembler
    from detector.stages import configured_models

    face, synthetic = configured_models(settings)
    bare = ReportAssembler(
        settings,
        (face[0], face[1].model_copy(update={"calibration": None})),
        None if synthetic is None else (synthetic[0], synthetic[1].model_copy(update={"calibration": None})),
    )
    f, s, kinds = [], [], []
    for out in outputs:
        kinds.append(section_kind(out.media.kind, bool(out.scope.degraded)))
        inputs = bare.evidence(out)
        usable = inputs.photographic
        f.append(inputs.face_logit if usable and inputs.face_logit is not None else np.nan)
        s.append(inputs.synthetic_logit if usable and inputs.synthetic_logit is not None else np.nan)
    y = np.asarray(labels, np.float64)
    return Features(np.asarray(f, np.float64), np.asarray(s, np.float64), y, np.asarray(kinds))


def _fit(raw: np.ndarray, labels: np.ndarray, fitted_on: str) -> Calibrator | None:
    rows = ~np.isnan(raw)
    if len(np.unique(labels[rows])) < 2:
        return None
    described = f"{fitted_on}; classes weighted to even odds, ECE at even odds"
    cal = fit_calibrator(raw[rows], labels[rows], "platt", described, even_odds=True)
    return replace(cal, ece_before=round(cal.ece_before or 0.0, 5), ece_after=round(cal.ece_after or 0.0, 5))


def _apply(cal: Calibrator | None, raw: np.ndarray) -> np.ndarray:
    if cal is None:
        return np.full(raw.shape, np.nan)
    return np.where(np.isnan(raw), np.nan, cal.logits(np.nan_to_num(raw)))


def _section(
    face: np.ndarray,
    synthetic: np.ndarray,
    y: np.ndarray,
    seen: np.ndarray,
    described: str,
    fallback: dict[Pattern, SubModel] | None = None,
    toward: Pool | None = None,
    groups: np.ndarray | None = None,
    to_none: bool = False,
) -> KindParameters:
    """The fusion stack and verdict bands fitted on calibrated logits of one set of rows.

    A signal pattern with too few rows here takes its sub-model from ``fallback`` (the shared
    section), so no pattern is left to unfitted equal weights; a pattern fitted here is pulled
    towards the weights fitted on ``toward`` (the shared section's rows) as hard as
    cross-validation over ``groups`` says it should be (:mod:`detector.scoring.fusion.shrink`).
    The bands are then chosen on the scores of exactly these sub-models. The accusing bands keep
    their false-positive rates on the real rows of unseen sources (``~seen``) as well as on all
    real rows when there are :data:`MIN_ROWS_PER_CLASS` of them: reals of a source the models
    trained on score as more real than what users send.
    """
    fitted = fit_stack(face, synthetic, y, toward=toward, groups=groups, to_none=to_none)
    submodels = {**(fallback or {}), **fitted}
    fused = stack_logits(submodels, face, synthetic)
    ok = ~np.isnan(fused)
    fresh = ~seen[ok] & (y[ok] == 0)
    reals_for_fpr = fresh if int(fresh.sum()) >= MIN_ROWS_PER_CLASS else None
    return KindParameters(
        fitted_on=described,
        submodels=submodels,
        thresholds=choose_thresholds(sigmoid(fused[ok]), y[ok], fpr_rows=reals_for_fpr),
        measured={"ece_fit_half": round(expected_calibration_error(sigmoid(fused[ok]), y[ok]), 5)},
    )


NO_EVIDENCE: tuple[SectionKind, ...] = ("video_degraded",)
"""Sections whose weights are pulled towards zero (the base rate) as far as grouped cross-validation
says (:func:`fit_stack` ``to_none``). Degraded videos: 70 calibration rows from 35 clips (13 of them
fake), weak evidence (report-half AUC 0.64-0.71), and fitted freely the face model got weight 2.8
(bootstrap standard error 1.4), so the probability reported for such a video was overconfident
(report-half ECE 0.20 and 0.27 for thumbnails and CRF 51 copies; a perfect score shows 0.16).
Degraded images (875 rows) were tried too and are not pulled: there the same rule raised the
report half's ECE (README, Degraded media)."""


def fit(features: Features, described: str) -> tuple[Calibrator | None, Calibrator | None, FusionParameters]:
    """Per-model calibrators, the fusion stack and the verdict bands fitted on ``features``.

    The calibrators and the shared section are fitted on every row that is not degraded; each
    section kind (:data:`SectionKind`) with at least :data:`MIN_ROWS_PER_CLASS` real and fake rows
    also gets its own section (a degraded one falls back to its media kind's sub-models). The
    scarce patterns of an image or video section are pulled towards the shared section's as far
    as grouped cross-validation says (:mod:`detector.scoring.fusion.shrink`; with
    ``features.groups`` only). Degraded sections are not: they exist because degraded copies
    score unlike ordinary media (the shared rows), and their verdicts never accuse (rule
    ``degraded``), so the false accusations the pull prevents cannot arise there; pulled, the
    degraded images' ECE rose in every degraded variant of the report half (0.076-0.130 ->
    0.091-0.143). The sections of :data:`NO_EVIDENCE` (degraded videos) are pulled towards zero
    weights instead, with ``features.groups``.
    """
    y = features.labels
    kinds_of = features.kinds if features.kinds is not None else np.full(len(y), "", dtype=object)
    plain = np.array([media_of(str(k)) == k for k in kinds_of])
    face = _fit(np.where(plain, features.face, np.nan), y, f"face model, {described}")
    synthetic = _fit(np.where(plain, features.synthetic, np.nan), y, f"synthetic-image model, {described}")
    f_cal, s_cal = _apply(face, features.face), _apply(synthetic, features.synthetic)
    seen = features.seen if features.seen is not None else np.zeros(len(y), bool)
    groups = features.groups
    shared_groups = None if groups is None else groups[plain]  # for the spread only: nothing to pull to
    shared = _section(f_cal[plain], s_cal[plain], y[plain], seen[plain], described, groups=shared_groups)
    pool = None if groups is None else Pool(f_cal[plain], s_cal[plain], y[plain], groups[plain])
    kinds: dict[SectionKind, KindParameters] = {}
    for kind in get_args(SectionKind):
        rows = kinds_of == kind
        usable = rows & ~(np.isnan(f_cal) & np.isnan(s_cal))
        if min(int((y[usable] == 1).sum()), int((y[usable] == 0).sum())) < MIN_ROWS_PER_CLASS:
            continue
        media = media_of(kind)
        fallback = (kinds.get(cast("SectionKind", media)) or shared).submodels  # "image" is a section too
        label = f"{media}s the scope calls degraded" if kind != media else f"{kind}s only"
        if kind in NO_EVIDENCE and groups is not None:
            label += " (weights pulled towards none as far as grouped cross-validation says)"
        try:
            kinds[kind] = _section(
                f_cal[rows],
                s_cal[rows],
                y[rows],
                seen[rows],
                f"{label}: {described}",
                fallback,
                pool if kind == media else None,  # degraded: scored apart, never accusing
                None if groups is None else groups[rows],
                to_none=kind in NO_EVIDENCE,
            )
        except CalibrationDataError:
            continue  # no signal pattern of this kind has enough rows: the shared section applies
    params = FusionParameters(
        schema_version=1,
        fitted_on=described,
        submodels=shared.submodels,
        priors=Priors(),
        thresholds=shared.thresholds,
        measured=shared.measured,
        kinds=kinds,
    )
    return face, synthetic, params


def compare_rules(
    outputs: list[StageOutputs], labels: list[int], settings: Settings
) -> dict[str, dict[str, float]]:
    """Video-level AUC of the raw face evidence under each per-track rule, and of the raw
    synthetic-image evidence under the same rule per video (how the defaults are chosen).

    Only videos that are not degraded count: an image gets the same logit under every rule, and
    degraded copies are scored by sections of their own."""
    from detector.evaluation.metrics import auc
    from detector.settings import FusionSettings

    rules = get_args(FusionSettings.model_fields["track_rule"].annotation)
    if rules != get_args(FusionSettings.model_fields["synthetic_rule"].annotation):
        raise ValueError("track_rule and synthetic_rule no longer offer the same rules")
    y = np.asarray(labels)
    videos = np.array([out.media.kind == "video" and not out.scope.degraded for out in outputs], dtype=bool)
    aucs: dict[str, dict[str, float]] = {"face": {}, "synthetic": {}}
    for rule in rules:
        fusion = settings.fusion.model_copy(update={"track_rule": rule, "synthetic_rule": rule})
        features = raw_features(outputs, labels, settings.model_copy(update={"fusion": fusion}))
        for signal, values in (("face", features.face), ("synthetic", features.synthetic)):
            rows = videos & ~np.isnan(values)
            if len(np.unique(y[rows])) == 2:
                aucs[signal][rule] = round(float(auc(y[rows], values[rows])), 4)
    return aucs


def write_manifest_calibration(path: Path, name: str, cal: Calibrator) -> None:
    """Replace the ``calibration`` table of model ``name`` in the manifest (validated, atomic)."""
    from detector.models._manifest import Manifest

    text = replace_table(
        path.read_text(encoding="utf-8"), f'models."{name}".calibration', cal.to_table(), f'models."{name}"'
    )
    Manifest.model_validate(tomllib.loads(text))  # never write an invalid manifest
    write_atomic(path, text)


def stamped(params: FusionParameters, settings: Settings) -> FusionParameters:
    """``params`` marked with what they were fitted for: the configured models, whose scores they
    combine, and the frames sampled per video, which the video bands' spread depends on."""
    from detector.stages import configured_models

    face, synthetic = configured_models(settings)
    return params.model_copy(
        update={
            "face_model": face[0],
            "synthetic_model": None if synthetic is None else synthetic[0],
            "video_frames": settings.sampling.frames,
        }
    )


def calibrate(
    settings: Settings, config: SuiteConfig, manifest: Path, fusion: Path, dry_run: bool
) -> dict[str, Any]:
    """Fit on the calibrate half of the dev set and (unless ``dry_run``) write manifest and fusion file."""
    from detector.evaluation.checks import evenly_spaced
    from detector.evaluation.runner import outputs_of
    from detector.stages import configured_models

    if settings.sampling.mode != "exact":  # keyframes find fewer distinct frames than video_frames records
        raise InvalidRequest(
            f"calibration samples frames exactly; TRUEFRAME_SAMPLING__MODE is {settings.sampling.mode!r}"
        )
    halves = read_dev_set(config.dev_dir, config.ffpp_dir)
    items = evenly_spaced([i for i in halves if i.half == "calibrate"], config.limit)
    if not items:
        raise InvalidRequest(f"no calibration-half items in {config.dev_dir}")
    outputs, analysed = outputs_of(items, config.variants, settings, config)
    labels = [i.label for i in analysed]
    degraded = sum(bool(out.scope.degraded) for out in outputs)
    described = (
        f"dev set calibrate half ({len({i.group for i in items})} groups, {len(items)} files x variants "
        f"{'+'.join(config.variants)} = {len(outputs)} items, {degraded} of them degraded and fitted only "
        "in their own sections, real fakes; see detector/evaluation/dev_set.py)"
    )
    features = replace(
        raw_features(outputs, labels, settings),
        seen=np.array([i.seen for i in analysed]),
        groups=np.array([i.group for i in analysed]),
    )
    face_cal, synth_cal, params = fit(features, described)
    face, synthetic = configured_models(settings)
    params = stamped(params, settings)
    if not dry_run:
        if face_cal is not None:
            write_manifest_calibration(manifest, face[0], face_cal)
        if synth_cal is not None and synthetic is not None:
            write_manifest_calibration(manifest, synthetic[0], synth_cal)
        header = (
            "Fitted by `trueframe calibrate` (detector/evaluation/calibrate.py), dev set calibrate half.\n"
            "priors are stated, not fitted (no labelled provenance data)."
        )
        write_atomic(fusion, dump_parameters(params, header))
    return {
        "items": len(outputs),
        "face_calibration": None if face_cal is None else face_cal.to_table(),
        "synthetic_calibration": None if synth_cal is None else synth_cal.to_table(),
        "fusion": params.model_dump(mode="json"),
        "auc_by_rule": compare_rules(outputs, labels, settings),
    }
