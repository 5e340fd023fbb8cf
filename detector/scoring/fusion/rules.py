"""Fusion: calibrated model logits + provenance -> one P(manipulated or synthetic), a band and why.

Pixel evidence is combined by a **logistic stack** fitted by ``scripts/calibrate.py`` and stored in
``weights/fusion.toml`` (:class:`FusionParameters`). Which pixel signals are present selects a
separately fitted sub-model (``face_synthetic``, ``face``, ``synthetic``): a missing signal changes
the sub-model, it is never fed in as a zero. Weights on model logits are constrained to be >= 0,
so the fused score is monotone in each model's evidence. When no joint ``face_synthetic`` model
was fitted (no calibration items carry both kinds of fakes), a face and a synthetic score combine
as a noisy-OR of the two single-signal sub-models: the item is fake if either detector is right.

Provenance is evidence of another kind and follows stated rules, not fitted weights:

1. A *valid* manifest (``trusted`` or ``valid_untrusted``) declaring ``generated`` or ``ai_edited``
   makes the verdict ``ai_generated`` (AI-edited wording for edits) whatever the pixels say. So does
   the file's own manifest declaring it in its own actions when only an ingredient's credentials
   fail (flag ``ingredient_invalid``): its signature and hashes verify, so its declaration is as
   sound as a valid store's; a declaration passed on from an ingredient is not counted then.
2. An ``invalid`` (or ``unreadable``) manifest is reported as ``provenance_flag`` beside the pixel
   score and never changes it, but for rule 1's case of the file's own intact manifest.
3. A *trusted* camera capture (``c2pa.created`` with IPTC ``digitalCapture``, no edit actions)
   adds the stated prior ``priors.trusted_capture`` (negative log-odds), but cannot hide strong
   pixel evidence: when the pixels alone say ``manipulated``, the verdict stays at least
   ``likely_manipulated``.
4. Unsigned metadata that strongly indicates generative AI (e.g. Stable Diffusion parameters in
   PNG text) adds the stated prior ``priors.metadata_ai``; it is not a signature. Such a file is
   never called ``authentic`` or ``likely_authentic`` (rule ``metadata_ai``: ``uncertain``): anyone
   can write that metadata, so it accuses nothing, but a file that names its own generator cannot be
   vouched for by the pixels. Trusted camera credentials or a reviewed authentic near-duplicate
   lift this.
5. The invisible watermark of the Stable Diffusion / SDXL reference pipelines, decoded so closely
   that chance is excluded (:mod:`detector.provenance.watermark`), makes the verdict
   ``ai_generated`` like rule 1 (rule ``invisible_watermark``); its absence is not counted.

6. A near-duplicate of media people reviewed (PDQ hashes, :mod:`detector.provenance.pdq`): a human
   ``manipulated`` or ``ai_generated`` decision outweighs the models (verdict and rule
   ``known_match``, probability at least the ``manipulated`` band); ``authentic`` adds the stated
   prior ``priors.known_authentic`` (and, like a trusted capture, cannot hide strong pixel evidence);
   ``inconclusive`` is reported and not counted.
7. Media the detectors were not validated on (:mod:`detector.scoring.scope`; reasons in
   ``score.limited``) keep their verdict closer to ``uncertain``. Faces too small to judge, image
   formats no model was validated on (AVIF, HEIC), greyscale media, images of a picture inset in a
   flat canvas (screenshots), videos in which no face was found and videos checked on fewer frames
   than the video fusion was calibrated on move it one
   step (rule ``limited_scope``): ``manipulated`` becomes ``likely_manipulated``, the ``likely_*`` bands
   become ``uncertain``, ``authentic`` becomes ``likely_authentic``. Degraded
   media (heavy compression, starved video, tiny pictures) are never accused by their pixels (rule
   ``degraded_media``): ``manipulated`` and both ``likely_*`` bands become ``uncertain``,
   ``authentic`` becomes ``likely_authentic``. Rules 1, 5 and 6 still decide on such media.

8. A face the fused score does not weigh (the section for this kind of media gives the face model
   weight 0: on the dev set's stills, which hold no face swaps, it did not tell real from fake)
   cannot be vouched for by the pixels: such an item is at most ``likely_authentic`` (rule
   ``face_unweighed``), since the ``authentic`` band's error rate was measured on fakes without
   face manipulations. Trusted camera credentials or a reviewed authentic near-duplicate, which
   vouch for the whole picture, lift this.
9. Models the fusion parameters were not fitted for (``score.calibrated`` false: another face or
   synthetic-image model chosen by name) are combined with weight 1 each, and the bands' error
   rates were not measured for them: the verdict moves one step towards ``uncertain`` as in rule 7
   (rule ``uncalibrated``), and the summary says the detectors were not calibrated together.

Without any pixel signal that applies (no face, no synthetic-image model, or a drawing, screenshot,
blank or strip-shaped image; reasons in ``score.out_of_scope``) the verdict is ``out_of_scope`` and
no probability is given.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from detector.provenance.types import (
    ProvenanceReport,
    counted_ai_declaration,
    ingredient_only_failure,
    source_type_term,
    strong_ai_hints,
)
from detector.report.schema import KnownMatch, Score, Signal, Verdict
from detector.scoring.fusion.params import (
    FUSION_FILE,
    BandThreshold,
    FusionParameters,
    KindParameters,
    Pattern,
    Priors,
    SectionKind,
    SubModel,
    Thresholds,
    default_fusion_path,
    load_parameters,
    section_kind,
)
from detector.scoring.fusion.spread import Z95, logit_bounds, standard_error
from detector.scoring.fusion.text import (
    credentials_signal,
    known_match_signal,
    metadata_signal,
    model_signal,
    summary_sentence,
    watermark_signal,
)
from detector.scoring.logodds import sigmoid
from detector.scoring.scope import Scope

__all__ = [
    "BandThreshold",
    "Fusion",
    "FusionInputs",
    "FusionParameters",
    "Pattern",
    "Priors",
    "SubModel",
    "Thresholds",
    "default_fusion_path",
    "load_parameters",
    "metadata_ai_hint",
    "noisy_or_logit",
    "trusted_capture",
]

LIMITED_STEP: dict[str, Verdict] = {
    "manipulated": "likely_manipulated",
    "likely_manipulated": "uncertain",
    "likely_authentic": "uncertain",
    "authentic": "likely_authentic",
}
"""Rule 7: media the detectors were not validated on keep their verdict one step closer to uncertain."""

DEGRADED_STEP: dict[str, Verdict] = {
    "manipulated": "uncertain",
    "likely_manipulated": "uncertain",
    "likely_authentic": "uncertain",
    "authentic": "likely_authentic",
}
"""Rule 7, degraded media: their pixels never accuse (a wrong accusation costs more than a miss)."""

STATED_SIGNALS = frozenset({"content_credentials", "metadata", "known_match"})
"""Provenance evidence that adds a stated prior (``[priors]``) to the fused log-odds when counted."""
CAPTURE_SOURCE_TYPE = "digitalCapture"
NON_EDIT_ACTIONS = frozenset({"c2pa.created", "c2pa.published"})


def noisy_or_logit(z_face: float, z_synthetic: float) -> float:
    """Log-odds of "fake by either detector": logit(1 - (1 - p_f)(1 - p_s)), computed stably."""
    log_authentic = -(math.log1p(math.exp(-abs(z_face))) + max(z_face, 0.0))
    log_authentic -= math.log1p(math.exp(-abs(z_synthetic))) + max(z_synthetic, 0.0)
    if log_authentic == 0.0:  # both p tiny (underflow): logit(p_f + p_s) ~ log(e^z_f + e^z_s)
        return float(np.logaddexp(z_face, z_synthetic))
    return math.log(-math.expm1(log_authentic)) - log_authentic


@dataclass(frozen=True)
class FusionInputs:
    """What fusion needs about one item; ``None`` means the signal is missing, not zero."""

    face_logit: float | None = None
    synthetic_logit: float | None = None
    provenance: ProvenanceReport | None = None
    photographic: bool = True
    scope: Scope = field(default_factory=Scope)
    known_match: KnownMatch | None = None
    media_kind: str | None = None  # "image" / "video": picks the fusion section fitted on that kind
    face_basis: str = ""
    synthetic_basis: str = ""


@dataclass(frozen=True)
class Combined:
    """A fused pixel logit and what each detector contributed (log-odds; None: signal missing)."""

    logit: float
    face: float | None
    synthetic: float | None
    intercept: float | None  # None for the noisy-OR combination
    fitted: bool
    unweighted: tuple[str, ...] = ()  # present signals the fitted sub-model gives weight 0 ("face"...)
    bounds: tuple[float, float] | None = None  # 95% range of the logit over refits (fusion/spread.py)


def combine(
    submodels: Mapping[Pattern, SubModel], face: float | None, synthetic: float | None
) -> Combined | None:
    """The one fusion of calibrated pixel logits, used by serving and by fitting alike.

    The present signals pick a sub-model; without a fitted joint ``face_synthetic`` model but with
    both single ones, a face and a synthetic score combine as a noisy-OR. A pattern with no fitted
    sub-model gives every present calibrated logit weight 1 (and says it was not fitted).
    """
    if face is None and synthetic is None:
        return None
    both = face is not None and synthetic is not None
    if both and "face_synthetic" not in submodels and "face" in submodels and "synthetic" in submodels:
        assert face is not None
        assert synthetic is not None
        fs, ss = submodels["face"], submodels["synthetic"]
        z_f, z_s = fs.intercept + fs.face * face, ss.intercept + ss.synthetic * synthetic
        z = noisy_or_logit(z_f, z_s)
        bounds = None
        if fs.covariance and ss.covariance:  # monotone in both: each end from both ends
            d_f = Z95 * standard_error(fs.covariance, face, None)
            d_s = Z95 * standard_error(ss.covariance, None, synthetic)
            bounds = (noisy_or_logit(z_f - d_f, z_s - d_s), noisy_or_logit(z_f + d_f, z_s + d_s))
        return Combined(z, z - z_s, z - z_f, None, True, bounds=bounds)
    pattern: Pattern = "face_synthetic" if both else "face" if face is not None else "synthetic"
    fitted = submodels.get(pattern)
    sub = fitted or SubModel(
        intercept=0.0, face=float(face is not None), synthetic=float(synthetic is not None)
    )
    cf = None if face is None else sub.face * face
    cs = None if synthetic is None else sub.synthetic * synthetic
    zero = tuple(
        name
        for name, value, weight in (("face", face, sub.face), ("synthetic", synthetic, sub.synthetic))
        if fitted is not None and value is not None and weight == 0.0
    )
    z = sub.intercept + (cf or 0.0) + (cs or 0.0)
    bounds = logit_bounds(z, standard_error(sub.covariance, face, synthetic)) if sub.covariance else None
    return Combined(z, cf, cs, sub.intercept, fitted is not None, zero, bounds)


def _base_signal(combined: Combined) -> Signal:
    if combined.intercept is None:
        sentence = (
            "Face and synthetic-image evidence combine as either-or (noisy-OR of each detector's calibrated "
            "probability); each contribution is what that detector adds to the other."
        )
    else:
        sentence = (
            "Starting point for this combination of detectors on the calibration set: "
            f"{combined.intercept:+.2f} log-odds."
        )
        if not combined.fitted:
            sentence = "No fitted fusion for these detectors: each calibrated logit has weight 1."
    return Signal(
        name="base_rate", kind="prior", present=True, contribution=combined.intercept, sentence=sentence
    )


def trusted_capture(provenance: ProvenanceReport | None) -> bool:
    """Rule 3: a trusted manifest records a camera capture (IPTC digitalCapture) and no edits."""
    if provenance is None or provenance.state != "trusted" or provenance.active_manifest is None:
        return False
    if provenance.ai_declaration.value != "none_declared":
        return False
    actions = provenance.active_manifest.actions
    captured = any(
        a.action == "c2pa.created"
        and a.digital_source_type is not None
        and source_type_term(a.digital_source_type) == CAPTURE_SOURCE_TYPE
        for a in actions
    )
    return captured and all(a.action in NON_EDIT_ACTIONS for a in actions)


def metadata_ai_hint(provenance: ProvenanceReport | None) -> bool:
    """Rule 4: unsigned metadata strongly indicating generative AI or an AI edit."""
    return bool(strong_ai_hints(provenance))


def _section_key(inputs: FusionInputs) -> str | None:
    """The fusion section an item is scored with: its media kind's, or its degraded one."""
    return section_kind(inputs.media_kind, bool(inputs.scope.degraded))


class Fusion:
    """The fusion stage; parameters are loaded once and shared by every call."""

    def __init__(
        self,
        params: FusionParameters,
        face_model: str | None = None,
        synthetic_model: str | None = None,
        source: str = f"weights/{FUSION_FILE}",
    ) -> None:
        self.params = params
        self.sections = {kind: params.for_kind(kind) for kind in (None, *get_args(SectionKind))}
        self.source = source
        self.face_model = face_model
        self.synthetic_model = synthetic_model
        self.mismatch = [
            f"{what} {used!r} (fitted for {fitted!r})"
            for what, used, fitted in (
                ("face model", face_model, params.face_model),
                ("synthetic-image model", synthetic_model, params.synthetic_model),
            )
            if used is not None and used != fitted
        ]

    @classmethod
    def load(
        cls, path: Path | None = None, face_model: str | None = None, synthetic_model: str | None = None
    ) -> Fusion:
        """Fusion with the parameters at ``path`` (default: ``weights/fusion.toml``)."""
        source = str(path) if path is not None else f"weights/{FUSION_FILE}"
        return cls(load_parameters(path), face_model, synthetic_model, source)

    def submodels(self, kind: str | None = None) -> dict[Pattern, SubModel]:
        """The sub-models fitted for section ``kind``; none when fitted for other models (equal weights)."""
        return {} if self.mismatch else dict(self.section(kind).submodels)

    def section(self, kind: str | None) -> KindParameters:
        """The sub-models and bands for section ``kind`` (:func:`section_kind`), built once per
        parameter file (a hot path)."""
        return self.sections.get(kind, self.sections[None])

    def pixel_evidence(self, inputs: FusionInputs) -> tuple[Combined | None, list[Signal]]:
        """The fused pixel evidence (None when no detector applies) and one signal per detector."""
        face = inputs.face_logit if inputs.photographic else None
        synth = inputs.synthetic_logit if inputs.photographic else None
        combined = combine(self.submodels(_section_key(inputs)), face, synth)
        signals: list[Signal] = []
        if combined is not None:
            signals.append(_base_signal(combined))
        for name, value, basis in (
            ("face_model", face, inputs.face_basis),
            ("synthetic_model", synth, inputs.synthetic_basis),
        ):
            configured = (self.face_model if name == "face_model" else self.synthetic_model) is not None
            short = name.split("_")[0]
            contribution = None if combined is None else getattr(combined, short)
            unweighted = combined is not None and short in combined.unweighted
            signals.append(
                model_signal(
                    name,
                    value,
                    contribution,
                    basis,
                    configured,
                    inputs.photographic,
                    unweighted,
                    inputs.media_kind,
                    inputs.scope.out_of_scope,
                )
            )
        return combined, signals

    def fuse(self, inputs: FusionInputs) -> Score:
        """The calibrated :class:`~detector.report.Score` of one item."""
        prov = inputs.provenance
        combined, signals = self.pixel_evidence(inputs)
        pixel_logit = None if combined is None else combined.logit
        logit = pixel_logit
        capture = trusted_capture(prov)
        hint = metadata_ai_hint(prov)
        priors = self.params.priors
        known = inputs.known_match
        vouched = known is not None and known.verdict == "authentic"
        if logit is not None and capture:
            logit += priors.trusted_capture
        if logit is not None and hint:
            logit += priors.metadata_ai
        if logit is not None and vouched:
            logit += priors.known_authentic
        # a signed AI declaration or a watermark decides with P = 1 and no fused log-odds: no prior counts
        # (a known match's floor does not: P is the fused one where it is above the floor)
        decided = provenance_decides(prov)
        counted = pixel_logit is not None and not decided
        signals.append(known_match_signal(known, priors.known_authentic if vouched and counted else None))
        signals.append(credentials_signal(prov, capture, priors.trusted_capture if counted else None))
        signals.append(watermark_signal(prov, inputs.media_kind))
        if prov is not None and prov.metadata_hints:
            signals.append(
                metadata_signal(prov, hint, priors.metadata_ai if hint and counted else None, decided)
            )
        vouching = "trusted_capture" if capture else "known_authentic" if vouched else None
        shift = 0.0 if logit is None or pixel_logit is None else logit - pixel_logit  # stated priors
        bounds = None
        if combined is not None and combined.bounds is not None:
            bounds = (combined.bounds[0] + shift, combined.bounds[1] + shift)
        unweighed = combined is not None and "face" in combined.unweighted
        return self._verdict(inputs, signals, pixel_logit, logit, vouching, unweighed, bounds)

    def _verdict(
        self,
        inputs: FusionInputs,
        signals: list[Signal],
        pixel_logit: float | None,
        logit: float | None,
        vouching: str | None,
        face_unweighed: bool = False,
        bounds: tuple[float, float] | None = None,
    ) -> Score:
        prov = inputs.provenance
        flag = provenance_flag(prov)
        calibrated = not self.mismatch
        section = self.section(_section_key(inputs))
        thresholds = section.thresholds
        pixel_p = None if pixel_logit is None else sigmoid(pixel_logit)
        rule: str | None = None
        known = inputs.known_match
        spread: tuple[float, float] | None = None
        if provenance_decides(prov):
            verdict: Verdict = "ai_generated"
            rule = "signed_ai_declaration" if counted_ai_declaration(prov) else "invisible_watermark"
            p: float | None = 1.0
            logit = None
        elif known is not None and known.verdict in ("manipulated", "ai_generated"):
            verdict, rule = known.verdict, "known_match"
            p = max(sigmoid(logit) if logit is not None else 0.0, thresholds.manipulated.manipulated)
            logit = None  # the rule decided: like a signed declaration, no fused log-odds stand behind p
        elif logit is None:
            verdict, p = "out_of_scope", None
        else:
            p = sigmoid(logit)
            if bounds is not None:
                spread = (sigmoid(bounds[0]), sigmoid(bounds[1]))
            verdict = thresholds.band(p)
            if (
                vouching is not None
                and pixel_p is not None
                and thresholds.band(pixel_p) == "manipulated"
                and verdict not in ("manipulated", "likely_manipulated")
            ):
                verdict, rule = "likely_manipulated", f"pixel_evidence_over_{vouching}"
            pixels_decide = rule is None or rule.startswith("pixel_evidence_over")
            if inputs.scope.degraded and pixels_decide and verdict in DEGRADED_STEP:
                verdict, rule = DEGRADED_STEP[verdict], "degraded_media"
            elif inputs.scope.limited and rule is None and verdict in LIMITED_STEP:
                verdict, rule = LIMITED_STEP[verdict], "limited_scope"
            elif face_unweighed and rule is None and vouching is None and verdict == "authentic":
                verdict, rule = "likely_authentic", "face_unweighed"
            elif self.mismatch and pixels_decide and verdict in LIMITED_STEP:
                # the bands' rates were not measured for these models, whatever the pixels decided
                verdict, rule = LIMITED_STEP[verdict], "uncalibrated"
            if verdict in ("authentic", "likely_authentic") and vouching is None and metadata_ai_hint(prov):
                verdict, rule = "uncertain", "metadata_ai"  # the file names generative AI itself
            if verdict == "manipulated" and _synthetic_leads(signals):
                verdict = "ai_generated"
        basis = self._basis(signals)
        return Score(
            verdict=verdict,
            authenticity=None if p is None else 1.0 - p,
            manipulated=p,
            manipulated_range=spread,
            logit=logit,
            pixel_manipulated=pixel_p,
            rule=rule,
            provenance_flag=flag,
            calibrated=calibrated,
            summary=summary_sentence(
                verdict,
                p,
                rule,
                flag,
                prov,
                inputs.photographic,
                known,
                inputs.scope.limited,
                spread,
                inputs.media_kind,
                calibrated,
                inputs.scope.degraded,
                [s for s in signals if s.name in STATED_SIGNALS and s.contribution is not None],
                inputs.scope.out_of_scope,
            ),
            basis=basis,
            signals=signals,
            thresholds=thresholds.report(),
            fusion=f"{self.source}: {section.fitted_on}",
            out_of_scope=list(inputs.scope.out_of_scope),
            limited=list(inputs.scope.limited),
            degraded=list(inputs.scope.degraded),
        )

    def _basis(self, signals: list[Signal]) -> str:
        """The models' sentences joined into one (each without its full stop), noting when none
        applies or the parameters mismatch."""
        models = [s for s in signals if s.kind == "model"]
        basis = "; ".join(s.sentence[0].lower() + s.sentence[1:].rstrip(".") for s in models)
        if not any(s.present for s in models):
            basis = "no detector applies: " + basis
        if self.mismatch:
            basis += "; fusion parameters were not fitted for " + ", ".join(self.mismatch)
        return basis + "."


def provenance_decides(prov: ProvenanceReport | None) -> bool:
    """Whether the file's own evidence decides ``ai_generated`` with P = 1: a signed AI declaration
    (rule 1) or a generator's invisible watermark; one test for the verdict and for the priors."""
    return counted_ai_declaration(prov) or (prov is not None and prov.watermark is not None)


def provenance_flag(
    provenance: ProvenanceReport | None,
) -> Literal["tampered", "ingredient_invalid", "unreadable"] | None:
    """Rule 2: an invalid manifest is flagged ``tampered``, or ``ingredient_invalid`` when only an
    ingredient's credentials fail (the file's own are intact); an unreadable one ``unreadable``."""
    if provenance is not None and provenance.state == "invalid":
        return "ingredient_invalid" if ingredient_only_failure(provenance) else "tampered"
    if provenance is not None and provenance.state == "unreadable":
        return "unreadable"
    return None


def _synthetic_leads(signals: list[Signal]) -> bool:
    """The synthetic-image model is the largest positive pixel contribution."""
    by_name = {s.name: s.contribution or 0.0 for s in signals if s.kind == "model"}
    synth = by_name.get("synthetic_model", 0.0)
    return synth > 0.0 and synth > by_name.get("face_model", 0.0)
