"""The scan's plan without Ray: skip what is done, error rows, copies of known content, shared analyses."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa

from serving.scan.output import Row, make_row
from serving.scan.plan import plan_scan, shared_rows
from serving.scan.run import _fingerprint_batch, driver_alone, local_fingerprints
from serving.scan.source import ScanItem
from tests.support.scan_media import face_jpeg

V1, V2 = "face=meso4.df@aaa;fusion@bbb;frames=4", "face=meso4.df@ccc;fusion@bbb;frames=4"
SHA_A, SHA_B = "a" * 64, "b" * 64


def fp(ident: int, sha: str | None = SHA_A, error: str | None = None) -> dict[str, Any]:
    """A fingerprint row as the scan's first pass yields it."""
    kind = None if error else "image"
    return {"id": ident, "sha256": sha, "size_bytes": 10, "kind": kind, "format": "jpeg", "error": error}


def done(path: str, sha: str, versions: str = V1, **result: Any) -> Row:
    """A row an earlier scan wrote for ``path``."""
    columns = {"sha256": sha, "kind": "image", "verdict": "authentic", "authenticity": 0.9, **result}
    return make_row(path, {}, columns, versions)


def test_items_already_in_results_are_skipped() -> None:
    items = [ScanItem("/m/a.jpg"), ScanItem("/m/b.jpg"), ScanItem("/m/c.jpg")]
    existing = [done("/m/a.jpg", SHA_A), done("/m/b.jpg", SHA_B, versions=V2), done("/m/c.jpg", "c" * 64)]
    plan = plan_scan(items, [fp(0, SHA_A), fp(1, SHA_B), fp(2, "d" * 64)], existing, V1)
    assert plan.skipped == 1  # a.jpg: same path, content and models
    # b.jpg was scanned under other models, c.jpg's content changed: both are analysed again
    assert plan.analyse == {SHA_B: 1, "d" * 64: 2}
    assert plan.ready == []


def test_an_error_row_is_written_once_and_a_file_readable_again_is_analysed() -> None:
    items = [ScanItem("/m/gone.jpg", {"case": 7}), ScanItem("/m/notes.txt")]
    prints = [
        fp(0, sha=None, error="source_unreadable\tcannot read /m/gone.jpg: no such file"),
        fp(1, sha="e" * 64, error="unsupported_media_type\tnot an image or video: text"),
    ]
    plan = plan_scan(items, prints, [], V1)
    gone, notes = plan.ready
    assert (gone["path"], gone["case"], gone["sha256"]) == ("/m/gone.jpg", 7, None)
    assert (gone["error_code"], gone["error_message"]) == (
        "source_unreadable",
        "cannot read /m/gone.jpg: no such file",
    )
    assert (notes["error_code"], notes["sha256"], notes["verdict"]) == (
        "unsupported_media_type",
        "e" * 64,
        None,
    )
    assert {gone["model_versions"], notes["model_versions"]} == {V1}
    assert plan.analyse == {}
    again = plan_scan(items, prints, plan.ready, V1)
    assert (again.skipped, again.ready) == (2, []), "the same failure is not written twice"
    readable = plan_scan(items, [fp(0, SHA_A), prints[1]], plan.ready, V1)
    assert (readable.skipped, readable.analyse) == (1, {SHA_A: 0}), "once readable, it is analysed"


def test_known_content_is_copied_with_duplicate_of() -> None:
    items = [ScanItem("/new/copy.jpg", {"case": 1})]
    existing = [done("/old/orig.jpg", SHA_A, verdict="manipulated", scanned_at="2020-01-01T00:00:00+00:00")]
    plan = plan_scan(items, [fp(0, SHA_A)], existing, V1)
    (row,) = plan.ready
    assert plan.analyse == {}
    assert (row["path"], row["case"], row["duplicate_of"]) == ("/new/copy.jpg", 1, "/old/orig.jpg")
    assert (row["verdict"], row["sha256"], row["model_versions"]) == ("manipulated", SHA_A, V1)
    assert row["scanned_at"] != "2020-01-01T00:00:00+00:00", "a copy records when it was written"


def test_known_content_is_not_copied_across_models_copies_or_internal_errors() -> None:
    items = [ScanItem("/n/1.jpg"), ScanItem("/n/2.jpg"), ScanItem("/n/3.jpg")]
    existing = [
        done("/o/1.jpg", SHA_A, versions=V2),  # other models
        done("/o/2.jpg", SHA_B, duplicate_of="/o/x.jpg"),  # itself a copy
        done("/o/3.jpg", "c" * 64, error_code="internal_error", verdict=None),  # a bug: retried
    ]
    plan = plan_scan(items, [fp(0, SHA_A), fp(1, SHA_B), fp(2, "c" * 64)], existing, V1)
    assert plan.ready == []
    assert plan.analyse == {SHA_A: 0, SHA_B: 1, "c" * 64: 2}


def test_a_failure_that_was_not_the_files_is_analysed_again_on_the_same_path() -> None:
    """Before: rows of a bug or of the hash lists' database being down stayed for good, a rerun
    counting them "already in results"; a corrupt file's own error is still not retried."""
    items = [ScanItem("/m/a.jpg"), ScanItem("/m/b.jpg"), ScanItem("/m/c.jpg")]
    existing = [
        done("/m/a.jpg", SHA_A, error_code="store_unavailable", verdict=None),
        done("/m/b.jpg", SHA_B, error_code="internal_error", verdict=None),
        done("/m/c.jpg", "c" * 64, error_code="corrupt_media", verdict=None),
    ]
    plan = plan_scan(items, [fp(0, SHA_A), fp(1, SHA_B), fp(2, "c" * 64)], existing, V1)
    assert plan.analyse == {SHA_A: 0, SHA_B: 1}
    assert plan.skipped == 1


def test_same_content_in_one_run_is_analysed_once_and_shared() -> None:
    items = [ScanItem(f"/m/{n}.jpg", {"n": n}) for n in ("a", "b", "c", "d")]
    prints = [fp(0, SHA_A), fp(1, SHA_B), fp(2, SHA_A), fp(3, SHA_A)]
    plan = plan_scan(items, prints, [], V1)
    assert plan.analyse == {SHA_A: 0, SHA_B: 1}
    assert plan.sharing == {SHA_A: [0, 2, 3], SHA_B: [1]}
    assert plan.content_of[0] == {"sha256": SHA_A, "size_bytes": 10, "kind": "image", "format": "jpeg"}
    result = {"sha256": SHA_A, "verdict": "likely_manipulated", "manipulated": 0.8, "faces": 1}
    rows = shared_rows(items, plan, 0, result, V1)
    assert [(r["path"], r["n"], r["duplicate_of"]) for r in rows] == [
        ("/m/a.jpg", "a", None),
        ("/m/c.jpg", "c", "/m/a.jpg"),
        ("/m/d.jpg", "d", "/m/a.jpg"),
    ]
    assert {(r["verdict"], r["manipulated"], r["model_versions"]) for r in rows} == {
        ("likely_manipulated", 0.8, V1)
    }


def test_a_failure_after_planning_keeps_the_planned_content_key() -> None:
    items = [ScanItem("/m/a.jpg"), ScanItem("/m/b.jpg")]
    plan = plan_scan(items, [fp(0, SHA_A), fp(1, SHA_A)], [], V1)
    failed = {"sha256": None, "error_code": "source_unreadable", "error_message": "the file went away"}
    rows = shared_rows(items, plan, 0, failed, V1)
    assert [(r["sha256"], r["kind"], r["error_code"]) for r in rows] == [
        (SHA_A, "image", "source_unreadable")
    ] * 2


def test_fingerprints_of_real_files_plan_as_expected(tmp_path: Path) -> None:
    face = face_jpeg(tmp_path / "face.jpg")
    shutil.copyfile(face, tmp_path / "same.jpg")
    other = face_jpeg(tmp_path / "other.jpg", shift=16)
    (tmp_path / "notes.txt").write_text("not media\n")
    paths = [
        str(face),
        str(tmp_path / "same.jpg"),
        str(other),
        str(tmp_path / "notes.txt"),
        str(tmp_path / "gone.jpg"),
    ]
    batch = pa.table({"id": list(range(len(paths))), "path": paths})
    prints = _fingerprint_batch(batch).to_pylist()
    assert [p["kind"] for p in prints] == ["image", "image", "image", None, None]
    items = [ScanItem(p) for p in paths]
    assert local_fingerprints(items) == prints  # the local pass (threads, while Ray starts) reads the same
    plan = plan_scan(items, prints, [], V1)
    assert sorted(plan.analyse.values()) == [0, 2]
    assert plan.sharing[prints[0]["sha256"]] == [0, 1]
    assert [(r["path"], r["error_code"]) for r in plan.ready] == [
        (paths[3], "unsupported_media_type"),
        (paths[4], "source_unreadable"),
    ]


class _FakeRay:
    """What :func:`driver_alone` asks of Ray: the nodes, the driver's node, Ray Client."""

    def __init__(self, nodes: list[tuple[str, bool]], mine: str = "n1", client: bool = False) -> None:
        self._nodes = [{"NodeID": n, "Alive": alive} for n, alive in nodes]
        self.util = SimpleNamespace(client=SimpleNamespace(ray=SimpleNamespace(is_connected=lambda: client)))
        self._mine = mine

    def nodes(self) -> list[dict[str, object]]:
        return self._nodes

    def get_runtime_context(self) -> SimpleNamespace:
        return SimpleNamespace(get_node_id=lambda: self._mine)


def test_the_driver_reads_the_files_itself_only_when_the_cluster_is_its_own_machine() -> None:
    assert driver_alone(_FakeRay([("n1", True)]))
    assert driver_alone(_FakeRay([("n1", True), ("n2", False)]))  # a node that left does not count
    assert not driver_alone(_FakeRay([("n1", True), ("n2", True)]))  # files may live on n2
    assert not driver_alone(_FakeRay([("n2", True)]))  # the driver is elsewhere
    assert not driver_alone(_FakeRay([("n1", True)], client=True))  # Ray Client: the driver is remote
