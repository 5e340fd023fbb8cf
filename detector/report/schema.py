"""The versioned analysis report: what every interface (CLI, HTTP, batch scan) returns.

Pydantic v2 models; ``trueframe schema`` prints :func:`report_json_schema`. Bump
``SCHEMA_VERSION`` on any change a client could notice (minor: additions, major: removals); 2.5 added
``score.degraded`` and ``heatmaps[].crop_margin``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from detector.provenance.types import ProvenanceReport

SCHEMA_VERSION = "2.5"

Verdict = Literal[
    "authentic",
    "likely_authentic",
    "uncertain",
    "likely_manipulated",
    "manipulated",
    "ai_generated",
    "out_of_scope",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def utf8_name(name: str) -> str:
    """``name`` as valid UTF-8 text: the bytes of a file name that is not UTF-8 (which Python holds
    as lone surrogates, ``surrogateescape``) become replacement characters; JSON cannot carry them."""
    try:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a lone surrogate no file name byte gives
        return name.encode("utf-8", "replace").decode("utf-8")


class MediaSection(_Model):
    """What was analysed, as sniffed and probed (never as named)."""

    name: str | None = None
    kind: Literal["image", "video"]
    format: str
    mime: str
    size_bytes: int
    sha256: str
    width: int
    height: int
    fps: float | None = None
    duration_s: float | None = None
    frame_count: int | None = None
    codec: str | None = None
    rotation: int = 0
    has_audio: bool = False
    jpeg_quality: int | None = Field(None, description="JPEG quality estimated from its quantisation table")
    webp_quality: int | None = Field(None, description="lossy WebP quality estimated from its VP8 header")
    avif_quality: int | None = Field(None, description="AVIF quality estimated from its AV1 headers")
    heic_quality: int | None = Field(None, description="HEIC quality estimated from its HEVC headers")

    @field_validator("name")
    @classmethod
    def _utf8(cls, name: str | None) -> str | None:
        """A file name that is not UTF-8 is carried with replacement characters (``--json`` failed
        on it with "surrogates not allowed" and stopped the batch)."""
        return None if name is None else utf8_name(name)


class FaceBox(_Model):
    """One detected face in one sampled frame, with the face model's verdict on its crop."""

    frame_index: int
    timestamp: float
    box: tuple[float, float, float, float] = Field(description="x1, y1, x2, y2 in display pixels")
    probability: float = Field(description="face detector confidence")
    logit: float | None = Field(None, description="face model raw log-odds of manipulation")
    score: float | None = Field(None, description="the face model's calibrated P(manipulated), at even odds")


class FaceTrackReport(_Model):
    """One face followed across frames; its score aggregates its crops' calibrated logits."""

    track_id: int
    length: int
    mean_side: float
    logit: float | None = Field(
        description="calibrated track log-odds, even odds (aggregation rule of the settings)"
    )
    score: float | None = Field(description="calibrated P(manipulated) of the track, at even odds")
    faces: list[FaceBox]


class FrameReport(_Model):
    """One sampled frame: the per-frame score series (strongest face, synthetic-image model)."""

    index: int
    timestamp: float
    faces: int
    max_face_logit: float | None = Field(None, description="highest calibrated face logit in the frame")
    synthetic_logit: float | None = Field(None, description="calibrated synthetic-image logit, at even odds")
    synthetic_score: float | None = Field(None, description="calibrated P(synthetic) of the frame, even odds")


class ModelUse(_Model):
    """A model that contributed, pinned by the sha256 of the weights that ran."""

    name: str
    task: str
    weights_sha256: str
    licence: str


class Signal(_Model):
    """One piece of evidence and what it did to the score, in log-odds and in one sentence."""

    name: str = Field(description="face_model, synthetic_model, base_rate, content_credentials, metadata")
    kind: Literal["model", "prior", "rule", "flag"]
    present: bool = Field(description="False: the signal was missing and is not counted (never a zero)")
    probability: float | None = Field(
        None, description="the signal's own calibrated P(fake); a model's at even odds"
    )
    logit: float | None = Field(None, description="the signal's own calibrated log-odds")
    contribution: float | None = Field(
        None, description="log-odds this signal added to the fused score; None when not folded in"
    )
    counted: bool | None = Field(
        None,
        description=(
            "model signals: True when the fused score weighs it; False when it is missing or the fusion "
            "fitted for this kind of media gives it weight 0 (its rating is shown but cannot move the "
            "score); None for other signals"
        ),
    )
    sentence: str


class Threshold(_Model):
    """A verdict band boundary on P(manipulated), chosen at a stated error rate on calibration data."""

    verdict: Verdict
    bound: Literal["at_least", "at_most"] = Field(description="the band holds P >= or P <= this value")
    manipulated: float = Field(description="the P(manipulated) boundary")
    rate: Literal["false_positive", "false_authentic"] = Field(
        description="false_positive: authentic items at or above; false_authentic: fakes at or below"
    )
    target_rate: float
    measured_rate: float = Field(description="that rate measured on the calibration set")


class Score(_Model):
    """The calibrated verdict: P(manipulated or synthetic), its band and why."""

    verdict: Verdict
    authenticity: float | None = Field(None, description="1 - manipulated; None when out of scope")
    manipulated: float | None = Field(None, description="calibrated P(manipulated or synthetic)")
    manipulated_range: tuple[float, float] | None = Field(
        None,
        description=(
            "95% range of `manipulated` over refits of the fusion on redrawn calibration sets "
            "(how much the fit's small calibration set leaves open); None when `manipulated` is not the "
            "fused score (a signed AI declaration, a watermark or a reviewed match decided, or out of "
            "scope) or no spread was estimated"
        ),
    )
    logit: float | None = Field(
        None,
        description="fused log-odds behind `manipulated`; None when a rule decided `manipulated` itself "
        "(`signed_ai_declaration`, `invisible_watermark`, `known_match`) or out of scope",
    )
    pixel_manipulated: float | None = Field(
        None, description="P(manipulated) from the pixel models alone, before provenance"
    )
    rule: str | None = Field(
        None,
        description=(
            "the stated rule that decided or moved the verdict, if any: signed_ai_declaration, "
            "invisible_watermark, known_match, pixel_evidence_over_trusted_capture, "
            "pixel_evidence_over_known_authentic, degraded_media, limited_scope, face_unweighed, "
            "metadata_ai, uncalibrated"
        ),
    )
    provenance_flag: Literal["tampered", "ingredient_invalid", "unreadable"] | None = Field(
        None,
        description=(
            "credentials present but invalid (tampered: the file's own credentials fail; "
            "ingredient_invalid: only an ingredient's do) or unreadable: reported beside the score"
        ),
    )
    calibrated: bool = Field(description="False when the fitted fusion does not match the models used")
    summary: str = Field(description="one plain sentence a reviewer can repeat")
    basis: str = Field(description="what the score rests on, in words")
    signals: list[Signal] = Field(default_factory=list)
    thresholds: list[Threshold] = Field(default_factory=list)
    fusion: str = Field("", description="where the fusion parameters come from")
    out_of_scope: list[str] = Field(default_factory=list, description="why no score is given, if so")
    limited: list[str] = Field(
        default_factory=list,
        description="why the verdict was kept closer to uncertain (media outside what was validated)",
    )
    degraded: list[str] = Field(
        default_factory=list,
        description=(
            "the reasons of `limited` that weaken every pixel signal (heavy compression, tiny pictures): "
            "the pixels, face ratings included, cannot make this an accusation (rule degraded_media); "
            "empty before schema 2.5"
        ),
    )


DECIDING_SIGNALS: dict[str, str] = {
    "signed_ai_declaration": "content_credentials",
    "invisible_watermark": "invisible_watermark",
    "known_match": "known_match",
}
"""The rules that set a verdict whatever the pixels say, and the signal each rests on (such a
signal adds no log-odds: its ``contribution`` is None). ``serving/static/report.js`` holds the same
table."""


def deciding_signal(score: Score) -> Signal | None:
    """The present signal whose rule set the verdict, if a rule did (else None)."""
    name = DECIDING_SIGNALS.get(score.rule or "")
    return next((s for s in score.signals if s.name == name and s.present), None)


class Heatmap(_Model):
    """Grad-CAM of the face model on one face crop: a grayscale PNG with the crop's shape."""

    track_id: int
    frame_index: int
    width: int
    height: int
    logit: float = Field(description="the face model's raw logit on this crop")
    png_base64: str
    crop_margin: float | None = Field(
        None,
        description=(
            "the crop the map covers: the square of side crop_margin x the longer side of this face's box "
            "(`tracks[].faces[]` at `frame_index`), centred on the box; null before schema 2.5"
        ),
    )


ReviewVerdict = Literal["authentic", "manipulated", "ai_generated", "inconclusive"]


class KnownMatch(_Model):
    """A near-duplicate of media that people already reviewed (PDQ hashes; see detector/provenance/pdq.py)."""

    verdict: ReviewVerdict = Field(description="the human decision on the reviewed item")
    reviewed_at: datetime = Field(description="when that decision was recorded")
    distance: int = Field(description="differing PDQ bits (image), or the closest frame's (video)")
    matched_share: float = Field(1.0, ge=0.0, le=1.0, description="share of this video's frames that match")
    list_name: str = Field("reviewed", description="the hash list the match comes from")
    item: str | None = Field(None, description="the reviewed item's reference in that list, if shared")


class HumanReview(_Model):
    """The latest decision a reviewer recorded on this job (decisions are append-only; see the API)."""

    review_id: str
    verdict: ReviewVerdict = Field(description="the reviewer's decision")
    reason: str = Field(description="why, in the reviewer's words")
    notes: str | None = None
    reviewed_at: datetime
    reviewer: str | None = Field(None, description="who decided (shown to reviewers and admins only)")
    model_verdict: Verdict | None = Field(None, description="the models' verdict the reviewer saw")
    appeal_id: str | None = Field(None, description="the appeal this decision answered, if any")


class PerceptualHash(_Model):
    """The PDQ hashes of this medium (what known-media matching compares; only hashes are kept)."""

    algorithm: Literal["pdq"] = "pdq"
    hashes: list[str] = Field(description="64 hex digits per image or sampled frame")
    qualities: list[int] = Field(description="PDQ quality per hash (below 50: too flat to match)")


class Report(_Model):
    """Everything trueframe found about one image or video."""

    schema_version: str = SCHEMA_VERSION
    trueframe_version: str
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    media: MediaSection
    score: Score
    provenance: ProvenanceReport | None = None
    frames: list[FrameReport] = Field(default_factory=list)
    tracks: list[FaceTrackReport] = Field(default_factory=list)
    models: list[ModelUse] = Field(default_factory=list)
    heatmaps: list[Heatmap] = Field(default_factory=list, description="only when asked for")
    perceptual_hash: PerceptualHash | None = None
    known_match: KnownMatch | None = Field(None, description="a reviewed near-duplicate, when one is known")
    review: HumanReview | None = Field(None, description="the latest human decision on this job, if any")
    timings: dict[str, float] = Field(default_factory=dict, description="seconds per stage")
    warnings: list[str] = Field(default_factory=list)

    def to_json(self, indent: int | None = None) -> str:
        """The report as JSON text (what `--json` prints and the API returns)."""
        return self.model_dump_json(indent=indent)


def report_json_schema() -> dict[str, Any]:
    """JSON schema of :class:`Report`, with its version in ``$id``-like metadata."""
    schema = Report.model_json_schema()
    schema["x-schema-version"] = SCHEMA_VERSION
    return schema
