"""The result key follows every recalibration, and the HTTP cache misses after one (fake analyzer).

The manifest is a temporary copy of ``weights/manifest.toml`` that the tests edit: the manifest is
cached per path, so each edit clears that cache, as a restarted service would start without it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from detector.models import _manifest
from detector.settings import Settings
from detector.stages import Options
from serving.jobs.cache import result_key
from serving.scan.run import model_versions
from tests.support import mediagen
from tests.support.hostile import jpeg
from tests.support.servicekit import IDENTITY_FUSION, fake_service, make_settings

FACE_CALIBRATION = "parameters = { a = 0.3697439257321144, b = -0.22832801536101097 }"  # meso4.df
THRESHOLD = "[thresholds.manipulated]\nmanipulated = 0.9\n"


@pytest.fixture
def manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the shipped manifest that ``result_key`` reads instead of it."""
    copy = tmp_path / "manifest.toml"
    text = _manifest.default_manifest_path().read_text(encoding="utf-8")
    assert FACE_CALIBRATION in text, "the meso4.df calibration table moved: update FACE_CALIBRATION"
    copy.write_text(text, encoding="utf-8")
    monkeypatch.setattr(_manifest, "default_manifest_path", lambda: copy)
    _manifest._load.cache_clear()
    yield copy
    _manifest._load.cache_clear()


@pytest.fixture
def settings(tmp_path: Path, manifest: Path) -> Settings:
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "fusion.toml").write_text(IDENTITY_FUSION, encoding="utf-8")
    assert THRESHOLD in IDENTITY_FUSION
    return make_settings(tmp_path / "data", weights)


def edit(path: Path, old: str, new: str) -> None:
    """Replace ``old`` (there once) by ``new`` in ``path``, then forget the parsed manifests."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} is not in {path} once"
    path.write_text(text.replace(old, new), encoding="utf-8")
    _manifest._load.cache_clear()


def test_the_key_is_stable_for_the_same_analysis(settings: Settings) -> None:
    key = result_key(settings, Options())
    assert result_key(settings.model_copy(deep=True), Options()) == key
    assert result_key(settings, Options(frames=settings.sampling.frames)) == key, "frames resolve first"
    settings.faces.batch_size = 3  # how MTCNN batches does not change a report
    settings.faces.max_batch_pixels = 100_000
    settings.sampling.decode_threads = "frame"  # nor how FFmpeg threads its decoding (same pixels)
    assert result_key(settings, Options()) == key


def test_a_new_calibration_table_changes_the_key(settings: Settings, manifest: Path) -> None:
    before = result_key(settings, Options())
    edit(manifest, FACE_CALIBRATION, FACE_CALIBRATION.replace("0.3697", "0.4697"))
    changed = result_key(settings, Options())
    assert changed != before
    edit(
        manifest,
        'method = "platt"\nparameters = { a = 0.4697',
        'method = "temperature"\nparameters = { a = 0.4697',
    )
    assert result_key(settings, Options()) not in {before, changed}


def test_the_fusion_file_bytes_and_its_thresholds_change_the_key(settings: Settings) -> None:
    fusion = settings.fusion.fusion_file
    assert fusion is not None
    before = result_key(settings, Options())
    fusion.write_text(fusion.read_text(encoding="utf-8") + "# refitted\n", encoding="utf-8")
    refitted = result_key(settings, Options())
    assert refitted != before
    edit(fusion, THRESHOLD, THRESHOLD.replace("0.9", "0.85"))
    assert result_key(settings, Options()) not in {before, refitted}


@pytest.mark.parametrize(
    "change",
    [
        lambda s: setattr(s.sampling, "frames", 8),
        lambda s: setattr(s.faces, "min_probability", 0.9),
        lambda s: setattr(s.faces, "min_face_px", 30),
        lambda s: setattr(s.faces, "margin", 1.5),
        lambda s: setattr(s.faces, "full_detect_every", 1),
        lambda s: setattr(s.fusion, "confident_fake", 0.9),
        lambda s: setattr(s.fusion, "track_rule", "confident"),
        lambda s: setattr(s.models, "synthetic_model", None),
        lambda s: setattr(s.provenance, "trust_anchors", [Path("/anchors.pem")]),
    ],
    ids=["frames", "min_probability", "min_face_px", "margin", "full_detect_every", "confident_fake",
         "track_rule", "synthetic_model", "trust_anchors"],
)  # fmt: skip
def test_settings_that_change_a_report_change_the_key(
    settings: Settings, change: Callable[[Settings], None]
) -> None:
    before = result_key(settings, Options())
    change(settings)
    assert result_key(settings, Options()) != before


def test_request_options_change_the_key(settings: Settings) -> None:
    keys = {result_key(settings, o) for o in (Options(), Options(frames=3), Options(heatmaps=True))}
    assert len(keys) == 3


def test_the_http_cache_misses_after_each_recalibration(settings: Settings, manifest: Path) -> None:
    image = jpeg(mediagen.face_photo()[::4, ::4])
    fusion = settings.fusion.fusion_file
    assert fusion is not None
    recalibrations: list[Callable[[], None]] = [
        lambda: edit(manifest, FACE_CALIBRATION, FACE_CALIBRATION.replace("0.3697", "0.5")),
        lambda: edit(fusion, THRESHOLD, THRESHOLD.replace("0.9", "0.8")),
        lambda: fusion.write_text(fusion.read_text(encoding="utf-8") + "\n", encoding="utf-8"),
        lambda: setattr(settings.faces, "min_probability", 0.9),
        lambda: setattr(settings.sampling, "frames", 7),
    ]
    with fake_service(settings) as service:
        seen = []
        for recalibrate in [lambda: None, *recalibrations]:
            recalibrate()
            first = service.client.post("/v1/analyze", content=image)
            again = service.client.post("/v1/analyze", content=image)
            assert first.status_code == again.status_code == 200
            seen.append((first.headers["x-trueframe-cache"], again.headers["x-trueframe-cache"]))
    assert seen == [("miss", "hit")] * (1 + len(recalibrations))
    assert len(service.analyzer.calls) == 1 + len(recalibrations)


def test_a_recalibration_also_changes_the_scan_row_key(settings: Settings, manifest: Path) -> None:
    before = model_versions(settings, None)
    edit(manifest, FACE_CALIBRATION, FACE_CALIBRATION.replace("0.3697", "0.4697"))
    assert model_versions(settings, None) != before


def test_a_new_analysis_version_changes_the_key(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Code that finds something else (the stages' ANALYSIS_VERSION) never reuses older reports."""
    import detector.stages

    before = result_key(settings, Options())
    monkeypatch.setattr(detector.stages, "ANALYSIS_VERSION", detector.stages.ANALYSIS_VERSION + 1)
    assert result_key(settings, Options()) != before


def test_a_new_report_version_changes_the_key(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fusion code that words or rules differently (REPORT_VERSION) never reuses older reports."""
    import detector.stages

    before = result_key(settings, Options())
    monkeypatch.setattr(detector.stages, "REPORT_VERSION", detector.stages.REPORT_VERSION + 1)
    assert result_key(settings, Options()) != before
