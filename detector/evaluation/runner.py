"""Running the dev suite: collect (cached), score with the shipped calibration, tabulate, plot."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detector.errors import ModelError
from detector.evaluation.checks import evenly_spaced
from detector.evaluation.collect import Collected, OutputCache
from detector.evaluation.dev_set import DEFAULT_VARIANTS, DevItem, applies, read_dev_set, variant_copy
from detector.evaluation.suite import Scored, score, summarize, write_json

if TYPE_CHECKING:
    from detector.models.base import Classifier
    from detector.pipeline import Pipeline
    from detector.report.assemble import StageOutputs
    from detector.settings import Settings


@dataclass(frozen=True)
class SuiteConfig:
    """Where the dev data is, where results and caches go, and what to run."""

    dev_dir: Path
    ffpp_dir: Path | None
    out: Path
    cache: Path
    variants: tuple[str, ...] = DEFAULT_VARIANTS
    halves: tuple[str, ...] = ("report",)
    baseline: str | None = "meso4.df"
    limit: int | None = None
    real_faces: Path | None = None
    """Staged UTKFace photos; those held out of training are the real side of the face-stills rows."""
    face_photos: Path | None = None
    """Real face photos no model trained on (``../shared/data/faces``; the training runs used them
    only to choose an epoch): another real side of the face-stills rows."""


HELDOUT_KIND = "UTKFace face held out of training"
HELDOUT_SET = "heldout_faces"
PHOTOS_KIND = "real face photo no model trained on"
PHOTOS_SET = "face_photos"
PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
EXTRA_SETS = (HELDOUT_SET, PHOTOS_SET)


def heldout_face_items(utk_dir: Path, limit: int | None = None) -> list[DevItem]:
    """The held-out UTKFace photos (the bias audit's faces) as report-half real items of their own
    set, so the variants re-encode them like dev images; never used for calibration."""
    from detector.evaluation.audit import audit_faces

    return [
        DevItem(f"{HELDOUT_SET}/{f.path.name}", f.path, 0, HELDOUT_KIND, HELDOUT_SET, f.path.stem)
        for f in audit_faces(utk_dir, limit)
    ]


def face_photo_items(folder: Path, limit: int | None = None) -> list[DevItem]:
    """Every photo under ``folder`` (press photos, dataset samples no model trained on) as a
    report-half real item of its own set; never used for calibration."""
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file())
    items = [
        DevItem(f"{PHOTOS_SET}/{p.relative_to(folder).as_posix()}", p, 0, PHOTOS_KIND, PHOTOS_SET, p.stem)
        for p in paths
    ]
    return evenly_spaced(items, limit)


def baseline_model(name: str | None, settings: Settings) -> Classifier | None:
    """The comparison model, or None when it is not configured or its weights are not imported
    (:func:`baseline_note` says which); an unknown name is a typed error, not a missing row."""
    if not name:
        return None
    from detector.models import create_model
    from detector.models._registry import get_entry

    get_entry(name)  # UnknownModel for a misspelt name
    try:
        return create_model(name, weights_dir=settings.models.weights_dir, device="cpu")
    except ModelError:
        return None


def baseline_note(name: str | None, settings: Settings) -> str | None:
    """Why the comparison row is empty (None when it is not), for the report and the console."""
    from detector.models._registry import get_entry
    from detector.models._weights import default_weights_dir, resolve_weights

    if not name:
        return "no comparison model (--baseline '')"
    try:
        resolve_weights(get_entry(name), settings.models.weights_dir or default_weights_dir())
    except ModelError as exc:
        return f"{name} not run: {exc.code}: {exc.message}"
    return None


def _each(
    items: Sequence[DevItem], variants: Iterable[str], settings: Settings, config: SuiteConfig
) -> Iterator[tuple[DevItem, str, Collected, Pipeline]]:
    """Every item under every variant with its (cached) stage outputs."""
    from tqdm import tqdm

    from detector.pipeline import Pipeline

    pipeline = Pipeline(settings)
    cache = OutputCache(config.cache, settings, None, baseline_model(config.baseline, settings))
    for variant in variants:
        for item in tqdm([i for i in items if applies(variant, i)], desc=f"dev {variant}", leave=False):
            path = variant_copy(item, variant, config.cache)
            yield item, variant, cache.get(pipeline, path), pipeline


def collect_all(
    items: Sequence[DevItem], variants: Iterable[str], settings: Settings, config: SuiteConfig
) -> list[Scored]:
    """Every item under every variant, scored with the calibration and fusion ``settings`` name."""
    return [
        score(i, v, found, p.assembler.build) for i, v, found, p in _each(items, variants, settings, config)
    ]


def outputs_of(
    items: Sequence[DevItem], variants: Iterable[str], settings: Settings, config: SuiteConfig
) -> tuple[list[StageOutputs], list[DevItem]]:
    """The stage outputs of every item and variant that could be analysed, each with its item."""
    outputs, analysed = [], []
    for item, _variant, collected, _pipeline in _each(items, variants, settings, config):
        if collected.outputs is not None:
            outputs.append(collected.outputs)
            analysed.append(item)
    return outputs, analysed


def run_dev_suite(settings: Settings, config: SuiteConfig) -> dict[str, Any]:
    """Tables per variant and set on the chosen halves; writes ``metrics.json``, ``report.md``, PNGs."""
    from detector.evaluation.plots import plot_reliability, plot_roc

    items = evenly_spaced(read_dev_set(config.dev_dir, config.ffpp_dir), config.limit)
    faces = heldout_face_items(config.real_faces, config.limit) if config.real_faces is not None else []
    photos = face_photo_items(config.face_photos, config.limit) if config.face_photos is not None else []
    scored = collect_all([*items, *faces, *photos], config.variants, settings, config)  # one cache
    rows = [r for r in scored if r.item.set not in EXTRA_SETS]
    config.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "halves": list(config.halves),
        "models": _models(settings),
        "baseline": config.baseline or None,
        "baseline_note": baseline_note(config.baseline, settings),
        "heldout_faces": len(faces),
        "face_photos": len(photos),
        "variants": {},
    }
    for variant in config.variants:
        extra = {n: [r for r in scored if (r.item.set, r.variant) == (n, variant)] for n in EXTRA_SETS}
        for set_name in sorted({i.set for i in items}):
            chosen = [
                r
                for r in rows
                if r.variant == variant and r.item.set == set_name and r.item.half in config.halves
            ]
            if not chosen:
                continue
            results["variants"].setdefault(variant, {})[set_name] = summarize(
                chosen, extra[HELDOUT_SET], extra[PHOTOS_SET]
            )
            curves = {"trueframe": _curve(chosen, lambda r: 0.5 if r.p is None else r.p)}
            if config.baseline:
                curves[f"baseline {config.baseline}"] = _curve(chosen, lambda r: r.baseline)
            plot_roc(curves, config.out / f"roc_{set_name}_{variant}.png", f"{set_name} ({variant})")
            kept = [(r.item.label, r.p) for r in chosen if r.p is not None]
            if kept:
                import numpy as np

                y, p = np.array([k[0] for k in kept]), np.array([k[1] for k in kept])
                plot_reliability(
                    y, p, config.out / f"reliability_{set_name}_{variant}.png", f"{set_name} ({variant})"
                )
    write_json(results, config.out / "metrics.json")
    (config.out / "report.md").write_text(render(results), encoding="utf-8")
    return results


def _curve(rows: Sequence[Scored], value: Any) -> tuple[Any, Any]:
    import numpy as np

    kept = [(r.item.label, v) for r in rows if r.error is None and (v := value(r)) is not None]
    return np.array([k[0] for k in kept]), np.array([k[1] for k in kept], np.float64)


def _models(settings: Settings) -> dict[str, str | None]:
    from detector.stages import configured_models

    face, synthetic = configured_models(settings)
    return {
        "face": f"{face[0]}@{face[1].sha256[:12]}",
        "synthetic": None if synthetic is None else f"{synthetic[0]}@{synthetic[1].sha256[:12]}",
    }


def _fmt(cell: Any) -> str:
    if isinstance(cell, list) and len(cell) == 3:
        if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in cell):
            return "n/a"
        return f"{cell[0]:.3f} [{cell[1]:.3f}, {cell[2]:.3f}]"
    return "n/a" if cell is None else str(cell)


def _bands(shares: dict[str, list[float]]) -> str:
    """``band share% [low, high]`` for every verdict band given to some items."""
    given = [f"{k} {v:.1%} [{lo:.1%}, {hi:.1%}]" for k, (v, lo, hi) in shares.items() if v > 0]
    return ", ".join(given) or "none (no real item scored)"


def _render_stills(stills: dict[str, Any]) -> list[str]:
    """The face-stills rows: dev images showing a face; generated ones vs held-out and unseen real faces."""
    rows = [("dev images showing a face", stills["dev"])]
    if "heldout" in stills:
        rows.append(("generated dev faces vs held-out real UTKFace faces", stills["heldout"]))
    if "photos" in stills:
        rows.append(("generated dev faces vs real face photos no model trained on", stills["photos"]))
    return [
        "Face stills (final score; images in which a face was found):",
        "",
        *_metric_table("images", rows),
        "",
    ]


def _metric_table(first: str, rows: Sequence[tuple[str, dict[str, Any]]]) -> list[str]:
    """A Markdown table of ranking and calibration metrics, one line per row that has items."""
    lines = [f"| {first} | n (fake) | AUC | AP | EER | ECE | FPR manipulated |", "|---" * 7 + "|"]
    for name, row in rows:
        if row.get("n"):
            cells = [_fmt(row.get(k)) for k in ("auc", "ap", "eer", "ece", "fpr_manipulated")]
            lines.append(f"| {name} | {row['n']} ({row.get('n_fake', 0)}) | " + " | ".join(cells) + " |")
    return lines


def render(results: dict[str, Any]) -> str:
    """The Markdown tables of a suite run (what the README carries)."""
    lines = [
        f"Models: {results['models']}; halves: {', '.join(results['halves'])}. 95% intervals: "
        "bootstrap for AUC, AP, EER and ECE (ECE's shifted by the resampling's bias), exact binomial "
        "for rates.",
        "",
    ]
    if results.get("baseline_note"):
        lines += [f"Comparison row: {results['baseline_note']}.", ""]
    for variant, sets in results["variants"].items():
        for set_name, table in sets.items():
            final = table["final"]
            fresh = table.get("unseen") or {}
            rows = [
                ("trueframe final score", final),
                ("final score, reals of unseen sources only", fresh.get("reals", {})),
                ("final score, both classes of unseen sources", fresh.get("both", {})),
                ("face model, raw", table["raw_face_model"]),
                ("synthetic model, raw", table["raw_synthetic_model"]),
            ]
            if results.get("baseline"):
                rows.append((f"baseline {results['baseline']}, raw", table["baseline_mesonet"]))
            lines += [f"### {set_name}, {variant}", "", *_metric_table("score", rows)]
            if "frames" in table and table["frames"].get("n"):
                frames = table["frames"]
                lines.append(f"| frame level (face P) | {frames['n']} | {_fmt(frames['auc'])} | | | | |")
            lines += [
                "",
                "Verdicts on real items: " + _bands(final["real_bands"]),
                "",
            ]
            if "reals" in fresh:
                lines += [
                    "Verdicts on real items of unseen sources: " + _bands(fresh["reals"]["real_bands"]),
                    "",
                ]
            if final.get("range_width"):
                width, wide = final["range_width"]
                share, low, high = final["range_crosses"]
                lines += [
                    f"Calibration range of P(manipulated) (95%, refits on redrawn calibration sets): median "
                    f"width {width:.3f}, 90th percentile {wide:.3f}; it reaches past a band boundary for "
                    f"{100 * share:.1f}% [{100 * low:.1f}%, {100 * high:.1f}%] of the items.",
                    "",
                ]
            if final.get("ece_floor"):
                median, high = final["ece_floor"]
                lines += [
                    "ECE a perfectly calibrated score would show at this number of items (labels "
                    f"drawn from its own probabilities): median {median:.3f}, 95% of draws <= {high:.3f}.",
                    "",
                ]
            if "face_stills" in table:
                lines += _render_stills(table["face_stills"])
            lines += [
                "n: for a generator its items plus every real item of the set (what its AUC ranks), "
                "for a real source its own items.",
                "",
                "| generator / source | n | AUC vs reals | caught or accused (any accusing band) "
                "| source seen in training |",
                "|---|---|---|---|---|",
            ]
            for kind, row in table["kinds"].items():
                what = "caught" if "caught" in row else "accused"
                share, low, high = row[what]
                k, m = row["hits"]
                cell = f"{what} {k} of {m}: {share:.1%} [{low:.1%}, {high:.1%}]"
                seen = row.get("seen", "n/a")
                lines.append(f"| {kind} | {row['n']} | {_fmt(row.get('auc'))} | {cell} | {seen} |")
            lines.append("")
    return "\n".join(lines)
