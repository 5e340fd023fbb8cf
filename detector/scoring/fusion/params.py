"""The fitted fusion parameters (``weights/fusion.toml``): sub-models, stated priors, band thresholds.

Validated strictly (unknown keys are errors). Weights on model logits are >= 0 and the band
thresholds must increase, so a file that would break monotonicity or the band order is rejected.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from detector.errors import ModelError
from detector.models._manifest import read_validated_toml
from detector.report.schema import Threshold, Verdict

FUSION_PACKAGE = "weights"
FUSION_FILE = "fusion.toml"
Pattern = Literal["face_synthetic", "face", "synthetic"]
SectionKind = Literal["image", "video", "image_degraded", "video_degraded"]
"""Sections of ``fusion.toml``: one per media kind, and one per media kind for media the scope calls
degraded (heavy compression, tiny pictures), whose scores spread differently again: fitted on the
dev set's degraded copies, their probabilities mean what they say there too."""


DEGRADED_SUFFIX = "_degraded"


def section_kind(kind: str | None, degraded: bool) -> str | None:
    """The section an item of media ``kind`` is scored with (``image_degraded`` when degraded)."""
    return None if kind is None else f"{kind}{DEGRADED_SUFFIX}" if degraded else kind


def media_of(section: str) -> str:
    """The media kind of a section: ``image`` for ``image`` and for ``image_degraded``."""
    return section.removesuffix(DEGRADED_SUFFIX)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SubModel(_Strict):
    """``logit = intercept + face * face_logit + synthetic * synthetic_logit`` for one signal pattern."""

    intercept: float
    face: float = Field(0.0, ge=0.0)
    synthetic: float = Field(0.0, ge=0.0)
    n: int = Field(0, ge=0, description="calibration items it was fitted on")
    pull: float = Field(
        0.0,
        ge=0.0,
        description=(
            "penalty pulling the weights towards the shared section's, or towards zero in a section "
            "fitted with no evidence as its target (degraded videos; fusion/shrink.py, calibrate.NO_EVIDENCE)"
        ),
    )
    covariance: list[list[float]] = Field(
        default_factory=list,
        description=(
            "bootstrap covariance of (intercept, face, synthetic) over refits on redrawn calibration "
            "sets (fusion/spread.py); empty: not estimated, no range is reported"
        ),
    )

    @model_validator(mode="after")
    def _covariance(self) -> SubModel:
        c = self.covariance
        if not c:
            return self
        if len(c) != 3 or any(len(row) != 3 for row in c):
            raise ValueError("covariance must be 3 x 3 (intercept, face, synthetic)")
        if any(c[i][i] < 0.0 for i in range(3)) or any(
            abs(c[i][j] - c[j][i]) > 1e-9 * (1.0 + abs(c[i][j])) for i in range(3) for j in range(3)
        ):
            raise ValueError("covariance must be symmetric with a non-negative diagonal")
        return self


class BandThreshold(_Strict):
    """One band boundary on P(manipulated) and the error rate it was chosen at."""

    manipulated: float = Field(ge=0.0, le=1.0)
    target_rate: float = Field(ge=0.0, le=1.0)
    measured_rate: float = Field(ge=0.0, le=1.0)


class Thresholds(_Strict):
    """P <= authentic <= likely_authentic < uncertain < likely_manipulated <= P <= manipulated."""

    authentic: BandThreshold
    likely_authentic: BandThreshold
    likely_manipulated: BandThreshold
    manipulated: BandThreshold

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        values = [self.authentic, self.likely_authentic, self.likely_manipulated, self.manipulated]
        ps = [v.manipulated for v in values]
        if ps != sorted(ps) or ps[1] >= ps[2]:
            raise ValueError(f"band thresholds must increase: {ps}")
        return self

    def band(self, p: float) -> Verdict:
        """The verdict band of P(manipulated) ``p``."""
        if p >= self.manipulated.manipulated:
            return "manipulated"
        if p >= self.likely_manipulated.manipulated:
            return "likely_manipulated"
        if p <= self.authentic.manipulated:
            return "authentic"
        if p <= self.likely_authentic.manipulated:
            return "likely_authentic"
        return "uncertain"

    def report(self) -> list[Threshold]:
        """The thresholds as shown in a report."""
        rows: list[tuple[Verdict, BandThreshold]] = [
            ("authentic", self.authentic),
            ("likely_authentic", self.likely_authentic),
            ("likely_manipulated", self.likely_manipulated),
            ("manipulated", self.manipulated),
        ]
        return [
            Threshold(
                verdict=verdict,
                bound="at_most" if verdict.endswith("authentic") else "at_least",
                manipulated=t.manipulated,
                rate="false_authentic" if verdict.endswith("authentic") else "false_positive",
                target_rate=t.target_rate,
                measured_rate=t.measured_rate,
            )
            for verdict, t in rows
        ]


class Priors(_Strict):
    """Stated (not fitted) log-odds for provenance evidence that has no labelled data to fit on."""

    trusted_capture: float = Field(-2.0, le=0.0)
    metadata_ai: float = Field(1.5, ge=0.0)
    known_authentic: float = Field(-3.0, le=0.0, description="a reviewed near-duplicate judged authentic")


class KindParameters(_Strict):
    """Sub-models and bands fitted on one media kind only.

    A video's score aggregates many frames and face tracks, so its scores spread differently from a
    single image's: bands fitted on both together let real videos cross ``likely_manipulated`` far
    more often than the stated rate.
    """

    fitted_on: str
    submodels: dict[Pattern, SubModel]
    thresholds: Thresholds
    measured: dict[str, float] = Field(default_factory=dict)


class FusionParameters(_Strict):
    """The contents of ``weights/fusion.toml``.

    The top-level sub-models and thresholds were fitted on every kind together; a ``kinds`` section
    (``[kinds.video]``) replaces both for items of that kind (:meth:`for_kind`), and a degraded one
    (``[kinds.image_degraded]``) for degraded items of that kind.
    """

    schema_version: Literal[1]
    fitted_on: str
    face_model: str | None = None
    synthetic_model: str | None = None
    video_frames: int | None = Field(
        None,
        ge=1,
        description=(
            "frames sampled per calibration video (``sampling.frames`` of the fit); a video checked "
            "on fewer is limited (detector.scoring.scope.few_frames); absent: not recorded, not checked"
        ),
    )
    submodels: dict[Pattern, SubModel]
    priors: Priors = Field(default_factory=Priors)
    thresholds: Thresholds
    measured: dict[str, float] = Field(default_factory=dict, description="held-out metrics")
    kinds: dict[SectionKind, KindParameters] = Field(default_factory=dict)

    def for_kind(self, kind: str | None) -> KindParameters:
        """The sub-models and bands of section ``kind`` (None: the shared ones); a degraded section
        that was not fitted falls back to its media kind's, and that to the shared one."""
        for name, section in self.kinds.items():
            if name == kind:
                return section
        if kind is not None and media_of(kind) != kind:
            return self.for_kind(media_of(kind))
        return KindParameters(
            fitted_on=self.fitted_on,
            submodels=self.submodels,
            thresholds=self.thresholds,
            measured=self.measured,
        )


def default_fusion_path() -> Path:
    """``fusion.toml`` inside the installed ``weights`` package."""
    return Path(str(resources.files(FUSION_PACKAGE).joinpath(FUSION_FILE)))


def load_parameters(path: Path | None = None) -> FusionParameters:
    """The validated fusion parameters at ``path`` (default: the shipped file); ``path`` is the
    ``fusion.fusion_file`` setting, named in the error when its file cannot be read or is invalid."""
    if path is None:
        return read_validated_toml(default_fusion_path(), FusionParameters, "fusion parameters")
    try:
        return read_validated_toml(path, FusionParameters, "fusion parameters")
    except ModelError as exc:
        raise ModelError(f"TRUEFRAME_FUSION__FUSION_FILE: {exc.message}") from exc
