"""The Serve ingress decodes images and reads their provenance itself; videos go to the media deployment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from detector.errors import UnsupportedMediaType
from detector.settings import Settings
from tests.support import mediagen


class _Response:
    def __init__(self, value: Any) -> None:
        self.value = value

    def result(self) -> Any:
        return self.value


class _Method:
    """A deployment method stand-in: records each call, answers with ``answer(*args)``."""

    def __init__(self, answer: Any) -> None:
        self.answer, self.calls = answer, list[tuple[Any, ...]]()

    def remote(self, *args: Any) -> _Response:
        self.calls.append(args)
        return _Response(self.answer(*args))


class _Handle:
    def __init__(self, **methods: _Method) -> None:
        self.__dict__.update(methods)


def _calls(settings: Settings, light: bool) -> tuple[Any, _Method, _Method]:
    from detector.media.loader import MediaLoader
    from detector.media.sampling import FrameSampler
    from detector.provenance.reader import ProvenanceReader
    from serving.ray.analyzer import LightStages, RayCalls, StageHandles

    loader = MediaLoader(settings.limits)
    sampler = FrameSampler(settings.sampling, loader)
    reader = ProvenanceReader(settings.provenance)

    def prepare(data: bytes, name: str | None, frames: int | None) -> tuple[Any, Any, dict[str, float]]:
        media = loader.load(data, name=name)
        return media.info, sampler.sample(media, frames), {"media": 0.0, "frames": 0.0}

    media, provenance = _Method(prepare), _Method(reader.read)
    handles = StageHandles(
        media=_Handle(prepare=media),  # type: ignore[arg-type]
        provenance=_Handle(read=provenance),  # type: ignore[arg-type]
        faces=_Handle(),  # type: ignore[arg-type]
        face_model=_Handle(),  # type: ignore[arg-type]
    )
    return RayCalls(handles, LightStages(settings) if light else None), media, provenance


def test_an_image_is_prepared_in_the_ingress_like_on_the_deployment(
    tmp_path: Path, face_photo: np.ndarray
) -> None:
    settings = Settings()
    data = mediagen.write_image(tmp_path / "face.jpg", face_photo, "jpeg").read_bytes()
    light, media, provenance = _calls(settings, light=True)
    here = light.prepare(data, "face.jpg", None)
    report = light.provenance(data, here.info.mime).result()
    assert media.calls == []
    assert provenance.calls == []
    remote, media, provenance = _calls(settings, light=False)
    there = remote.prepare(data, "face.jpg", None)
    assert remote.provenance(data, there.info.mime).result() == report
    assert len(media.calls) == 1
    assert len(provenance.calls) == 1
    assert here.info == there.info
    assert [f.index for f in here.sample.frames] == [f.index for f in there.sample.frames]
    np.testing.assert_array_equal(here.sample.frames[0].image, there.sample.frames[0].image)
    assert set(here.timings) == set(there.timings) == {"media", "frames"}


def test_videos_and_unknown_bytes_still_go_to_the_media_deployment(face_clip: Path) -> None:
    calls, media, provenance = _calls(Settings(), light=True)
    data = face_clip.read_bytes()
    prepared = calls.prepare(data, "face.mp4", 4)
    calls.provenance(data, prepared.info.mime).result()
    assert len(media.calls) == 1
    assert len(provenance.calls) == 1
    assert len(prepared.sample.frames) == 4
    with pytest.raises(UnsupportedMediaType):
        calls.prepare(b"%PDF-1.7 not media" * 10, "x.pdf", None)
    assert len(media.calls) == 2  # the typed error is the deployment's, raised as itself


def test_a_hostile_image_fails_in_the_ingress_with_the_deployments_typed_error() -> None:
    from detector.errors import MediaError

    truncated = b"\xff\xd8\xff\xe0" + b"\0" * 64
    raised = []
    for light in (True, False):
        calls, media, _ = _calls(Settings(), light=light)
        with pytest.raises(MediaError) as caught:
            calls.prepare(truncated, "cut.jpg", None)
        raised.append((type(caught.value), caught.value.code, len(media.calls)))
    assert raised[0][:2] == raised[1][:2]
    assert (raised[0][2], raised[1][2]) == (0, 1)


def test_frames_travel_packed_to_the_face_and_synthetic_replicas(face_clip: Path) -> None:
    """A video's frames are sent as their I420 planes (half of RGB's bytes); region copies as arrays."""
    from detector.media.frames import Frame, Images
    from detector.media.loader import MediaLoader
    from detector.media.sampling import FrameSampler
    from serving.ray.analyzer import RayCalls, StageHandles

    frames = FrameSampler().sample(MediaLoader().load(face_clip), 3).frames
    region = np.zeros((40, 40, 3), np.uint8)
    faces, synthetic = _Method(lambda _image: []), _Method(lambda _image: 0.5)
    handles = StageHandles(
        media=_Handle(),  # type: ignore[arg-type]
        provenance=_Handle(),  # type: ignore[arg-type]
        faces=_Handle(detect=faces),  # type: ignore[arg-type]
        face_model=_Handle(),  # type: ignore[arg-type]
        synthetic_model=_Handle(predict=synthetic),  # type: ignore[arg-type]
    )
    calls = RayCalls(handles, None)
    assert calls.detect(Images([*frames, region])).result() == [[], [], [], []]
    assert calls.synthetic_logits(Images(frames)).result() == [0.5, 0.5, 0.5]
    sent = [args[0] for args in faces.calls]
    assert all(isinstance(item, Frame) and item.packing is not None for item in sent[:3])
    assert sent[3] is region
    assert all(args[0] is frame for args, frame in zip(synthetic.calls, frames, strict=True))
    height, width = frames[0].size
    assert sum(item.pixels.nbytes for item in sent[:3]) == 3 * height * width * 3 // 2
