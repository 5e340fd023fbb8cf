"""The versioned analysis report: what every interface (CLI, HTTP, batch scan) returns.

Pydantic v2 models; ``trueframe schema`` prints :func:`report_json_schema`. Bump
``SCHEMA_VERSION`` on any change a client could notice (minor: additions, major: removals).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from detector.provenance_types import ProvenanceReport

SCHEMA_VERSION = "1.0"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


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


class FaceBox(_Model):
    """One detected face in one sampled frame, with the face model's verdict on its crop."""

    frame_index: int
    timestamp: float
    box: tuple[float, float, float, float] = Field(description="x1, y1, x2, y2 in display pixels")
    probability: float = Field(description="face detector confidence")
    logit: float | None = Field(None, description="face model log-odds of manipulation")
    score: float | None = Field(None, description="sigmoid(logit): P(manipulated), uncalibrated")


class FaceTrackReport(_Model):
    """One face followed across frames; its score aggregates its crops."""

    track_id: int
    length: int
    mean_side: float
    logit: float | None
    score: float | None
    faces: list[FaceBox]


class FrameReport(_Model):
    """One sampled frame: when it is, how many faces, and the strongest face evidence in it."""

    index: int
    timestamp: float
    faces: int
    max_face_logit: float | None = None


class ModelUse(_Model):
    """A model that contributed, pinned by the sha256 of the weights that ran."""

    name: str
    task: str
    weights_sha256: str
    licence: str


class OverallScore(_Model):
    """P(manipulated or synthetic) for the whole item.

    Provisional: a weighted mean of face-track logits (weights: track length x mean face side),
    uncalibrated. The calibration issue replaces it with a fused, calibrated probability.
    """

    manipulated: float | None = Field(None, description="P(manipulated or synthetic), or None")
    authenticity: float | None = Field(None, description="1 - manipulated, or None")
    logit: float | None = None
    method: str = "provisional_weighted_track_mean"
    provisional: bool = True
    basis: str = Field(description="what the score rests on, in words")


class Report(_Model):
    """Everything trueframe found about one image or video."""

    schema_version: str = SCHEMA_VERSION
    trueframe_version: str
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    media: MediaSection
    score: OverallScore
    provenance: ProvenanceReport | None = None
    frames: list[FrameReport] = Field(default_factory=list)
    tracks: list[FaceTrackReport] = Field(default_factory=list)
    models: list[ModelUse] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict, description="seconds per stage")
    warnings: list[str] = Field(default_factory=list)

    def to_json(self, indent: int | None = None) -> str:
        """The report as JSON text (what `--json` prints and the API returns)."""
        return self.model_dump_json(indent=indent)


def sigmoid(logit: float) -> float:
    """Numerically safe logistic function."""
    if logit >= 0:
        return 1.0 / (1.0 + math.exp(-logit))
    z = math.exp(logit)
    return z / (1.0 + z)


def report_json_schema() -> dict[str, Any]:
    """JSON schema of :class:`Report`, with its version in ``$id``-like metadata."""
    schema = Report.model_json_schema()
    schema["x-schema-version"] = SCHEMA_VERSION
    return schema
