"""Fit per-model calibration and the fusion stack: ``python -m scripts.calibrate --face-model NAME``.

1. Score the labelled calibration sets (:mod:`scripts.calibration_data`) with the models.
2. Split each set in half by source photo (seeded): a *fit* half and a *held-out* half.
3. Per model, fit ``--method`` (temperature / platt / isotonic, the last only with >= 1000 items)
   on the fit half; measure ECE (15 bins) before and after on the held-out half; write the table
   into the model's entry in ``weights/manifest.toml``.
4. Fit the fusion stack and choose the verdict thresholds on the fit half's calibrated logits;
   measure the fused ECE and the thresholds' error rates on the held-out half; write
   ``weights/fusion.toml``.
5. Save the reliability diagram and a JSON summary under ``--out`` (default ``runs/calibration``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from detector.scoring.calibration import (
    ECE_BINS,
    Calibrator,
    ece_noise_floor,
    expected_calibration_error,
    fit_calibrator,
    sigmoid,
)
from detector.scoring.fusion.fit import choose_thresholds, dump_parameters, fit_stack, stack_logits
from detector.scoring.fusion.params import FusionParameters, Pattern, Priors, SubModel, Thresholds

if TYPE_CHECKING:
    from scripts.calibration_data import ScoredSet

SHARED = Path("..") / "shared" / "data"
# real photos the synthetic-image model never trained on; face collections held out of face training
DEFAULT_REAL_SUBSETS = ("bsds500/test", "kodak24", "sun_hays80", "mcmaster18", "set14", "scikit_image")
DEFAULT_VAL_GROUPS = ("faces/kair_real_faces", "faces/face_recognition", "faces/dlib/examples/faces")


def toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_manifest_calibration(path: Path, name: str, table: dict[str, Any]) -> None:
    """Replace (or add) ``[models."NAME".calibration]`` in the manifest text; validated, atomic."""
    from detector.models._manifest import Manifest

    text = path.read_text(encoding="utf-8")
    header = f'[models."{name}".calibration]'
    lines = text.splitlines()
    # drop an existing calibration table of this model
    if header in lines:
        start = lines.index(header)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
        while end > start and lines[end - 1].strip() == "":
            end -= 1
        del lines[start:end]
        if start < len(lines) and start > 0 and lines[start - 1].strip() == "" and lines[start].strip() == "":
            del lines[start]
    own = re.compile(rf'^\[models\."{re.escape(name)}"(\..*)?\]$')
    starts = [i for i, line in enumerate(lines) if own.match(line)]
    if not starts:
        raise SystemExit(f'{path} has no entry [models."{name}"]')
    end = next((i for i in range(starts[-1] + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    while end > starts[-1] and lines[end - 1].strip() == "":
        end -= 1
    block = ["", header] + [f"{k} = {toml_value(v)}" for k, v in table.items()]
    new_text = "\n".join(lines[:end] + block + lines[end:]) + "\n"
    Manifest.model_validate(tomllib.loads(new_text))  # never write an invalid manifest
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(new_text, encoding="utf-8")
    os.replace(tmp, path)


def reliability_diagram(
    panels: list[tuple[str, list[tuple[str, np.ndarray, np.ndarray]]]], path: Path
) -> None:
    """One panel per model: observed frequency of label 1 against mean predicted P, per bin."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from detector.scoring.calibration import reliability_bins

    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2), squeeze=False)
    for ax, (title, curves) in zip(axes[0], panels, strict=True):
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
        for label, probs, labels in curves:
            bins = reliability_bins(probs, labels, ECE_BINS)
            used = bins.count > 0
            ece = expected_calibration_error(probs, labels)
            ax.plot(bins.mean_prob[used], bins.frequency[used], marker="o", label=f"{label} (ECE {ece:.3f})")
        ax.set(
            title=title, xlabel="predicted P(fake)", ylabel="observed fraction fake", xlim=(0, 1), ylim=(0, 1)
        )
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


@dataclass
class ScoredData:
    """Raw logits of every calibration item (NaN: signal missing), labels and split information."""

    face_raw: np.ndarray
    synth_raw: np.ndarray
    labels: np.ndarray
    face_rows: np.ndarray  # items of the face set (calibrate the face model); the rest: synthetic set
    groups: np.ndarray  # source photo: never split across folds
    strata: np.ndarray  # collection: both folds get the same mix

    def save(self, path: Path) -> None:
        np.savez(path, **{k: getattr(self, k) for k in self.__dataclass_fields__})

    @classmethod
    def load(cls, path: Path) -> ScoredData:
        with np.load(path) as data:
            return cls(**{k: data[k] for k in cls.__dataclass_fields__})


@dataclass
class Fitted:
    """Everything fitted on one set of rows."""

    face: Calibrator
    synth: Calibrator | None
    submodels: dict[Pattern, SubModel]
    thresholds: Thresholds


def _calibrated(raw: np.ndarray, cal: Calibrator | None) -> np.ndarray:
    if cal is None:
        return np.full(raw.shape, np.nan)
    return np.where(np.isnan(raw), np.nan, cal.logits(np.nan_to_num(raw)))


def fit_all(d: ScoredData, rows: np.ndarray, method: str) -> Fitted:
    """Per-model calibrators, fusion stack and thresholds fitted on ``rows`` only."""
    y = d.labels
    face_rows = rows & d.face_rows
    face = fit_calibrator(d.face_raw[face_rows], y[face_rows], method)  # type: ignore[arg-type]
    s_rows = rows & ~d.face_rows
    synth = fit_calibrator(d.synth_raw[s_rows], y[s_rows], method) if s_rows.any() else None  # type: ignore[arg-type]
    f_cal, s_cal = _calibrated(d.face_raw, face), _calibrated(d.synth_raw, synth)
    subs = fit_stack(f_cal[rows], s_cal[rows], y[rows])
    fused = stack_logits(subs, f_cal, s_cal)
    ok = rows & ~np.isnan(fused)
    return Fitted(face, synth, subs, choose_thresholds(sigmoid(fused[ok]), y[ok]))


def predict(d: ScoredData, fitted: Fitted) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Calibrated P(fake) per row: face model, synthetic model, fused (NaN where not available)."""
    f_cal, s_cal = _calibrated(d.face_raw, fitted.face), _calibrated(d.synth_raw, fitted.synth)
    fused = stack_logits(fitted.submodels, f_cal, s_cal)
    return (
        sigmoid(np.nan_to_num(f_cal)),
        sigmoid(np.nan_to_num(s_cal)),
        np.where(np.isnan(fused), np.nan, sigmoid(np.nan_to_num(fused))),
    )


def _ece_pair(raw_p: np.ndarray, cal_p: np.ndarray, y: np.ndarray) -> dict[str, float]:
    return {
        "ece_before": round(expected_calibration_error(raw_p, y), 5),
        "ece_after": round(expected_calibration_error(cal_p, y), 5),
        "ece_noise_floor": round(ece_noise_floor(cal_p), 5),
        "n": float(y.size),
    }


def cross_fit(d: ScoredData, fit: np.ndarray, method: str) -> tuple[dict[str, Any], list[Any]]:
    """Two-fold cross-fitting: fit on one half, predict the other, both ways; out-of-fold metrics."""
    y = d.labels
    oof = np.full((3, y.size), np.nan)
    hits: dict[str, list[float]] = {}
    for train in (fit, ~fit):
        fitted = fit_all(d, train, method)
        preds = np.stack(predict(d, fitted))
        test = ~train
        oof[:, test] = preds[:, test]
        for t in fitted.thresholds.report():
            ok = test & ~np.isnan(preds[2])
            cls = ok & (y == (0 if t.rate == "false_positive" else 1))
            inside = preds[2] >= t.manipulated if t.bound == "at_least" else preds[2] <= t.manipulated
            hits.setdefault(f"{t.rate}_{t.verdict}", []).extend((inside & cls)[cls].astype(float))
    face_p, synth_p, fused_p = oof
    fr, sr, ok = d.face_rows, ~d.face_rows, ~np.isnan(fused_p)
    raw_sum = sigmoid(np.nan_to_num(d.face_raw) + np.nan_to_num(d.synth_raw))
    measured: dict[str, Any] = {"face": _ece_pair(sigmoid(d.face_raw[fr]), face_p[fr], y[fr])}
    panels = [("face", sigmoid(d.face_raw[fr]), face_p[fr], y[fr])]
    if sr.any() and not np.all(np.isnan(d.synth_raw[sr])):
        measured["synthetic"] = _ece_pair(sigmoid(d.synth_raw[sr]), synth_p[sr], y[sr])
        panels.append(("synthetic", sigmoid(d.synth_raw[sr]), synth_p[sr], y[sr]))
    measured["fused"] = _ece_pair(raw_sum[ok], fused_p[ok], y[ok])
    measured["fused"] |= {f"out_of_fold_{k}": round(float(np.mean(v)), 5) for k, v in hits.items() if v}
    panels.append(("fused", raw_sum[ok], fused_p[ok], y[ok]))
    return measured, panels


def score_sets(args: argparse.Namespace) -> tuple[ScoredData, list[ScoredSet]]:
    """Score the calibration sets with the models named in ``args``."""
    from detector.models import create_model
    from detector.models._manifest import load_manifest
    from detector.settings import get_settings
    from scripts.calibration_data import face_set, synthetic_set
    from scripts.train_data import face_cache

    wdir = args.weights_dir or get_settings().models.weights_dir
    manifest = load_manifest(args.manifest)
    face_model = create_model(args.face_model, weights_dir=wdir, device=args.device, manifest=manifest)
    synth_model = None
    if args.synthetic_model:
        synth_model = create_model(
            args.synthetic_model, weights_dir=wdir, device=args.device, manifest=manifest
        )
    cache = face_cache(args.faces_root, "faces", args.cache_dir, 2.0, 256)
    sets = [face_set(cache, args.val_groups, face_model, synth_model, args.variants, args.seed)]
    if synth_model is not None:
        root = args.synthetic_root
        sets.append(
            synthetic_set(
                root / "real",
                root / "generated",
                synth_model,
                face_model,
                args.real_subsets,
                detect_faces=args.synthetic_faces,
            )
        )
    face_rows = np.zeros(sum(len(s.labels) for s in sets), bool)
    face_rows[: len(sets[0].labels)] = True
    data = ScoredData(
        face_raw=np.concatenate([s.arrays()[0] for s in sets]),
        synth_raw=np.concatenate([s.arrays()[1] for s in sets]),
        labels=np.concatenate([s.arrays()[2] for s in sets]),
        face_rows=face_rows,
        groups=np.asarray([g for s in sets for g in s.groups]),
        strata=np.asarray([st for s in sets for st in s.strata]),
    )
    return data, sets


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Score (or reload scores), cross-fit to measure, fit on everything, write; returns the summary."""
    from scripts.calibration_data import split_groups

    args.out.mkdir(parents=True, exist_ok=True)
    if args.scores is not None:
        data = ScoredData.load(args.scores)
    else:
        data, _ = score_sets(args)
        data.save(args.out / "scores.npz")
    fold, _ = split_groups(list(data.groups), list(data.strata), data.labels, args.seed)
    measured, panels = cross_fit(data, fold, args.method)
    final = fit_all(data, np.ones(data.labels.size, bool), args.method)
    n_face_sources = len(set(data.groups[data.face_rows]))
    how = f"2-fold cross-fitting over source-disjoint halves (seed {args.seed})"
    face_cal = replace(
        final.face,
        fitted_on=f"all {int(data.face_rows.sum())} crops of {n_face_sources} faces the model never "
        f"trained on ({', '.join(args.val_groups)}), real vs self-blended; ECE by {how}",
        ece_before=measured["face"]["ece_before"],
        ece_after=measured["face"]["ece_after"],
    )
    synth_cal = None
    if final.synth is not None and "synthetic" in measured:
        synth_cal = replace(
            final.synth,
            fitted_on=f"all {int((~data.face_rows).sum())} images: real photos the model never trained on "
            f"({', '.join(args.real_subsets)}) vs synthetic/generated; ECE by {how}",
            ece_before=measured["synthetic"]["ece_before"],
            ece_after=measured["synthetic"]["ece_after"],
        )
    params = FusionParameters(
        schema_version=1,
        fitted_on=f"all {data.labels.size} calibration items (faces and synthetic sets); measured by {how}",
        face_model=args.face_model,
        synthetic_model=args.synthetic_model if synth_cal is not None else None,
        submodels=final.submodels,
        priors=Priors(),
        thresholds=final.thresholds,
        measured={k: float(v) for k, v in measured["fused"].items()},
    )
    summary: dict[str, Any] = {
        "measured_out_of_fold": measured,
        "fusion": json.loads(params.model_dump_json()),
    }
    summary["face_calibration"] = face_cal.to_table()
    if synth_cal is not None:
        summary["synthetic_calibration"] = synth_cal.to_table()
    titles = {"face": args.face_model, "synthetic": args.synthetic_model, "fused": "fused"}
    reliability_diagram(
        [(f"{k}: {titles[k]} (out of fold)", [("raw", r, y), ("calibrated", c, y)]) for k, r, c, y in panels],
        args.out / "reliability.png",
    )
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    if not args.dry_run:
        write_manifest_calibration(args.manifest, args.face_model, face_cal.to_table())
        if synth_cal is not None:
            write_manifest_calibration(args.manifest, args.synthetic_model, synth_cal.to_table())
        header = (
            "Fitted by scripts/calibrate.py (trueframe calibrate); see detector/fusion.py.\n"
            "priors are stated, not fitted (no labelled provenance data); measured = out-of-fold."
        )
        args.fusion.write_text(dump_parameters(params, header), encoding="utf-8")
    return summary


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options shared by ``python -m scripts.calibrate`` and ``trueframe calibrate``."""
    p.add_argument("--face-model", required=True, help="face model name (arch.tag)")
    p.add_argument("--synthetic-model", default=None, help="synthetic-image model name (arch.tag)")
    p.add_argument("--method", default="platt", choices=["temperature", "platt", "isotonic"])
    p.add_argument("--faces-root", type=Path, default=SHARED / "faces")
    p.add_argument("--cache-dir", type=Path, default=Path("runs/cache"), help="MTCNN face cache folder")
    p.add_argument("--val-groups", nargs="+", default=list(DEFAULT_VAL_GROUPS))
    p.add_argument("--variants", type=int, default=3, help="real/self-blended pairs per face")
    p.add_argument("--synthetic-root", type=Path, default=SHARED / "synthetic")
    p.add_argument("--real-subsets", nargs="+", default=list(DEFAULT_REAL_SUBSETS))
    p.add_argument(
        "--synthetic-faces",
        action="store_true",
        help="also run MTCNN + the face model on the synthetic set, so generated images with faces "
        "enter the joint face+synthetic sub-model (slow on CPU)",
    )
    p.add_argument("--weights-dir", type=Path, default=None)
    p.add_argument("--manifest", type=Path, default=Path("weights/manifest.toml"))
    p.add_argument("--fusion", type=Path, default=Path("weights/fusion.toml"))
    p.add_argument("--out", type=Path, default=Path("runs/calibration"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dry-run", action="store_true", help="measure only; write nothing into weights/")
    p.add_argument("--scores", type=Path, default=None, help="reuse OUT/scores.npz of an earlier run")


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: prints the summary as JSON."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_arguments(parser)
    summary = run(parser.parse_args(argv))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
