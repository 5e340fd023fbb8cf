"""The batch scan without Ray: the journal, listing sources and manifests, the review queue."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from serving.scan.output import read_jsonl
from serving.scan.source import list_source
from tests.support.scan_media import face_jpeg


def test_journal_drops_a_half_written_line_and_keeps_appending(tmp_path: Path) -> None:
    from serving.scan.output import Journal

    path = tmp_path / "results.jsonl"
    journal = Journal(path)
    journal.append([{"path": "a"}, {"path": "b"}])
    journal.close()
    with open(path, "a") as fh:
        fh.write('{"path": "c", "verd')  # the process died mid-write
    assert [r["path"] for r in read_jsonl(path)] == ["a", "b"]
    journal = Journal(path)
    journal.append([{"path": "c"}])
    journal.close()
    assert [r["path"] for r in read_jsonl(path)] == ["a", "b", "c"]


def test_sources_lists_manifests_and_single_files(tmp_path: Path) -> None:
    from detector.errors import InvalidRequest

    photo = face_jpeg(tmp_path / "media" / "p.jpg")
    listing = tmp_path / "paths.txt"
    listing.write_text(f"# flagged today\nmedia/p.jpg\n\n{photo}\nmedia/gone.mp4\n")
    assert [i.path for i in list_source(str(listing))] == [
        str(photo),
        str(photo),
        str(tmp_path / "media/gone.mp4"),
    ]
    manifest = tmp_path / "cases.jsonl"
    manifest.write_text('{"path": "media/p.jpg", "case": 7, "flags": ["a"]}\n')
    (item,) = list_source(str(manifest))
    assert (item.path, item.extra) == (str(photo), {"case": 7, "flags": ["a"]})
    assert [i.path for i in list_source(str(photo))] == [str(photo)]
    assert len(list(list_source(str(listing), limit=1))) == 1
    (tmp_path / "bad.csv").write_text("file,case\nx.jpg,1\n")
    with pytest.raises(InvalidRequest, match="path"):
        list(list_source(str(tmp_path / "bad.csv")))


@pytest.mark.timeout(60)
def test_a_folder_with_link_loops_fifos_and_dangling_links_lists_each_file_once(tmp_path: Path) -> None:
    """A loop of links ends, a linked folder is listed once, and what is not a regular file is an
    item whose read fails at once with ``source_unreadable`` (a FIFO used to be skipped when listed
    in a folder and to block the scan forever when listed in a manifest)."""
    import os

    from detector.errors import SourceUnreadable
    from serving.scan.source import fingerprint, read_bytes

    root, outside = tmp_path / "batch", tmp_path / "elsewhere"
    (root / "a" / "b" / "c").mkdir(parents=True)
    outside.mkdir()
    face_jpeg(root / "a" / "one.jpg")
    face_jpeg(outside / "two.jpg", shift=5)
    (root / "a" / "b" / "c" / "up").symlink_to("..")  # a loop
    (root / "a" / "again").symlink_to(root)  # the scanned folder itself
    (root / "linked").symlink_to(outside)  # followed once
    (root / "gone.png").symlink_to(tmp_path / "nothing")
    os.mkfifo(root / "pipe.mp4")
    (root / ".hidden.jpg").write_bytes(b"x")
    listed = [i.path for i in list_source(str(root))]
    assert listed == [str(root / p) for p in ("a/one.jpg", "gone.png", "linked/two.jpg", "pipe.mp4")]
    for item in ("pipe.mp4", "gone.png"):
        for read in (fingerprint, read_bytes):
            with pytest.raises(SourceUnreadable):
                read(str(root / item))
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"path": "batch/pipe.mp4"}\n')
    (item,) = list_source(str(manifest))
    with pytest.raises(SourceUnreadable, match="not a regular file"):
        fingerprint(item.path)
    assert fingerprint(f"file://{root / 'a' / 'one.jpg'}").kind == "image"
    with pytest.raises(SourceUnreadable, match="nosuch"):
        list(list_source("nosuch://bucket/prefix"))


def test_review_queue_applies_every_filter_and_sorts_by_score() -> None:
    from serving.cli.scan import review_queue

    rows: list[dict[str, Any]] = [
        {"path": "a", "verdict": "manipulated", "manipulated": 0.95},
        {"path": "b", "verdict": "likely_manipulated", "manipulated": 0.8},
        {"path": "c", "verdict": "authentic", "manipulated": 0.02},
        {"path": "d", "verdict": None, "manipulated": None, "error_code": "corrupt_media"},
        {"path": "e", "verdict": "ai_generated", "manipulated": None},
    ]
    assert [r["path"] for r in review_queue(rows, 0.5, None)] == ["a", "b"]
    assert [r["path"] for r in review_queue(rows, 0.9, {"manipulated", "likely_manipulated"})] == ["a"]
    assert [r["path"] for r in review_queue(rows, None, {"ai_generated", "authentic"})] == ["c", "e"]
