"""MTCNN's detection pass over its three networks (:mod:`detector.faces.mtcnn_nets`), vectorised crops.

:func:`detect_batch` is facenet-pytorch 2.6.0's ``detect_face`` (the algorithm behind
``MTCNN.detect``) step for step: the image pyramid (factor ``mtcnn.factor`` from
``min_size``), P-Net, NMS per scale and image (IoU 0.5) then per image (0.7), box regression,
R-Net, NMS 0.7, O-Net, landmarks and a final per-image NMS with the 'Min' overlap, with one
more pyramid level (:func:`pyramid_scales`) so that a face as large as the image is searched too.
The other difference is how the resampling is done: facenet pools a float copy of the batch for
each pyramid level, and crops each box for R-Net's 24x24 and O-Net's 48x48 inputs and calls
``interpolate(mode="area")`` on it in a Python loop. Area resampling is adaptive average pooling,
each output pixel the mean of an integer-bounded input cell, so here running integer sums of the
uint8 batch give every level (:func:`area_resize`, the same floats as pooling) and, completed into
a summed-area table, every box's crop in one gather (:func:`area_crops`, equal to facenet's up to
float rounding). P-Net's first pooling is two element-wise maxima, taken before its PReLU
(:func:`pooled_prelu`): the same numbers, in less time.

Boxes are cropped like facenet's ``pad``: coordinates truncated, clipped to the image (not
zero-padded), the crop stretched to the square input. A box whose clipped crop is empty is
dropped (facenet skips its crop but keeps the box, which misaligns the boxes that follow).
Everything runs on the networks' device; results come back to the CPU once, for the final NMS.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from detector.faces.mtcnn_nets import Mtcnn, PNet
from detector.faces.nms import batched_nms

__all__ = [
    "Faces",
    "area_crops",
    "area_resize",
    "column_sums",
    "detect_batch",
    "max_pool_2x2",
    "pnet_forward",
    "pooled_prelu",
    "pyramid_scales",
]

Faces = tuple[np.ndarray, np.ndarray, np.ndarray]
"""Per image: float32 boxes (k, 4) as x1, y1, x2, y2, probabilities (k,), landmarks (k, 5, 2)."""

NET_BATCH = 512
"""R-Net and O-Net run on at most this many crops at once (facenet's ``fixed_batch_process``)."""

PNET_PIXELS = 250_000
"""Default bound on the pixels of one P-Net input: its first layers' activations are most of the
pass's peak memory. 250,000 is one 1080p frame's 640 px copy at the first scale; against 1,000,000
it lowered the face pass's peak on 1080p bench clips from 180-200 MB to 60-90 MB above the frames,
at the same speed (later scales still batch several images per call)."""


def pyramid_scales(
    height: int, width: int, min_size: float, factor: float, full_frame: bool = True
) -> list[float]:
    """Scales of the image pyramid: P-Net's 12 px window covers ``min_size`` px at the first and,
    with ``full_frame``, the image's short side at the last.

    facenet's pyramid (``full_frame=False``) stops at its last ``factor`` step that keeps a 12 px
    short side, which can leave the largest faces unsearched: on the bench clips, faces filling a
    720p or 1080p frame were missed in 3-4 of 32 frames. One more level, at exactly 12 px, covers
    them."""
    m = 12.0 / min_size
    minl = min(height, width) * m
    scales = []
    scale = m
    while minl >= 12:
        scales.append(scale)
        scale = scale * factor
        minl = minl * factor
    last = 12.0 / min(height, width)
    if full_frame and scales and scales[-1] > last:
        scales.append(last)
    return scales


def column_sums(images: torch.Tensor) -> torch.Tensor:
    """Running sums down each column of an (N, H, W, C) uint8 batch: (N, H + 1, W + 1, C), zero first
    row and column; what :func:`area_resize` reads, and, summed along the rows too
    (``cumsum_(2)``), the batch's summed-area table, which :func:`area_crops` reads.

    Integer sums (int32 while 255 * H * W fits, else int64), so cell sums are exact.
    """
    n, height, width, channels = images.shape
    dtype = torch.int32 if 255 * height * width < 2**31 else torch.int64
    table = torch.zeros((n, height + 1, width + 1, channels), dtype=dtype, device=images.device)
    table[:, 1:, 1:] = images
    return table.cumsum_(1)  # in place: no full-size temporaries


def area_resize(columns: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The batch of :func:`column_sums` ``columns`` area-resampled to ``size`` (h, w): (N, C, h, w)
    float32 in channels-last memory, equal to ``interpolate(batch, size, mode="area")`` of the
    float batch.

    Area resampling averages integer-bounded cells whose rows and columns are chosen apart, so a
    cell's sum is a difference of two rows of ``columns`` (every output row's band), then of two
    running sums along that band. The sums are exact integers and the mean is ``sum / kh / kw``,
    the division torch's adaptive average pooling does: the same floats, in about half the time
    of pooling the float batch (which also needs that float copy of the frames at full size).
    """
    height, width = columns.shape[1] - 1, columns.shape[2] - 1
    whole = torch.zeros(1, dtype=torch.long, device=columns.device)
    rs, re = (v[0] for v in _cells(whole, torch.tensor([height], device=columns.device), size[0]))
    cs, ce = (v[0] for v in _cells(whole, torch.tensor([width], device=columns.device), size[1]))
    band = columns[:, re] - columns[:, rs]  # (N, h, W + 1, C): each output row's column sums
    band.cumsum_(2)
    sums = (band[:, :, ce] - band[:, :, cs]).to(torch.float32)  # (N, h, w, C)
    kh = (re - rs).to(torch.float32)[:, None, None]
    kw = (ce - cs).to(torch.float32)[:, None]
    return (sums / kh / kw).permute(0, 3, 1, 2)


def _cells(start: torch.Tensor, length: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Adaptive pooling cells: (K, size) first and past-the-end input index of each output index."""
    a = torch.arange(size, device=start.device)
    length = length[:, None]
    first = (a * length).div(size, rounding_mode="floor")
    end = ((a + 1) * length + size - 1).div(size, rounding_mode="floor")
    return start[:, None] + first, start[:, None] + end


def area_crops(table: torch.Tensor, index: torch.Tensor, rects: torch.Tensor, size: int) -> torch.Tensor:
    """Crops ``rects`` (K, 4) of images ``index`` (K,), area-resampled to (K, C, size, size) float32.

    ``rects`` are integer (y0, y1, x0, x1), end exclusive, inside the image and non-empty;
    ``table`` is the batch's summed-area table (:func:`column_sums`). Each output pixel is the mean
    of its input cell, the cells of ``interpolate(crop, (size, size), mode="area")``.
    """
    y0, y1, x0, x1 = rects.long().unbind(1)
    rs, re = _cells(y0, y1 - y0, size)
    cs, ce = _cells(x0, x1 - x0, size)
    n, rows, cols, channels = table.shape
    flat = table.view(n * rows * cols, channels)  # one index per corner: twice as fast as three
    first = index.long()[:, None, None] * (rows * cols)
    top, bottom = first + rs[:, :, None] * cols, first + re[:, :, None] * cols
    left, right = cs[:, None, :], ce[:, None, :]

    def corner(at: torch.Tensor) -> torch.Tensor:
        return flat.index_select(0, at.reshape(-1))

    sums = corner(bottom + right) - corner(top + right) - corner(bottom + left) + corner(top + left)
    sums = sums.view(len(rects), size, size, channels)
    kh = (re - rs).to(torch.float32)[:, :, None, None]
    kw = (ce - cs).to(torch.float32)[:, None, :, None]
    return (sums.to(torch.float32) / kh / kw).permute(0, 3, 1, 2)


def _rerec(boxes: torch.Tensor) -> torch.Tensor:
    """Boxes made square around their centre (facenet's ``rerec``), score columns kept."""
    h = boxes[:, 3] - boxes[:, 1]
    w = boxes[:, 2] - boxes[:, 0]
    side = torch.max(w, h)
    x1 = boxes[:, 0] + w * 0.5 - side * 0.5
    y1 = boxes[:, 1] + h * 0.5 - side * 0.5
    return torch.cat([torch.stack([x1, y1, x1 + side, y1 + side], 1), boxes[:, 4:]], 1)


def _bbreg(boxes: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    """Box regression of R-Net and O-Net (facenet's ``bbreg``): offsets in units of side + 1."""
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    scale = torch.stack([w, h, w, h], 1)
    return torch.cat([boxes[:, :4] + reg[:, :4] * scale, boxes[:, 4:]], 1)


def _crop_rects(boxes: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """facenet's ``pad``: truncated boxes clipped to the image as (y0, y1, x0, x1), and the non-empty."""
    t = boxes[:, :4].trunc().to(torch.int64)
    x = t[:, 0].clamp(min=1) - 1
    y = t[:, 1].clamp(min=1) - 1
    ex = t[:, 2].clamp(max=width)
    ey = t[:, 3].clamp(max=height)
    return torch.stack([y, ey, x, ex], 1), (ey > y) & (ex > x)


def _proposals(
    columns: torch.Tensor, min_size: float, mtcnn: Mtcnn, pnet_pixels: int, full_frame: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stage 1: P-Net over the pyramid of the batch whose :func:`column_sums` are ``columns``;
    squared, regressed boxes (K, 5) and their image index.

    Each scale runs on as many images at once as keep P-Net's input under ``pnet_pixels``.
    """
    dtype = next(mtcnn.pnet.parameters()).dtype
    height, width = columns.shape[1] - 1, columns.shape[2] - 1
    boxes, index = [], []
    for scale in pyramid_scales(height, width, min_size, mtcnn.factor, full_frame):
        size = (int(height * scale + 1), int(width * scale + 1))
        step = max(1, pnet_pixels // (size[0] * size[1]))
        for start in range(0, len(columns), step):
            part = area_resize(columns[start : start + step], size).to(dtype)
            reg, probs = pnet_forward(mtcnn.pnet, part.sub_(127.5).mul_(0.0078125))
            found, inds = _window_boxes(reg, probs[:, 1], scale, mtcnn.thresholds[0])
            pick = batched_nms(found[:, :4], found[:, 4], inds, 0.5)  # per image: chunking is exact
            boxes.append(found[pick])
            index.append(inds[pick] + start)
            del part, reg, probs
    if not boxes:
        return torch.zeros((0, 5), device=columns.device), torch.zeros(
            0, dtype=torch.long, device=columns.device
        )
    found, inds = torch.cat(boxes), torch.cat(index)
    pick = batched_nms(found[:, :4], found[:, 4], inds, 0.7)
    found, inds = found[pick], inds[pick]
    regw = (found[:, 2] - found[:, 0]).unsqueeze(1)
    regh = (found[:, 3] - found[:, 1]).unsqueeze(1)
    scale4 = torch.cat([regw, regh, regw, regh], 1)
    moved = found[:, :4] + found[:, 5:9] * scale4
    return _rerec(torch.cat([moved, found[:, 4:5]], 1)), inds


IN_PLACE_ELEMENTS = 1 << 20
"""Activations of at least this many elements (4 MB) get PReLU in place; smaller ones use the
module, whose one kernel call is faster than a call per band of rows (0.39 vs 0.66 ms on a
(4, 16, 120, 120) activation) and whose extra copy is small."""

IN_PLACE_BAND = 1 << 16
"""Elements per band of rows when PReLU runs in place: the only temporary it makes (256 KB)."""


def _prelu(x: torch.Tensor, prelu: torch.nn.PReLU) -> torch.Tensor:
    """``prelu(x)``; on a large ``x`` in place, a band of rows at a time (the module's own kernel on
    each band, so the same numbers) so that no second activation-sized tensor is made.

    Bands, not channels: a channel of a channels-last activation is a strided view, and rectifying
    P-Net's 10 to 32 channels one by one took 4-14x the module's time (a quarter of the face pass on
    1080p clips); bands cost about what the module does.
    """
    if x.numel() < IN_PLACE_ELEMENTS:
        return prelu(x)
    weight = prelu.weight.detach()
    n, channels, height, width = x.shape
    rows = max(1, IN_PLACE_BAND // (n * channels * width))
    for start in range(0, height, rows):
        band = x[:, :, start : start + rows]
        band.copy_(torch.nn.functional.prelu(band, weight))
    return x


POOL_BAND = 1 << 22
"""Elements of P-Net's first activation pooled and rectified at a time (:func:`pooled_prelu`): the
whole activation at the default detection size, bands of rows on full-resolution frames, so its
temporaries never pass 16 MB."""


def max_pool_2x2(x: torch.Tensor, pick: Callable[..., torch.Tensor] = torch.maximum) -> torch.Tensor:
    """``MaxPool2d(2, 2, ceil_mode=True)`` of (N, C, H, W) ``x`` (P-Net's ``pool1``): the same numbers
    (a maximum picks an element, whatever the order) in the same memory layout; with ``pick`` =
    ``torch.minimum``, the same windows' minima.

    The element-wise maximum of every other row, then of every other column, written into the
    output's place; an odd last row or column is copied (its window holds only it). On the
    channels-last activations P-Net makes this is 3-4x faster than torch's pooling kernel, which
    took an eighth of the face pass.
    """
    height, width = x.shape[2:]
    rows = _empty_like(x, (height + 1) // 2, width)
    pick(x[:, :, 0 : height - 1 : 2], x[:, :, 1::2], out=rows[:, :, : height // 2])
    if height % 2:
        rows[:, :, -1] = x[:, :, -1]
    out = _empty_like(x, rows.shape[2], (width + 1) // 2)
    pick(rows[:, :, :, 0 : width - 1 : 2], rows[:, :, :, 1::2], out=out[:, :, :, : width // 2])
    if width % 2:
        out[:, :, :, -1] = rows[:, :, :, -1]
    return out


def pooled_prelu(x: torch.Tensor, prelu: torch.nn.PReLU) -> torch.Tensor:
    """``max_pool_2x2(prelu(x))`` rectifying half as many values: the same numbers.

    A PReLU channel never falls when its slope is 0 or more, and falls only left of 0 when the slope
    is negative, so over any window its largest output is that of the window's maximum or of its
    minimum (rounding a product keeps its order, so this holds in floats too). Pooling first and
    rectifying the two pooled copies costs 35-40% less than rectifying P-Net's largest activation; a
    large one goes by bands of an even number of rows (:data:`POOL_BAND`), whose windows are the
    whole's.
    """
    n, channels, height, width = x.shape
    rows = max(2, POOL_BAND // (n * channels * width) // 2 * 2)
    if rows >= height:
        return _pooled_band(x, prelu)
    out = _empty_like(x, (height + 1) // 2, (width + 1) // 2)
    for start in range(0, height, rows):
        band = _pooled_band(x[:, :, start : start + rows], prelu)
        out[:, :, start // 2 : start // 2 + band.shape[2]] = band
    return out


def _empty_like(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """An empty (N, C, ``height``, ``width``) tensor in ``x``'s memory layout (channels-last also when
    ``x`` is a band of rows of a channels-last tensor, which is not itself contiguous)."""
    n, channels = x.shape[:2]
    last = x.stride(1) == 1 and channels > 1
    memory = torch.channels_last if last else torch.contiguous_format
    return torch.empty((n, channels, height, width), dtype=x.dtype, device=x.device, memory_format=memory)


def _pooled_band(x: torch.Tensor, prelu: torch.nn.PReLU) -> torch.Tensor:
    high = prelu(max_pool_2x2(x))
    return torch.maximum(high, prelu(max_pool_2x2(x, torch.minimum)), out=high)


def pnet_forward(pnet: PNet, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """facenet's ``PNet.forward`` (regression, probabilities): the same numbers, with the first layer
    pooled before it is rectified (:func:`pooled_prelu`) and the later large activations rectified in
    place, so no activation is held twice at full size."""
    x = _prelu(pnet.conv2(pooled_prelu(pnet.conv1(x), pnet.prelu1)), pnet.prelu2)
    x = _prelu(pnet.conv3(x), pnet.prelu3)
    return pnet.conv4_2(x), torch.softmax(pnet.conv4_1(x), dim=1)


def _window_boxes(
    reg: torch.Tensor, probs: torch.Tensor, scale: float, threshold: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """P-Net windows at or above ``threshold`` (facenet's ``generateBoundingBox``): (K, 9) boxes."""
    mask = probs >= threshold
    where = mask.nonzero()
    score = probs[mask]
    offsets = reg.permute(1, 0, 2, 3)[:, mask].permute(1, 0)
    corner = where[:, 1:].to(offsets.dtype).flip(1)
    q1 = ((2 * corner + 1) / scale).floor()
    q2 = ((2 * corner + 12) / scale).floor()
    return torch.cat([q1, q2, score.unsqueeze(1), offsets], 1), where[:, 0]


def _refine(
    net: torch.nn.Module, size: int, table: torch.Tensor, boxes: torch.Tensor, index: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """R-Net or O-Net on the ``size`` px crops of ``boxes``; drops boxes with an empty crop.

    Returns the kept boxes, their image index and the network's outputs (concatenated).
    """
    height, width = table.shape[1] - 1, table.shape[2] - 1
    rects, valid = _crop_rects(boxes, height, width)
    boxes, index, rects = boxes[valid], index[valid], rects[valid]
    dtype = next(net.parameters()).dtype
    outs: list[tuple[torch.Tensor, ...]] = []
    for start in range(0, max(len(boxes), 1), NET_BATCH):  # an empty batch keeps the output shapes
        part = slice(start, start + NET_BATCH)
        crops = area_crops(table, index[part], rects[part], size)
        outs.append(tuple(net(((crops - 127.5) * 0.0078125).to(dtype))))
    return (boxes, index, *(torch.cat(v) for v in zip(*outs, strict=True)))


def _stage_two(
    mtcnn: Mtcnn, table: torch.Tensor, boxes: torch.Tensor, index: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stage 2: R-Net scores, NMS 0.7 per image, regression, squaring."""
    boxes, index, reg, prob = _refine(mtcnn.rnet, 24, table, boxes, index)
    score = prob[:, 1]
    keep = score > mtcnn.thresholds[1]
    boxes = torch.cat([boxes[keep, :4], score[keep].unsqueeze(1)], 1)
    index, reg = index[keep], reg[keep]
    pick = batched_nms(boxes[:, :4], boxes[:, 4], index, 0.7)
    return _rerec(_bbreg(boxes[pick], reg[pick])), index[pick]


def _stage_three(
    mtcnn: Mtcnn, table: torch.Tensor, boxes: torch.Tensor, index: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stage 3: O-Net scores, landmarks and regression; (boxes (K, 5), landmarks (K, 5, 2), index)."""
    boxes, index, reg, marks, prob = _refine(mtcnn.onet, 48, table, boxes, index)
    score = prob[:, 1]
    keep = score > mtcnn.thresholds[2]
    boxes = torch.cat([boxes[keep, :4], score[keep].unsqueeze(1)], 1)
    index, reg, marks = index[keep], reg[keep], marks[keep]
    w = (boxes[:, 2] - boxes[:, 0] + 1).unsqueeze(1)
    h = (boxes[:, 3] - boxes[:, 1] + 1).unsqueeze(1)
    xs = w * marks[:, :5] + boxes[:, 0:1] - 1
    ys = h * marks[:, 5:10] + boxes[:, 1:2] - 1
    return _bbreg(boxes, reg), torch.stack([xs, ys], 2), index


def nms_min(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy NMS, overlap = intersection / smaller area (+1 px sides): facenet's ``nms_numpy``."""
    x1, y1, x2, y2 = (boxes[:, i] for i in range(4))
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores)
    pick = []
    while order.size > 0:
        i = order[-1]
        pick.append(i)
        rest = order[:-1]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        overlap = w * h / np.minimum(area[i], area[rest])
        order = rest[overlap <= threshold]
    return np.asarray(pick, dtype=np.int64)


def _split(n_images: int, boxes: np.ndarray, marks: np.ndarray, index: np.ndarray) -> list[Faces]:
    """Per image: final 'Min' NMS (0.7), then float32 boxes, probabilities, landmarks."""
    out = []
    for i in range(n_images):
        mine = np.flatnonzero(index == i)
        pick = mine[nms_min(boxes[mine, :4], boxes[mine, 4], 0.7)] if mine.size else mine
        out.append(
            (
                boxes[pick, :4].astype(np.float32).reshape(-1, 4),
                boxes[pick, 4].astype(np.float32).reshape(-1),
                marks[pick].astype(np.float32).reshape(-1, 5, 2),
            )
        )
    return out


@torch.no_grad()
def detect_batch(
    mtcnn: Mtcnn,
    images: np.ndarray | torch.Tensor,
    min_size: float,
    pnet_pixels: int = PNET_PIXELS,
    full_frame: bool = True,
) -> list[Faces]:
    """Faces in an (N, H, W, 3) uint8 RGB batch, per image, like ``mtcnn.detect(images, landmarks=True)``.

    Thresholds and pyramid factor come from ``mtcnn``; ``min_size`` replaces its
    ``min_face_size`` (no state on the shared network is changed). Runs on ``mtcnn.device``.
    P-Net sees at most ``pnet_pixels`` pixels per call (at least one image). ``full_frame``
    adds the pyramid level for faces as large as the image (:func:`pyramid_scales`); without it
    the faces are facenet's.
    """
    if isinstance(images, np.ndarray) and not images.flags.writeable:
        images = images.copy()  # torch warns on read-only arrays
    batch = torch.as_tensor(images).to(mtcnn.device)
    if batch.ndim != 4 or batch.shape[3] != 3 or batch.dtype != torch.uint8:
        raise ValueError(f"expected an (N, H, W, 3) uint8 batch, got {batch.dtype} {tuple(batch.shape)}")
    n = batch.shape[0]
    columns = column_sums(batch)
    boxes, index = _proposals(columns, min_size, mtcnn, pnet_pixels, full_frame)
    marks = torch.zeros((0, 5, 2))
    if len(boxes):
        table = columns.cumsum_(2)  # the summed-area table, in place
        boxes, index = _stage_two(mtcnn, table, boxes, index)
        if len(boxes):
            boxes, marks, index = _stage_three(mtcnn, table, boxes, index)
        del table
    del columns
    return _split(n, boxes.cpu().numpy(), marks.cpu().numpy(), index.cpu().numpy())
