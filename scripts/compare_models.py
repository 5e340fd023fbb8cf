"""Compare the shipped models with MesoNet on held-out data: ``python -m scripts.compare_models``.

Face data: the FaceForensics++ c23 pair (``original/519.mp4`` vs ``Deepfakes/519_515.mp4``,
``--frames`` frames each, largest face per frame), the MesoNet authors' face frames (whole images,
they are already face crops) and the self-blended validation split of the face config (faces the
model never trained on, self-blended with a fixed seed). Synthetic data: the real photos the
synthetic config did not train or validate on vs every folder of ``synthetic/generated``.
Writes ``OUT/model_comparison.md`` and ``OUT/model_comparison.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from datasets.augment import SharedAugment
from datasets.face_cache import FaceCache
from datasets.readers import Sample, read_faceforensics, read_folder, read_real_fake
from datasets.training import SelfBlendSet, split_by_group
from detector.models.base import Classifier
from scripts.eval_metrics import binary_metrics, format_table
from scripts.evaluate import FrameScore, Scorer, summarize
from scripts.train import load_config
from scripts.train_data import load_faces

KEYS = ["n", "auc", "ap", "eer", "accuracy", "log_loss", "ece"]


def _score(
    classifier: Classifier, samples: list[Sample], frames: int, whole: bool
) -> tuple[dict[str, Any], list[FrameScore]]:
    scorer = Scorer(classifier, frames, whole)
    scores: list[FrameScore] = [s for sample in samples for s in scorer.score(sample)]
    result = summarize(classifier, scores, None)
    names = sorted({s.sample.path.name for s in scores})
    result["mean_logit"] = {
        n: float(np.mean([s.logit for s in scores if s.sample.path.name == n])) for n in names
    }
    result["no_face"] = scorer.no_face
    return result, scores


def _per_group(scores: list[FrameScore]) -> dict[str, dict[str, float]]:
    """Each fake group against all real samples."""
    groups = sorted({s.sample.group for s in scores if s.sample.label == 1 and s.sample.group})
    out = {}
    for group in groups:
        sel = [s for s in scores if s.sample.label == 0 or s.sample.group == group]
        out[group] = binary_metrics([s.sample.label for s in sel], [s.logit for s in sel])
    return out


def _sbi_validation(classifier: Classifier, cache: FaceCache, seed: int) -> dict[str, float]:
    """Metrics on the self-blended validation faces, cut at ``classifier``'s margin and size."""
    spec = classifier.spec
    assert spec.crop_margin is not None
    val = SelfBlendSet(cache, spec.crop_margin, spec.size[0], SharedAugment()).fixed(seed)
    return binary_metrics(val.labels, classifier.predict(val.images))


def main(argv: list[str] | None = None) -> int:
    """Run every comparison and write the Markdown table and JSON."""
    from detector.models._registry import create_model
    from detector.models._weights import import_weights

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--face-model", default="facecnn.sbi")
    parser.add_argument("--synthetic-model", default="nprcnn.artefacts")
    parser.add_argument("--face-config", type=Path, default=Path("scripts/configs/face_sbi.yaml"))
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--out", type=Path, default=Path("runs"))
    args = parser.parse_args(argv)
    weights = args.out / "weights"
    import_weights("mesonet", args.data / "weights" / "mesonet", weights, names=["meso4.df"])
    models = {
        n: create_model(n, weights_dir=weights) for n in (args.face_model, args.synthetic_model, "meso4.df")
    }
    ffpp = read_faceforensics(args.data / "deepfake" / "ffpp_c23")
    frames = read_real_fake(args.data / "deepfake" / "frames", fake="df")
    gen = args.data / "synthetic" / "generated"
    real = args.data / "synthetic" / "real"
    synthetic = [
        s
        for sub in ("bsds500/test", "kodak24", "sun_hays80", "scikit_image")
        for s in read_folder(real / sub)
    ]
    synthetic += [
        s for d in sorted(p for p in gen.iterdir() if p.is_dir()) for s in read_folder(d, 1, d.name)
    ]
    face_data = load_config(args.face_config)["data"]
    faces = load_faces(face_data)
    val_faces = faces.subset(split_by_group(faces.groups, face_data["val_groups"])[1])
    rows: dict[str, dict[str, float]] = {}
    report: dict[str, Any] = {}
    for name in (args.face_model, "meso4.df"):
        clf = models[name]
        pair, _ = _score(clf, ffpp, args.frames, False)
        rows[f"{name} / FF++ 519 pair, frames"] = pair["levels"]["frame"]
        report[f"{name}/ffpp"] = pair
        meso, _ = _score(clf, frames, 1, True)
        rows[f"{name} / MesoNet face frames"] = meso["levels"]["frame"]
        report[f"{name}/mesonet_frames"] = meso
        sbi = _sbi_validation(clf, val_faces, 0)
        rows[f"{name} / self-blended validation"] = sbi
        report[f"{name}/sbi_val"] = sbi
    for name in (args.synthetic_model, "meso4.df"):
        result, scores = _score(models[name], synthetic, 1, True)
        rows[f"{name} / all generated vs held-out real"] = result["levels"]["frame"]
        for group, metrics in _per_group(scores).items():
            rows[f"{name} / {group} vs held-out real"] = metrics
        report[f"{name}/synthetic"] = result
    text = "# Model comparison (measured on data the models never trained on)\n\n" + format_table(rows, KEYS)
    text += "\n\nVideo level, FF++ pair (mean frame logit per video):\n\n"
    for name in (args.face_model, "meso4.df"):
        means = report[f"{name}/ffpp"]["mean_logit"]
        text += f"- {name}: " + ", ".join(f"{k} {v:+.3f}" for k, v in sorted(means.items())) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "model_comparison.md").write_text(text, encoding="utf-8")
    (args.out / "model_comparison.json").write_text(
        json.dumps(report, indent=2, default=str), encoding="utf-8"
    )
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
