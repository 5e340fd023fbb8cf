"""A model named for the wrong role is refused before any analysis, by every entry point."""

from __future__ import annotations

import pytest

from detector.errors import InvalidRequest
from detector.settings import Settings
from detector.stages import configured_models
from serving.preflight import check_models


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ({"face_model": "nprcnn.artefacts"}, "nprcnn.artefacts is a synthetic_image model; face_model needs"),
        ({"synthetic_model": "facecnn.sbi"}, "facecnn.sbi is a face_forgery model; synthetic_model needs"),
    ],
)
def test_a_model_of_the_wrong_task_is_refused(models: dict[str, str], message: str) -> None:
    """Before: a synthetic-image model as the face model ran, and its scores were worded as the
    face-forgery model's ("rates the face(s) 16%")."""
    settings = Settings(models=models)
    with pytest.raises(InvalidRequest, match=message):
        configured_models(settings)
    with pytest.raises(InvalidRequest, match=message):
        check_models(settings)  # the scan's driver, which never loads the registry


def test_the_defaults_fill_their_roles() -> None:
    (_, face_entry), synthetic = configured_models(Settings())
    assert face_entry.task == "face_forgery"
    assert synthetic is not None
    assert synthetic[1].task == "synthetic_image"
