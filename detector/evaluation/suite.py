"""``trueframe evaluate --suite dev``: the shipped defaults end to end on the development sets.

For every dev item and variant (original, format- and size-matched) the stages run once
(:mod:`.collect`, cached); the report a user would get is then built with the shipped calibration
and fusion, and ``score.manipulated`` is what is measured. Per set (face videos, images) and
variant, on the *report* half of the documented split (:mod:`.dev_set`): AUC, AP, EER and ECE with
95% bootstrap intervals (ECE's shifted by the resampling's bias); the false-positive rate of the
accusing bands, the share of real items given each verdict (the false-positive rate per band) and
of fake items caught, per generator or source, each with its exact binomial interval; the frame level
for videos (clustered by video), and the raw models and the MesoNet baseline on the same items.
Images that show a face get their own rows (:func:`face_stills`), also against held-out real face
photos when they are staged. The final score is also measured without the items whose source
training saw (:func:`unseen`): against reals of unseen sources only, and with both classes from
unseen sources.
Outputs: ``metrics.json``, ``report.md`` (the tables the README carries), ROC and reliability PNGs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from detector.evaluation.collect import Collected
from detector.evaluation.dev_set import DevItem
from detector.evaluation.metrics import ap, auc, bootstrap, ece, ece_floor, eer, proportion
from detector.scoring.logodds import sigmoid

BANDS = (
    "manipulated",
    "ai_generated",
    "likely_manipulated",
    "uncertain",
    "likely_authentic",
    "authentic",
    "out_of_scope",
)
ACCUSING = ("manipulated", "ai_generated")


@dataclass
class Scored:
    """One item under one variant: final P(manipulated), verdict, per-frame face P, raw model scores."""

    item: DevItem
    variant: str
    p: float | None = None
    verdict: str = "error"
    frame_p: list[float] = field(default_factory=list)
    raw_face: float | None = None
    raw_synthetic: float | None = None
    baseline: float | None = None
    error: str | None = None
    p_range: tuple[float, float] | None = None
    crosses: bool = False  # the range reaches past one of the item's band boundaries


def score(item: DevItem, variant: str, found: Collected, build: Callable[[Any], Any]) -> Scored:
    """The user's report for one item (``build`` = the assembler's), reduced to what is measured."""
    if found.outputs is None:
        return Scored(item, variant, error=found.error)
    out = found.outputs
    report = build(out)
    crops = list(out.crop_logits.values())
    frames = [sigmoid(f.max_face_logit) for f in report.frames if f.max_face_logit is not None]
    span = report.score.manipulated_range
    crosses = span is not None and any(span[0] < t.manipulated < span[1] for t in report.score.thresholds)
    return Scored(
        item,
        variant,
        report.score.manipulated,
        report.score.verdict,
        frames,
        float(np.mean(crops)) if crops else None,
        float(np.mean(list(out.synthetic_logits.values()))) if out.synthetic_logits else None,
        float(np.mean(found.baseline)) if found.baseline else None,
        p_range=span,
        crosses=crosses,
    )


def _ci(
    metric: Callable[[np.ndarray, np.ndarray], float], y: np.ndarray, s: np.ndarray, clusters: Any = None
) -> list[float]:
    if len(np.unique(y)) < 2:
        return [math.nan, math.nan, math.nan]
    return [round(v, 4) for v in bootstrap(metric, y, s, clusters)]


def ranking(rows: Sequence[Scored], value: Callable[[Scored], float | None]) -> dict[str, Any]:
    """AUC / AP / EER with intervals of ``value`` over the rows that have one."""
    kept = [(r.item.label, v) for r in rows if (v := value(r)) is not None]
    if not kept:
        return {"n": 0}
    y, s = np.array([k[0] for k in kept]), np.array([k[1] for k in kept], np.float64)
    return {
        "n": len(kept),
        "n_fake": int(y.sum()),
        "auc": _ci(auc, y, s),
        "ap": _ci(ap, y, s),
        "eer": _ci(eer, y, s),
    }


def final_metrics(rows: Sequence[Scored]) -> dict[str, Any]:
    """The end-to-end table row: ranking of P(manipulated) (out of scope counts as 0.5), ECE, bands."""
    ok = [r for r in rows if r.error is None]
    result = ranking(ok, lambda r: 0.5 if r.p is None else r.p)
    probs = [(r.item.label, r.p) for r in ok if r.p is not None]
    if probs:
        y, p = np.array([a for a, _ in probs]), np.array([b for _, b in probs], np.float64)
        result["ece"] = [round(v, 4) for v in bootstrap(ece, y, p, centred=True)]
        result["ece_floor"] = [round(v, 4) for v in ece_floor(p)]
    reals, fakes = [r for r in ok if r.item.label == 0], [r for r in ok if r.item.label == 1]
    # each band's share of the class, with its exact interval: the false-positive rate of every band
    result["real_bands"] = {b: rate_ci([r.verdict == b for r in reals]) for b in BANDS}
    result["fake_bands"] = {b: rate_ci([r.verdict == b for r in fakes]) for b in BANDS}
    result["fpr_manipulated"] = rate_ci([r.verdict in ACCUSING for r in reals])
    widths = [r.p_range[1] - r.p_range[0] for r in ok if r.p_range is not None]
    if widths:  # how much the small calibration set leaves open (detector/scoring/fusion/spread.py)
        result["range_width"] = [round(float(np.percentile(widths, q)), 4) for q in (50, 90)]
        result["range_crosses"] = rate_ci([r.crosses for r in ok if r.p_range is not None])
    result["errors"] = sum(r.error is not None for r in rows)
    return result


def rate_ci(hits: Sequence[bool]) -> list[float]:
    """A proportion and its exact 95% interval (:func:`detector.evaluation.metrics.proportion`),
    rounded to 6 decimals so the tables' 0.1% and 0.001 formats do not round twice."""
    return [round(v, 6) for v in proportion(sum(bool(h) for h in hits), len(hits))]


def frame_level(rows: Sequence[Scored]) -> dict[str, Any]:
    """Frame-level AUC of the calibrated face P, resampling whole videos."""
    y, s, c = [], [], []
    for i, r in enumerate(rows):
        for p in r.frame_p:
            y.append(r.item.label)
            s.append(p)
            c.append(i)
    if not y:
        return {"n": 0}
    ya, sa = np.array(y), np.array(s)
    return {"n": len(y), "auc": _ci(auc, ya, sa, np.array(c))}


def per_kind(rows: Sequence[Scored]) -> dict[str, Any]:
    """AUC of each generator's fakes against all reals of the set; per generator the share of its
    fakes caught, per real source the share accused (both: ``manipulated``, ``ai_generated`` or
    ``likely_manipulated``), with counts and exact intervals."""
    ok = [r for r in rows if r.error is None]
    reals = [r for r in ok if r.item.label == 0]
    out: dict[str, Any] = {}
    for kind in sorted({r.item.kind for r in ok}):
        mine = [r for r in ok if r.item.kind == kind]
        # the same bands either way: a fake in one of them is caught, a real one is accused
        hits = [r.verdict in (*ACCUSING, "likely_manipulated") for r in mine]
        if mine[0].item.label == 1:
            row = ranking(reals + mine, lambda r: 0.5 if r.p is None else r.p)
            row["caught"] = rate_ci(hits)
        else:
            row = {"n": len(mine), "accused": rate_ci(hits)}
        row["hits"] = [sum(hits), len(mine)]
        seen = sum(r.item.seen for r in mine)
        row["seen"] = "yes" if seen == len(mine) else "no" if seen == 0 else f"{seen} of {len(mine)}"
        out[kind] = row
    return out


def unseen(rows: Sequence[Scored]) -> dict[str, Any]:
    """The final score without the items whose source folder training used (:attr:`DevItem.seen`):
    all fakes against the reals of unseen sources (``reals``: the false-positive side as users meet
    it), and both classes from unseen sources (``both``). A table is left out when it would lack a
    class (every generated dev image is of a seen source); all are when no item is seen."""
    if not any(r.item.seen for r in rows):
        return {}
    fresh = [r for r in rows if not r.item.seen]
    fresh_labels = {r.item.label for r in fresh}
    tables = {}
    if 0 in fresh_labels and any(r.item.label == 1 for r in rows):
        tables["reals"] = final_metrics([r for r in rows if r.item.label == 1 or not r.item.seen])
    if fresh_labels == {0, 1}:
        tables["both"] = final_metrics(fresh)
    return tables


def shows_face(row: Scored) -> bool:
    """Whether the pipeline found a face in the item (the face model scored at least one crop)."""
    return row.error is None and row.raw_face is not None


def face_stills(
    rows: Sequence[Scored], heldout: Sequence[Scored] = (), photos: Sequence[Scored] = ()
) -> dict[str, Any]:
    """The final score on still images that show a face: the dev images of both classes in which a
    face was found, and the generated ones of them against ``heldout`` real face photos (UTKFace
    faces held out of every training run; the dev set has few real photos of people) and against
    ``photos``, real face photos of sources no training drew on."""
    shown = [r for r in rows if shows_face(r)]
    generated = [r for r in shown if r.item.label == 1]
    result = {"dev": final_metrics(shown)}
    if heldout:
        result["heldout"] = final_metrics(generated + list(heldout))
    if photos:
        result["photos"] = final_metrics(generated + list(photos))
    return result


def summarize(
    rows: Sequence[Scored], heldout_faces: Sequence[Scored] = (), face_photos: Sequence[Scored] = ()
) -> dict[str, Any]:
    """Every table of one set and variant."""
    result: dict[str, Any] = {
        "final": final_metrics(rows),
        "unseen": unseen(rows),
        "kinds": per_kind(rows),
        "raw_face_model": ranking(rows, lambda r: r.raw_face),
        "raw_synthetic_model": ranking(rows, lambda r: r.raw_synthetic),
        "baseline_mesonet": ranking(rows, lambda r: r.baseline),
    }
    if rows and rows[0].item.set == "faces_video":
        result["frames"] = frame_level([r for r in rows if r.error is None])
    if rows and rows[0].item.set == "synthetic":
        result["face_stills"] = face_stills(rows, heldout_faces, face_photos)
    return result


def write_json(results: dict[str, Any], path: Path) -> None:
    """``metrics.json`` (NaN written as null)."""

    def clean(v: Any) -> Any:
        if isinstance(v, float) and math.isnan(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v

    path.write_text(json.dumps(clean(results), indent=2), encoding="utf-8")
