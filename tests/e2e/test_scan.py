"""Batch scan, in process and on Ray Data: one correct row per file, exact resume after Ctrl-C,
manifests, Parquet."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from detector.pipeline import Pipeline
from detector.settings import Settings
from serving.scan.output import ResultStore, read_jsonl, report_row
from serving.scan.run import scan_items
from serving.scan.source import ScanItem, list_source
from tests.support import mediagen
from tests.support.paths import ROOT
from tests.support.scan_media import face_jpeg, hostile_files
from tests.support.servicekit import IDENTITY_FUSION, SMALL_TEST_FACE_PX

FRAMES = 4


@pytest.fixture(scope="module")
def scan_env(mesonet_weights_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """TRUEFRAME_* variables: imported MesoNet, a fixed fusion file, CPU."""
    fusion = tmp_path_factory.mktemp("fusion") / "fusion.toml"
    fusion.write_text(IDENTITY_FUSION)
    return {
        "TRUEFRAME_MODELS__WEIGHTS_DIR": str(mesonet_weights_dir),
        "TRUEFRAME_MODELS__FACE_MODEL": "meso4.df",
        "TRUEFRAME_MODELS__SYNTHETIC_MODEL": "",  # the test fusion file fuses the face model alone
        "TRUEFRAME_FUSION__FUSION_FILE": str(fusion),
        "TRUEFRAME_RUNTIME__DEVICE": "cpu",
        "TRUEFRAME_FACES__MIN_FACE_PX": str(SMALL_TEST_FACE_PX),
        "TRUEFRAME_SCAN__ACTORS": "2",  # each actor loads every model: keep the test machine light
    }


@pytest.fixture(scope="module")
def settings(scan_env: dict[str, str]) -> Settings:
    return Settings(
        models={
            "weights_dir": scan_env["TRUEFRAME_MODELS__WEIGHTS_DIR"],
            "face_model": "meso4.df",
            "synthetic_model": None,
        },
        fusion={"fusion_file": scan_env["TRUEFRAME_FUSION__FUSION_FILE"]},
        runtime={"device": "cpu"},
        faces={"min_face_px": SMALL_TEST_FACE_PX},
        scan={"actors": 2},
    )


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    """Local Ray for the in-process scans of this module, or the session's if one already runs."""
    import ray

    from serving.ray.runtime import init_ray
    from tests.support.serve_helpers import RAY_TEST_CPUS

    started = init_ray(num_cpus=RAY_TEST_CPUS)
    yield
    if started:
        ray.shutdown()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


EXECUTORS = ("local", "ray")


def _on(settings: Settings, executor: str) -> Settings:
    return settings.model_copy(update={"scan": settings.scan.model_copy(update={"executor": executor})})


@pytest.mark.parametrize("executor", EXECUTORS)
def test_folder_scan_writes_one_correct_row_per_file(
    tmp_path: Path,
    settings: Settings,
    shared_data: Path,
    ray_local: None,
    executor: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    src = tmp_path / "flagged"
    face = face_jpeg(src / "face.jpg")
    (src / "copies").mkdir()
    dup = src / "copies" / "face-again.jpg"
    shutil.copyfile(face, dup)
    clip = mediagen.write_face_clip(src / "clip.mp4", n_frames=20, fps=10, size=(320, 240))
    c2pa = shared_data / "c2pa"
    signed = src / "c2pa" / "signed.jpg"
    signed.parent.mkdir()
    shutil.copyfile(c2pa / "valid" / "c2pa-rs__CA.jpg", signed)
    ai = src / "c2pa" / "generated.jpg"
    shutil.copyfile(c2pa / "ai_generated" / "c2pa-rs__C.jpg", ai)
    expected_errors = hostile_files(src / "hostile")
    (src / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    out = tmp_path / "results.jsonl"
    if executor == "local":  # the local scan never reaches Ray, though it runs in this process
        from serving.scan import run

        def no_ray(*args: object, **kwargs: object) -> None:
            raise AssertionError("the local scan used Ray")

        monkeypatch.setattr(run, "init_ray", no_ray)
        monkeypatch.setattr(run.Scanner, "_analyse", no_ray)
        monkeypatch.setattr(run.Scanner, "_fingerprints", no_ray)

    scan_items(list(list_source(str(src))), ResultStore(out), _on(settings, executor), frames=FRAMES)

    rows = read_jsonl(out)
    by_path = {Path(r["path"]).relative_to(src).as_posix(): r for r in rows}
    listed = {p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file() and p.name != ".DS_Store"}
    assert len(rows) == len(by_path) == len(listed)
    assert set(by_path) == listed
    for name, code in expected_errors.items():
        row = by_path[f"hostile/{name}"]
        assert row["error_code"] == code, (name, row)
        assert row["verdict"] is None
        assert row["error_message"]
        assert row["sha256"] == _sha(src / "hostile" / name)
    for rel, path, kind in [("face.jpg", face, "image"), ("clip.mp4", clip, "video")]:
        row = by_path[rel]
        assert row["error_code"] is None, row
        assert (row["sha256"], row["kind"]) == (_sha(path), kind)
        assert row["faces"] >= 1
        assert row["top_signal"] == "face_model"
        assert row["authenticity"] == pytest.approx(1.0 - row["manipulated"])
        assert row["provenance_state"] == "absent"
        assert json.loads(row["timings"])["faces"] > 0
    first, again = by_path["copies/face-again.jpg"], by_path["face.jpg"]  # listed in sorted order
    assert first["duplicate_of"] is None
    assert again["duplicate_of"] == str(dup)
    for column in ("sha256", "verdict", "authenticity", "faces", "top_signal"):
        assert again[column] == first[column]
    pipeline = Pipeline(settings)  # the scan must say what the in-process pipeline says
    for rel in ("face.jpg", "clip.mp4", "c2pa/generated.jpg"):
        expected = report_row(pipeline.analyze(src / rel, frames=FRAMES))
        for column in ("sha256", "verdict", "faces", "provenance_state", "ai_declaration", "top_signal"):
            assert by_path[rel][column] == expected[column], (rel, column)
        for column in ("authenticity", "top_signal_contribution"):
            want = expected[column]
            assert by_path[rel][column] == (want if want is None else pytest.approx(want, rel=1e-4)), rel
    assert by_path["c2pa/signed.jpg"]["provenance_state"] == "valid_untrusted"
    generated = by_path["c2pa/generated.jpg"]
    assert generated["ai_declaration"] == "generated"
    assert generated["verdict"] == "ai_generated"


def test_the_staged_layout_writes_what_the_pipeline_says(
    tmp_path: Path, settings: Settings, ray_local: None
) -> None:
    """One actor pool per stage (the GPU layout) on CPU; the fused layout is the folder scan above."""
    layout = "staged"
    src = tmp_path / "flagged"
    face = face_jpeg(src / "face.jpg")
    clip = mediagen.write_face_clip(src / "clip.mp4", n_frames=20, fps=10, size=(320, 240))
    (src / "notes.txt").write_text("not media")
    out = tmp_path / "results.jsonl"
    chosen = _on(settings, "ray")
    chosen = chosen.model_copy(update={"scan": chosen.scan.model_copy(update={"layout": layout})})
    scan_items(list(list_source(str(src))), ResultStore(out), chosen, frames=FRAMES)
    by_name = {Path(r["path"]).name: r for r in read_jsonl(out)}
    assert by_name["notes.txt"]["error_code"] == "unsupported_media_type"
    pipeline = Pipeline(settings)
    for path in (face, clip):
        expected = report_row(pipeline.analyze(path, frames=FRAMES))
        row = by_name[path.name]
        for column in ("sha256", "verdict", "faces", "provenance_state", "top_signal"):
            assert row[column] == expected[column], (layout, path.name, column)
        assert row["authenticity"] == pytest.approx(expected["authenticity"], rel=1e-4)
        assert set(json.loads(row["timings"])) >= {"media", "frames", "provenance", "faces", "face_model"}


def test_the_layout_follows_the_cluster(settings: Settings) -> None:
    from serving.scan.run import Scanner
    from serving.scan.steps import FaceStep, FusedStep

    def steps(layout: str, cpus: float, gpus: float, actors: int = 0) -> list[tuple[type, dict[str, Any]]]:
        scan = settings.scan.model_copy(update={"layout": layout, "actors": actors})
        scanner = Scanner(settings.model_copy(update={"scan": scan}), ResultStore(Path("unused.jsonl")))
        return [(step, resources) for step, _kw, _batch, resources in scanner.layout(cpus, gpus, 100)]

    ((fused, resources),) = steps("auto", 6.0, 0.0)
    assert fused is FusedStep
    assert resources["num_cpus"] == 1
    assert (resources["compute"].min_size, resources["compute"].max_size) == (6, 6)
    assert steps("fused", 6.0, 0.0, actors=2)[0][1]["compute"].max_size == 2
    every_cpu = settings.model_copy(update={"scan": settings.scan.model_copy(update={"actors": 0})})
    few = Scanner(every_cpu, ResultStore(Path("unused.jsonl"))).layout(6.0, 0.0, 3)
    assert few[0][3]["compute"].min_size == 3  # no idle actors for 3 items
    staged = dict(steps("auto", 8.0, 2.0))
    assert FaceStep in staged
    assert staged[FaceStep]["num_gpus"] == 0.5
    assert staged[FaceStep]["compute"].max_size == 2
    assert FusedStep not in staged
    assert FaceStep in dict(steps("staged", 2.0, 0.0))


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _run_cli(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "serving.cli", "scan", *args],  # `trueframe scan`, as users run it
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C reaches the scan as from a terminal even when this test process ignores SIGINT
        # (a parent that ignores it, e.g. after Ray set up in-process, hands SIG_IGN to children)
        preexec_fn=_default_sigint,
    )


def _complete_lines(path: Path) -> int:
    if not path.exists():
        return 0
    return path.read_bytes().count(b"\n")


@pytest.mark.parametrize("executor", EXECUTORS)
def test_sigint_halfway_then_rerun_yields_every_row_once(
    tmp_path: Path, scan_env: dict[str, str], executor: str
) -> None:
    src = tmp_path / "batch"
    for i in range(24):  # enough work that the interrupt lands mid-scan on a loaded machine
        face_jpeg(src / f"face{i}.jpg", shift=5 * i)
    mediagen.write_face_clip(src / "clip.mp4", n_frames=20, fps=10, size=(320, 240))
    hostile_files(src)
    total = sum(1 for p in src.iterdir() if p.is_file())
    out = tmp_path / "results.jsonl"
    args = [str(src), "--out", str(out), "--frames", str(FRAMES), "--no-progress"]
    scan_env = {**scan_env, "TRUEFRAME_SCAN__EXECUTOR": executor}

    proc = _run_cli(args, scan_env)
    deadline = time.monotonic() + 120
    while _complete_lines(out) == 0 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    err = _interrupt(proc)
    written = len(read_jsonl(out))
    assert proc.returncode == 130, err
    assert "rows written so far are kept; run the same command again to finish" in err
    assert 0 < written < total, "the interrupt must land mid-scan"

    proc = _run_cli(args, scan_env)
    summary, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    rows = read_jsonl(out)
    counts = Counter(r["path"] for r in rows)
    assert sorted(counts) == sorted(str(p) for p in src.iterdir() if p.is_file())
    assert set(counts.values()) == {1}
    assert f"{'already in results':<36}{written:>8}" in summary
    if executor == "local":
        assert "analysed on: this process, 2 worker thread(s), no Ray" in summary
    else:
        assert "analysed on: Ray Data on a local Ray, 2 fused actor(s)" in summary
    from serving.scan.clusters import assign_clusters
    from serving.scan.output import latest_per_path

    # counted over every row of RESULTS, the first run's included (was: this run's rows only)
    final = assign_clusters(latest_per_path(rows))
    clusters = len({r["cluster_id"] for r in final if r.get("cluster_id")})
    assert f"{'near-duplicate clusters (all)':<36}{clusters:>8}" in summary


def test_a_missing_fusion_file_stops_the_scan_before_anything_is_written(
    tmp_path: Path, scan_env: dict[str, str]
) -> None:
    """The models are checked before Ray starts (without torch); a broken install writes no row."""
    src = tmp_path / "batch"
    for i in range(3):
        face_jpeg(src / f"face{i}.jpg", shift=5 * i)
    out = tmp_path / "results.jsonl"
    env = {**scan_env, "TRUEFRAME_FUSION__FUSION_FILE": str(tmp_path / "missing.toml")}
    proc = _run_cli([str(src), "--out", str(out), "--no-progress"], env)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, err
    assert "error: model_error: TRUEFRAME_FUSION__FUSION_FILE: cannot read fusion parameters" in err
    assert not out.exists()
    assert not Path(f"{out}.journal.jsonl").exists()


def _interrupt(proc: subprocess.Popen[str]) -> str:
    """Ctrl-C as a user gives it: again if the scan has not exited 2 s later. A press whose
    KeyboardInterrupt CPython drops (in an import lock's callback) stops the scan at the next row
    written (tests/unit/test_scan_ctrl_c.py), but one dropped before the scan's handler is installed,
    while the command starts, is gone; before the handler, with a second Ctrl-C only 20 s later, a
    full run's scan had finished and exited 0 (2026-12-05). Returns the scan's stderr."""
    for _ in range(60):
        proc.send_signal(signal.SIGINT)
        try:
            return proc.communicate(timeout=2)[1]
        except subprocess.TimeoutExpired:
            continue
    proc.kill()
    return proc.communicate()[1]


def test_the_ray_fingerprint_pass_reads_what_the_local_one_reads(
    tmp_path: Path, settings: Settings, ray_local: None
) -> None:
    """On a cluster of several nodes the fingerprints are a Ray Data pass; here (one node) the scan
    reads them in the driver, so the pass is run directly and compared."""
    from serving.scan.run import Scanner, local_fingerprints

    for i in range(3):
        face_jpeg(tmp_path / f"face{i}.jpg", shift=5 * i)
    (tmp_path / "notes.txt").write_text("not media\n")
    items = [*list_source(str(tmp_path)), ScanItem(str(tmp_path / "gone.jpg"))]
    scanner = Scanner(settings, ResultStore(tmp_path / "unused.jsonl"))
    by_ray = sorted(scanner._fingerprints(items), key=lambda row: row["id"])
    assert by_ray == local_fingerprints(items)
    assert [row["kind"] for row in by_ray].count("image") == 3


def test_csv_manifest_extra_columns_come_through(
    tmp_path: Path, settings: Settings, ray_local: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from serving.scan.run import Scanner

    def no_ray_pass(self: Scanner, items: list[ScanItem]) -> None:
        pytest.fail("Ray runs on this machine alone: the driver reads the fingerprints itself")

    monkeypatch.setattr(Scanner, "_fingerprints", no_ray_pass)
    media = tmp_path / "media"
    face_jpeg(media / "a.jpg")
    (media / "b.txt").parent.mkdir(exist_ok=True)
    (media / "b.txt").write_text("hello")
    manifest = tmp_path / "cases.csv"
    with open(manifest, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["case_id", "path", "url", "sha256"])
        writer.writerow(["C-1", "media/a.jpg", "https://example.org/a", "claimed"])
        writer.writerow(["C-2", "media/b.txt", "https://example.org/b", ""])
        writer.writerow(["C-3", "media/missing.jpg", "https://example.org/c", ""])
    out = tmp_path / "out.csv"

    scan_items(list(list_source(str(manifest))), ResultStore(out), settings, frames=FRAMES)

    with open(out, newline="") as fh:
        rows = {r["case_id"]: r for r in csv.DictReader(fh)}
    assert set(rows) == {"C-1", "C-2", "C-3"}
    assert rows["C-1"]["path"] == str(tmp_path / "media" / "a.jpg")
    assert rows["C-1"]["url"] == "https://example.org/a"
    assert rows["C-1"]["verdict"]
    assert rows["C-1"]["source_sha256"] == "claimed"  # a clashing extra column is kept, renamed
    assert rows["C-1"]["sha256"] == _sha(media / "a.jpg")
    assert rows["C-2"]["error_code"] == "unsupported_media_type"
    assert rows["C-3"]["error_code"] == "source_unreadable"
    assert rows["C-3"]["url"].endswith("/c")


def test_parquet_output_reads_back_and_feeds_the_review_queue(
    tmp_path: Path,
    scan_env: dict[str, str],
    ray_local: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from detector.settings import get_settings
    from serving.cli.scan import main

    for key, value in scan_env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    src = tmp_path / "src"
    face_jpeg(src / "one.jpg")
    face_jpeg(src / "two.jpg", shift=40)
    (src / "three.bin").write_bytes(b"\x00" * 64)
    out, queue = tmp_path / "scan.parquet", tmp_path / "queue.csv"
    argv = [str(src), "--out", str(out), "--frames", str(FRAMES), "--no-progress"]
    try:
        assert main([*argv, "--review-out", str(queue), "--min-score", "0"]) == 0
        table = pq.read_table(out)
        assert table.num_rows == 3
        assert str(table.schema.field("authenticity").type) == "double"
        rows = {Path(r["path"]).name: r for r in table.to_pylist()}
        assert rows["three.bin"]["error_code"] == "unsupported_media_type"
        assert 0.0 <= rows["one.jpg"]["authenticity"] <= 1.0
        with open(queue, newline="") as fh:
            queued = list(csv.DictReader(fh))
        scores = [float(r["manipulated"]) for r in queued]
        assert {Path(r["path"]).name for r in queued} == {"one.jpg", "two.jpg"}
        assert scores == sorted(scores, reverse=True)
        assert "analysed on: " in capsys.readouterr().out
        assert main(argv) == 0  # a rerun adds nothing
        assert "analysed on: " not in capsys.readouterr().out  # nothing was
        assert pq.read_table(out).num_rows == 3
        assert len(read_jsonl(Path(f"{out}.journal.jsonl"))) == 3
    finally:
        get_settings.cache_clear()


def _uploads_and_a_hash_list(tmp_path: Path) -> Path:
    """A reviewed mug photo in the service's hash list (the store of the settings' data folder), and
    a folder with a photo, two near-duplicates of it, and a re-encoded copy of the mug."""
    from detector.provenance.pdq import pdq_hex
    from detector.settings import get_settings
    from serving.jobs.store import open_store
    from serving.known.lists import import_csv
    from tests.support import known_media as km

    coffee = km.unrelated_photo()
    store = open_store(get_settings())
    known_hash = pdq_hex(km.decode(coffee))[0]
    import_csv(
        store, "desk", f"item,kind,verdict,reviewed_at,hash\nmug,image,manipulated,1714557600,{known_hash}\n"
    )
    store.close()
    src = tmp_path / "uploads"
    src.mkdir()
    original = km.reviewed_photo()
    files = {
        "a.jpg": original,
        "a-q50.jpg": km.reencoded(original, 50),
        "a-small.png": km.resized(original, 181),
        "mug.jpg": km.reencoded(coffee, 60),
    }
    for name, content in files.items():
        (src / name).write_bytes(content)
    return src


def _assert_clusters_and_queue(out: Path, queue: Path) -> None:
    """The photo and its two copies share a cluster, the mug matches the hash list and outweighs the
    models, and the review queue holds one representative of the unjudged cluster."""
    rows = {Path(r["path"]).name: r for r in read_jsonl(out)}
    assert len({rows[n]["cluster_id"] for n in ("a.jpg", "a-q50.jpg", "a-small.png")}) == 1
    assert rows["mug.jpg"]["cluster_id"] != rows["a.jpg"]["cluster_id"]
    assert (rows["mug.jpg"]["known_match_verdict"], rows["mug.jpg"]["known_match_list"]) == (
        "manipulated",
        "desk",
    )
    # a human decision on a near-duplicate outweighs the models
    assert rows["mug.jpg"]["verdict"] == "manipulated"
    assert rows["a.jpg"]["known_match_verdict"] is None
    queued = read_jsonl(queue)
    assert len(queued) == 1, "one representative of the unjudged cluster; the judged mug is left out"
    assert queued[0]["cluster_id"] == rows["a.jpg"]["cluster_id"]
    assert queued[0]["cluster_size"] == 3


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_scan_clusters_near_duplicates_reports_known_matches_and_queues_one_per_cluster(
    tmp_path: Path, scan_env: dict[str, str], ray_local: None, monkeypatch: pytest.MonkeyPatch, executor: str
) -> None:
    """On the local executor each worker thread opens the hash lists' store for itself."""
    from detector.settings import get_settings
    from serving.cli.scan import main

    data = tmp_path / "service-data"  # the service's store: its hash lists are what the scan consults
    env = {**scan_env, "TRUEFRAME_DATA_DIR": str(data), "TRUEFRAME_SCAN__EXECUTOR": executor}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("TRUEFRAME_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    src = _uploads_and_a_hash_list(tmp_path)
    out, queue = tmp_path / "scan.jsonl", tmp_path / "queue.jsonl"
    argv = [str(src), "--out", str(out), "--frames", str(FRAMES), "--no-progress", "--review-out", str(queue)]
    try:
        assert main(argv) == 0
    finally:
        get_settings.cache_clear()
    _assert_clusters_and_queue(out, queue)
