"""The torchvision shim and the detector's own NMS: exact semantics, inert where compiled ops exist."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

from detector.faces.nms import batched_nms, nms_reference
from detector.faces.tvcompat import ensure_torchvision


def brute_force_nms(boxes: list[list[float]], scores: list[float], threshold: float) -> list[int]:
    """Textbook greedy NMS in plain Python, the reference the shim is checked against."""

    def iou(a: list[float], b: list[float]) -> float:
        iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = iw * ih
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / union if union > 0 else 0.0

    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    keep: list[int] = []
    for i in order:
        if all(iou(boxes[i], boxes[k]) <= threshold for k in keep):
            keep.append(i)
    return keep


def random_boxes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 200
    wh = torch.rand(n, 2, generator=g) * 60 + 1
    return torch.cat([xy, xy + wh], dim=1), torch.rand(n, generator=g)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.7, 1.0])
def test_nms_matches_brute_force(seed: int, threshold: float) -> None:
    boxes, scores = random_boxes(80, seed)
    got = nms_reference(boxes, scores, threshold).tolist()
    assert got == brute_force_nms(boxes.tolist(), scores.tolist(), threshold)


def test_nms_empty_and_single() -> None:
    empty = nms_reference(torch.zeros((0, 4)), torch.zeros((0,)), 0.5)
    assert empty.dtype == torch.long
    assert empty.numel() == 0
    one = nms_reference(torch.tensor([[0.0, 0.0, 10.0, 10.0]]), torch.tensor([0.9]), 0.5)
    assert one.tolist() == [0]


def test_identical_boxes_keep_highest_score() -> None:
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0]] * 3)
    scores = torch.tensor([0.2, 0.9, 0.5])
    assert nms_reference(boxes, scores, 0.5).tolist() == [1]


@pytest.mark.parametrize("n", [0, 1, 60, 999, 1001, 2500])  # over 1,000 boxes: image by image
def test_the_detectors_batched_nms_keeps_torchvisions_boxes_in_its_order(n: int) -> None:
    """:func:`batched_nms` (faces, no torchvision import) against ``torchvision.ops.batched_nms``
    over the same greedy NMS: the same indices in the same order, on both of torchvision's paths
    (coordinate offsets up to 4,000 coordinates, per image above), scores tied across images too."""
    ensure_torchvision()
    from torchvision.ops import batched_nms as tv_batched_nms

    boxes, scores = random_boxes(n, n)
    scores = (scores * 20).round() / 20  # ties, within and across images
    idxs = torch.randint(0, 4, (n,), generator=torch.Generator().manual_seed(n))
    for iou in (0.5, 0.7):
        expected = tv_batched_nms(boxes, scores, idxs, iou)
        assert batched_nms(boxes, scores, idxs, iou).tolist() == expected.tolist()


def test_torchvision_imports_and_ops_use_the_shim() -> None:
    ensure_torchvision()
    from torchvision.ops import batched_nms, nms

    boxes, scores = random_boxes(60, 11)
    assert nms(boxes, scores, 0.4).tolist() == brute_force_nms(boxes.tolist(), scores.tolist(), 0.4)
    idxs = torch.randint(0, 3, (60,), generator=torch.Generator().manual_seed(1))
    kept = batched_nms(boxes, scores, idxs, 0.4)
    for cls in range(3):
        members = (idxs == cls).nonzero().flatten()
        expected = {
            int(members[i]) for i in brute_force_nms(boxes[members].tolist(), scores[members].tolist(), 0.4)
        }
        assert {int(i) for i in kept if int(idxs[i]) == cls} == expected


def test_ensure_registers_once_and_answers_the_same_from_every_thread() -> None:
    """In a fresh process: concurrent and repeated calls agree, and the fallback op is defined once
    (a second definition would raise; a forgotten state would answer "compiled" the second time)."""
    code = textwrap.dedent(
        """
        import threading
        import torch
        from detector.faces import tvcompat
        results = []
        threads = [threading.Thread(target=lambda: results.append(tvcompat.ensure_torchvision()))
                   for _ in range(8)]
        for t in threads: t.start()
        for t in threads: t.join()
        lib = tvcompat._fallback_lib
        results.append(tvcompat.ensure_torchvision())
        assert len(set(results)) == 1 and len(results) == 9, results
        assert tvcompat._fallback_lib is lib
        assert (lib is None) == (results[0] == "compiled"), (results[0], lib)
        from torchvision.ops import nms
        boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [50.0, 50.0, 60.0, 60.0]])
        assert nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5).tolist() == [0, 2]
        print("state", results[0])
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() in (["state", "compiled"], ["state", "fallback"])


def test_inert_when_the_op_already_exists() -> None:
    """Where torchvision's own ops are registered, the shim must not replace them."""
    code = textwrap.dedent(
        """
        import torch
        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.impl("nms", lambda d, s, t: torch.tensor([42]), "CompositeExplicitAutograd")
        from detector.faces.tvcompat import ensure_torchvision
        assert ensure_torchvision() == "compiled"
        out = torch.ops.torchvision.nms(torch.zeros(1, 4), torch.zeros(1), 0.5)
        assert out.tolist() == [42], out
        print("inert-ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "inert-ok" in result.stdout


def test_fresh_process_imports_torchvision_and_facenet() -> None:
    code = (
        "from detector.faces.tvcompat import ensure_torchvision; ensure_torchvision();"
        "import torchvision.models, facenet_pytorch; print('imported')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert "imported" in result.stdout
