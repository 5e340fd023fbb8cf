"""The one orchestration (:func:`detector.stages.collect`) with stage calls that record what they do:
remote stages are all sent before the first is waited for, timings are right in and out of process,
and a watermark in an image's pixels reaches the report's provenance."""

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
from detector.stages import Options, Prepared, Ready, collect, face_spec
from tests.support import mediagen

STAGE_S = 0.05


@dataclass
class Sent:
    """A remote call: its value is 'computed' elsewhere; ``result()`` records when it is collected."""

    name: str
    value: Any
    log: list[str]

    def result(self) -> Any:
        self.log.append(f"collect {self.name}")
        time.sleep(STAGE_S)
        return self.value


@dataclass
class Calls:
    """StageCalls over one image: remote (``Sent``) or in-process (``Ready`` after ``STAGE_S`` of work)."""

    image: np.ndarray
    remote: bool
    log: list[str] = field(default_factory=list)

    def _call(self, name: str, value: Any) -> Any:
        self.log.append(f"send {name}")
        if self.remote:
            return Sent(name, value, self.log)
        time.sleep(STAGE_S)
        return Ready(value)

    def prepare(self, data: bytes, name: str | None, frames: int | None) -> Prepared:
        h, w = self.image.shape[:2]
        info = MediaInfo("image", "png", "image/png", len(data), "0" * 64, w, h)
        return Prepared(info, data, name, FrameSample([Frame(0, 0.0, self.image)], requested=1))

    def provenance(self, data: bytes, mime: str) -> Any:
        return self._call("provenance", ProvenanceReport(state="absent", state_description="none"))

    def detect(self, images: Sequence[np.ndarray]) -> Any:
        return self._call("faces", [[] for _ in images])

    def face_logits(self, crops: list[np.ndarray]) -> Any:
        return self._call("face_model", [0.0 for _ in crops])

    def synthetic_logits(self, images: Sequence[np.ndarray]) -> Any:
        return self._call("synthetic_model", [0.0 for _ in images])

    def heatmaps(self, *args: Any) -> Any:
        return self._call("heatmaps", [])


def run(calls: Calls) -> Any:
    settings = Settings()
    return collect(calls, face_spec(settings), settings, b"png", "x.png", Options())


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
