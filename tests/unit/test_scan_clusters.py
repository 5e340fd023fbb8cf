"""Near-duplicate clusters of scan rows and the review queue of one representative per cluster."""

from __future__ import annotations

import random
from typing import Any

from serving.cli.scan import review_queue
from serving.scan.clusters import Clusters, assign_clusters, representatives


def _hex(value: int) -> str:
    return f"{value:064x}"


def _near(value: int, bits: int, rng: random.Random) -> int:
    for bit in rng.sample(range(256), bits):
        value ^= 1 << bit
    return value


def _row(path: str, sha: str, pdq: list[int], kind: str = "image", **extra: Any) -> dict[str, Any]:
    return {"path": path, "sha256": sha * 64, "kind": kind, "pdq": " ".join(_hex(v) for v in pdq), **extra}


def test_near_duplicates_share_a_cluster_named_after_its_first_row() -> None:
    rng = random.Random(1)
    a, b = rng.getrandbits(256), rng.getrandbits(256)
    rows = [
        _row("a.jpg", "1", [a]),
        _row("a-small.png", "2", [_near(a, 20, rng)]),
        _row("b.jpg", "3", [b]),
        _row("a-copy.jpg", "1", [a]),  # the same bytes again
        _row("broken.jpg", "4", [], error_code="corrupt_media"),
        _row("a-as-video.mp4", "5", [a, a], kind="video"),  # kinds are never mixed
    ]
    clusters = Clusters()
    names = [clusters.add(r) for r in rows]
    assert names == [
        "c_111111111111",
        "c_111111111111",
        "c_333333333333",
        "c_111111111111",
        None,
        "c_555555555555",
    ]


def test_a_row_linking_two_clusters_merges_them_under_the_older_name() -> None:
    rng = random.Random(2)
    a = rng.getrandbits(256)
    far = _near(a, 50, rng)  # 50 bits from a: not a match on its own
    between = a
    for bit in [i for i in range(256) if (a ^ far) >> i & 1][:25]:
        between ^= 1 << bit  # 25 bits from a, 25 from far
    rows = [_row("a", "1", [a]), _row("far", "2", [far]), _row("between", "3", [between])]
    clusters = Clusters()
    assert [clusters.add(r) for r in rows] == ["c_111111111111", "c_222222222222", "c_111111111111"]
    assert [r["cluster_id"] for r in assign_clusters(rows)] == ["c_111111111111"] * 3


def test_videos_cluster_when_half_their_frames_match() -> None:
    rng = random.Random(3)
    frames = [rng.getrandbits(256) for _ in range(6)]
    copy = [_near(f, 12, rng) for f in frames[:3]] + [rng.getrandbits(256) for _ in range(3)]
    other = [_near(f, 12, rng) for f in frames[:2]] + [rng.getrandbits(256) for _ in range(4)]
    rows = [
        _row("v", "1", frames, "video"),
        _row("copy", "2", copy, "video"),
        _row("other", "3", other, "video"),
    ]
    assert [r["cluster_id"] for r in assign_clusters(rows)] == [
        "c_111111111111",
        "c_111111111111",
        "c_333333333333",
    ]


def test_the_review_queue_has_one_representative_per_unjudged_cluster() -> None:
    rng = random.Random(4)
    a, b, c = (rng.getrandbits(256) for _ in range(3))
    rows = [
        _row("a1", "1", [a], verdict="likely_manipulated", manipulated=0.7),
        _row("a2", "2", [_near(a, 10, rng)], verdict="manipulated", manipulated=0.95),
        _row("b1", "3", [b], verdict="authentic", manipulated=0.05),
        _row("c1", "4", [c], verdict="manipulated", manipulated=0.99),
        _row(
            "c2",
            "5",
            [_near(c, 5, rng)],
            verdict="manipulated",
            manipulated=0.9,
            known_match_verdict="manipulated",
        ),
        _row("bad", "6", [], error_code="corrupt_media"),
    ]
    queue = review_queue(rows, None, None)
    assert [(r["path"], r["cluster_size"]) for r in queue] == [("a2", 2), ("b1", 1)]
    assert [r["path"] for r in review_queue(rows, 0.5, None)] == ["a2"]
    assert len(representatives(rows)) == 3
