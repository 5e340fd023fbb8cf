"""The evaluation cache's key (detector/evaluation/collect.py): what stage outputs depend on."""

from __future__ import annotations

import pytest

import detector.stages
from detector.evaluation.collect import stage_key
from detector.settings import Settings


def test_the_key_follows_face_settings_frames_and_the_analysis_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings()
    key = stage_key(settings, None)
    assert stage_key(settings.model_copy(deep=True), None) == key
    assert stage_key(settings, 8) != key
    planned_off = settings.model_copy(deep=True)
    planned_off.faces.full_detect_every = 1
    assert stage_key(planned_off, None) != key
    batched = settings.model_copy(deep=True)
    batched.faces.batch_size = 3  # how MTCNN batches changes no output
    batched.sampling.decode_threads = "frame"  # nor how the decoder is threaded
    assert stage_key(batched, None) == key
    monkeypatch.setattr(detector.stages, "REPORT_VERSION", detector.stages.REPORT_VERSION + 1)
    assert stage_key(settings, None) == key  # the cache keeps stage outputs; the fusion is refitted
    monkeypatch.setattr(detector.stages, "ANALYSIS_VERSION", detector.stages.ANALYSIS_VERSION + 1)
    assert stage_key(settings, None) != key


def test_execution_only_names_are_fields_of_their_group() -> None:
    """A misspelt name would silently stay in the keys (an exclude of a missing field is ignored)."""
    from detector.settings import FaceSettings, SamplingSettings

    for group in (FaceSettings, SamplingSettings):
        assert group.EXECUTION_ONLY
        assert set(group.model_fields) >= group.EXECUTION_ONLY
        assert not group.EXECUTION_ONLY & set(group().keyed())
