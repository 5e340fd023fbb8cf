"""The one orchestration (:func:`detector.stages.collect`) with stage calls that record what they do:
remote stages are all sent before the first is waited for, timings are right in and out of process,
a watermark in an image's pixels reaches the report's provenance, and an analysis whose job is gone
stops inside a long remote stage and cancels every stage in flight."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from detector.media.frames import Frame
from detector.media.loader import MediaInfo
from detector.media.sampling import FrameSample
from detector.provenance.types import ProvenanceReport
from detector.settings import Settings
from detector.stages import Options, Poll, Prepared, Progress, Ready, collect, face_spec
from tests.support import mediagen

STAGE_S = 0.05


@dataclass
class Sent:
    """A remote call: its value is 'computed' elsewhere; ``result()`` records when it is collected."""

    name: str
    value: Any
    log: list[str]

    def result(self, poll: Poll | None = None) -> Any:
        self.log.append(f"collect {self.name}")
        time.sleep(STAGE_S)
        return self.value

    def cancel(self) -> None:
        self.log.append(f"cancel {self.name}")


@dataclass
class Parts(Sent):
    """A remote stage of one call per frame, as on Ray: ``poll`` runs before each part is collected."""

    def result(self, poll: Poll | None = None) -> Any:
        for _ in self.value:
            if poll is not None:
                poll()
            self.log.append(f"collect {self.name} part")
        time.sleep(STAGE_S)
        return self.value


@dataclass
class Calls:
    """StageCalls over one image: remote (``Sent``) or in-process (``Ready`` after ``STAGE_S`` of work)."""

    image: np.ndarray
    remote: bool
    log: list[str] = field(default_factory=list)
    frames: int = 1  # more than one: a video of the same image, each frame's faces a part of its own
    searched: int = 0  # frames sent for a face search

    def _call(self, name: str, value: Any, kind: type[Sent] = Sent) -> Any:
        self.log.append(f"send {name}")
        if self.remote:
            return kind(name, value, self.log)
        time.sleep(STAGE_S)
        return Ready(value)

    def prepare(self, data: bytes, name: str | None, frames: int | None) -> Prepared:
        h, w = self.image.shape[:2]
        if self.frames == 1:
            info = MediaInfo("image", "png", "image/png", len(data), "0" * 64, w, h)
        else:
            info = MediaInfo(
                "video", "mp4", "video/mp4", len(data), "0" * 64, w, h, 1.0, self.frames, self.frames
            )
        sample = [Frame(i, float(i), self.image) for i in range(self.frames)]
        return Prepared(info, data, name, FrameSample(sample, requested=self.frames))

    def provenance(self, data: bytes, mime: str) -> Any:
        return self._call("provenance", ProvenanceReport(state="absent", state_description="none"))

    def detect(self, images: Sequence[np.ndarray]) -> Any:
        self.searched += len(images)
        return self._call("faces", [[] for _ in images], Parts)

    def face_logits(self, crops: list[np.ndarray]) -> Any:
        return self._call("face_model", [0.0 for _ in crops])

    def synthetic_logits(self, images: Sequence[np.ndarray]) -> Any:
        return self._call("synthetic_model", [0.0 for _ in images])

    def heatmaps(self, *args: Any) -> Any:
        return self._call("heatmaps", [])


def run(calls: Calls, progress: Progress | None = None) -> Any:
    settings = Settings()
    return collect(calls, face_spec(settings), settings, b"png", "x.png", Options(), progress)


def test_remote_stages_are_all_sent_before_the_first_is_collected() -> None:
    calls = Calls(mediagen.face_photo(), remote=True)
    run(calls)
    first_wait = next(i for i, e in enumerate(calls.log) if e.startswith("collect"))
    assert {"send provenance", "send faces", "send synthetic_model"} <= set(calls.log[:first_wait])


@pytest.mark.parametrize("remote", [False, True])
def test_each_stage_is_timed_on_its_own(remote: bool) -> None:
    out = run(Calls(mediagen.face_photo(), remote=remote))
    timings = out.timings
    assert {"faces", "synthetic_model", "provenance", "watermark", "scope", "known_media"} <= set(timings)
    assert timings["faces"] >= STAGE_S * 0.9
    if not remote:  # in process, a stage's time is its own run, not the stages run before it was asked for
        assert timings["synthetic_model"] < 2 * STAGE_S
        assert timings["provenance"] < 2 * STAGE_S


def test_an_invisible_watermark_in_the_pixels_reaches_the_provenance() -> None:
    marked = run(Calls(mediagen.sd_marked(mediagen.face_photo()), remote=True))
    assert marked.provenance is not None
    assert marked.provenance.watermark is not None
    assert marked.provenance.watermark.scheme == "stable-diffusion-v1"
    plain = run(Calls(mediagen.face_photo(), remote=True))
    assert plain.provenance is not None
    assert plain.provenance.watermark is None


class Gone(Exception):
    """What a job runner's progress callback raises once the job is deleted."""


def test_a_deleted_analysis_stops_inside_a_long_remote_stage_and_cancels_what_is_in_flight(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before, the progress callback was asked only at each stage's start, so a video deleted in its
    faces stage kept the replicas on every sampled frame until its faces were all found."""
    import detector.stages

    monkeypatch.setattr(detector.stages, "POLL_S", 0.0)
    told: list[str] = []

    def progress(fraction: float, partial: dict[str, Any]) -> None:
        told.append(partial["stage"])
        if calls.log.count("collect faces part") >= 3:  # deleted after three frames' faces came back
            raise Gone

    calls = Calls(mediagen.face_photo(), remote=True, frames=12)
    with pytest.raises(Gone):
        run(calls, progress)
    assert calls.log.count("collect faces part") == 3 < calls.searched, calls.log
    assert told[:2] == ["media", "faces"]
    assert "models" not in told
    for stage in ("faces", "synthetic_model", "provenance"):  # everything sent and not yet collected
        assert f"cancel {stage}" in calls.log, (stage, calls.log)
    assert "send face_model" not in calls.log


def test_an_analysis_still_wanted_is_not_cancelled_by_its_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    import detector.stages

    monkeypatch.setattr(detector.stages, "POLL_S", 0.0)
    told: list[float] = []
    calls = Calls(mediagen.face_photo(), remote=True, frames=12)
    run(calls, lambda fraction, partial: told.append(fraction))
    assert calls.searched >= 3
    assert calls.log.count("collect faces part") == calls.searched
    assert not [e for e in calls.log if e.startswith("cancel")]
    assert len(told) > 4  # the four stage starts and the polls in between
    assert told == sorted(told)  # a poll reports the last fraction again, never an earlier one
