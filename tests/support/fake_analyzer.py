"""A fake :class:`serving.analyzer.Analyzer`: no torch, no model, no ``../shared/data``.

It probes the upload with the real :class:`~detector.media.loader.MediaLoader` (PIL and PyAV only,
so hostile input fails with the same typed errors as the real analyzer), reports progress at the
same points as :mod:`detector.stages`, and returns a valid :class:`~detector.report.schema.Report`
built directly from the pydantic models, with one face per sampled frame. Configurable: a delay,
an exception to raise (typed or not), a ``hold`` event the analysis waits for, the score, and
what ``ready()`` answers. Every call is recorded in ``calls``. With ``known`` (a known-media
lookup) it samples the frames with the real sampler, puts their real PDQ hashes in the report,
asks ``known`` for a match and applies the stated rule (a human manipulated / AI-generated decision
on a near-duplicate sets the verdict).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import threading
from dataclasses import dataclass
from typing import Any

from detector.media.loader import Media, MediaInfo, MediaLoader
from detector.media.sampling import FrameSampler
from detector.provenance.pdq import KnownMedia, perceptual_hashes
from detector.report.schema import (
    FaceBox,
    FaceTrackReport,
    FrameReport,
    KnownMatch,
    MediaSection,
    ModelUse,
    PerceptualHash,
    Report,
    Score,
    Signal,
    Verdict,
)
from detector.scoring.logodds import sigmoid
from detector.settings import Settings
from detector.stages import PROGRESS, Options
from serving.analyzer import ProgressCallback
from serving.offload import off_loop

BANDS: tuple[tuple[float, Verdict], ...] = (
    (0.1, "authentic"),
    (0.3, "likely_authentic"),
    (0.7, "uncertain"),
    (0.9, "likely_manipulated"),
)
FAKE_VERSION = "0.0.0+fake"


@dataclass(frozen=True)
class Call:
    """One ``analyze`` call as the fake saw it."""

    name: str | None
    sha256: str
    kind: str
    options: Options


def verdict_of(manipulated: float) -> Verdict:
    """The band of ``manipulated`` (fixed test bands 0.1 / 0.3 / 0.7 / 0.9)."""
    return next((v for bound, v in BANDS if manipulated < bound), "manipulated")


def progress_steps(frames: int) -> list[tuple[float, dict[str, Any]]]:
    """The progress calls of one analysis: the stage points of :data:`detector.stages.PROGRESS`."""
    return [
        (PROGRESS["media"], {"stage": "media"}),
        (PROGRESS["faces"], {"stage": "faces", "frames_sampled": frames}),
        (PROGRESS["models"], {"stage": "models", "faces_found": frames, "face_tracks": 1}),
        (PROGRESS["report"], {"stage": "report"}),
    ]


def fake_report(
    info: MediaInfo,
    name: str | None,
    frames: int,
    manipulated: float,
    face_model: str,
    face_counted: bool = True,
) -> Report:
    """A valid report of ``info``: one face per frame in one track, the score ``manipulated``;
    ``face_counted=False`` reports the face model as the fusion does when it gives it weight 0."""
    logit = math.log(manipulated / (1.0 - manipulated))
    step = (info.duration_s or 1.0) / frames
    boxes = [
        FaceBox(
            frame_index=i,
            timestamp=round(i * step, 4),
            box=(10.0, 10.0, 60.0, 70.0),
            probability=0.99,
            logit=logit,
            score=manipulated,
        )
        for i in range(frames)
    ]
    probed = {k: v for k, v in dataclasses.asdict(info).items() if k in MediaSection.model_fields}
    signal = Signal(
        name="face_model",
        kind="model",
        present=True,
        probability=manipulated,
        logit=logit,
        contribution=logit if face_counted else 0.0,
        counted=face_counted,
        sentence="the fake analyzer's face model",
    )
    score = Score(
        verdict=verdict_of(manipulated),
        authenticity=1.0 - manipulated,
        manipulated=manipulated,
        manipulated_range=(sigmoid(logit - 1.0), sigmoid(logit + 1.0)),  # +-1 log-odds
        logit=logit,
        pixel_manipulated=manipulated,
        calibrated=True,
        summary="A fake analysis.",
        basis="the fake analyzer (no model ran)",
        signals=[signal],
        fusion="tests.support.fake_analyzer",
    )
    track = FaceTrackReport(
        track_id=0, length=frames, mean_side=60.0, logit=logit, score=manipulated, faces=boxes
    )
    return Report(
        trueframe_version=FAKE_VERSION,
        media=MediaSection(name=name, **probed),
        score=score,
        frames=[
            FrameReport(index=b.frame_index, timestamp=b.timestamp, faces=1, max_face_logit=logit)
            for b in boxes
        ],
        tracks=[track],
        models=[ModelUse(name=face_model, task="face_forgery", weights_sha256="0" * 64, licence="test")],
        timings={"total": 0.0},
    )


class ReportBefore23(Report):
    """A report as stored before schema 2.3: its JSON has no signal ``counted`` (the service stores
    and serves what ``to_json`` writes)."""

    def to_json(self, indent: int | None = None) -> str:
        return self.model_dump_json(indent=indent, exclude={"score": {"signals": {"__all__": {"counted"}}}})


def declared_ai(report: Report) -> Report:
    """``report`` as the fusion writes it for signed Content Credentials that declare AI generation:
    verdict ``ai_generated`` by rule ``signed_ai_declaration``; the credentials signal adds no
    log-odds, the base rate still pushes towards authentic."""
    credentials = Signal(
        name="content_credentials",
        kind="rule",
        present=True,
        sentence="Signed Content Credentials declare this image AI-generated: that decides the verdict.",
    )
    prior = Signal(
        name="base_rate", kind="prior", present=True, logit=-1.48, contribution=-1.48, sentence="base rate"
    )
    score = report.score.model_copy(
        update={"verdict": "ai_generated", "rule": "signed_ai_declaration", "signals": [prior, credentials]}
    )
    return report.model_copy(update={"score": score})


def out_of_scope(report: Report) -> Report:
    """``report`` as the fusion writes it for a file no detector applies to (a screen recording, an
    extreme strip): no probability, the face model's signal absent, its face tracks still rated."""
    face = Signal(
        name="face_model",
        kind="model",
        present=False,
        counted=False,
        sentence="The file does not look like a camera image, so the face-forgery model does not apply.",
    )
    score = report.score.model_copy(
        update={
            "verdict": "out_of_scope",
            "authenticity": None,
            "manipulated": None,
            "manipulated_range": None,
            "logit": None,
            "pixel_manipulated": None,
            "signals": [face],
            "out_of_scope": ["a drawing, screenshot or flat graphic, not a camera image"],
        }
    )
    return report.model_copy(update={"score": score})


def degraded(report: Report) -> Report:
    """``report`` as the fusion writes it for a starved video: its probability kept, the verdict held at
    ``uncertain`` by rule ``degraded_media``, the reason in ``limited`` and ``degraded``."""
    reason = "heavily compressed video (0.004 bits per pixel)"
    score = report.score.model_copy(
        update={"verdict": "uncertain", "rule": "degraded_media", "limited": [reason], "degraded": [reason]}
    )
    return report.model_copy(update={"score": score})


class FakeAnalyzer:
    """Implements the Analyzer protocol; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        *,
        manipulated: float = 0.2,
        delay_s: float = 0.0,
        error: Exception | None = None,
        hold: threading.Event | None = None,
        ready: bool = True,
        known: KnownMedia | None = None,
        face_counted: bool = True,
        before_counted: bool = False,
        ai_declared: bool = False,
        out_of_scope: bool = False,
        degraded: bool = False,
    ) -> None:
        self.settings = settings
        self.face_counted = face_counted
        self.before_counted = before_counted  # reports as stored before schema 2.3
        self.ai_declared = ai_declared  # reports of media whose signed credentials declare AI
        self.out_of_scope = out_of_scope  # reports of media no detector applies to (face tracks kept)
        self.degraded = degraded  # reports of media whose pixels cannot accuse
        self.known = known
        self.manipulated = manipulated
        self.delay_s = delay_s
        self.error = error
        self.hold = hold
        self.is_ready = ready
        self.calls: list[Call] = []
        self.started = threading.Event()  # set when an analysis has made its progress calls

    async def analyze(
        self, data: bytes, name: str | None, options: Options, progress: ProgressCallback | None = None
    ) -> Report:
        media = await off_loop(MediaLoader(self.settings.limits).load, data, name)
        info = media.info
        self.calls.append(Call(name, info.sha256, info.kind, options))
        frames = 1 if info.kind == "image" else options.frames or self.settings.sampling.frames
        found: dict[str, Any] = {}
        for fraction, partial in progress_steps(frames):
            found.update(partial)  # cumulative, like detector.stages
            if progress is not None:
                await progress(fraction, dict(found))
        self.started.set()
        while self.hold is not None and not self.hold.is_set():
            await asyncio.sleep(0.01)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.error is not None:
            raise self.error
        report = fake_report(
            info, name, frames, self.manipulated, self.settings.models.face_model, self.face_counted
        )
        if self.ai_declared:
            report = declared_ai(report)
        if self.out_of_scope:
            report = out_of_scope(report)
        if self.degraded:
            report = degraded(report)
        if self.before_counted:
            report = ReportBefore23.model_validate(report.model_dump())
        if self.known is not None:
            report = await off_loop(self._known, report, media, frames)
        return report

    def _known(self, report: Report, media: Media, frames: int) -> Report:
        """Real PDQ hashes of the really sampled frames, the lookup's match and the stated rule."""
        sample = FrameSampler(self.settings.sampling, MediaLoader(self.settings.limits)).sample(media, frames)
        kind = "image" if media.info.kind == "image" else "video"
        hashes = perceptual_hashes(kind, [f.image for f in sample.frames])
        assert self.known is not None
        match: KnownMatch | None = self.known.match(hashes)
        score = report.score
        if match is not None and match.verdict in ("manipulated", "ai_generated"):
            score = score.model_copy(update={"verdict": match.verdict})
        return report.model_copy(
            update={
                "perceptual_hash": PerceptualHash(
                    hashes=list(hashes.hashes), qualities=list(hashes.qualities)
                ),
                "known_match": match,
                "score": score,
            }
        )

    async def ready(self) -> bool:
        return self.is_ready
