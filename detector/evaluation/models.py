"""One model on labelled media: ``trueframe evaluate --model NAME --data DIR`` (raw model, no fusion).

Input: a folder with ``real/`` and ``fake/`` (``--fake-dir`` renames the latter), a CSV
``path,label[,group]`` (``--csv``), or a FaceForensics++ / Celeb-DF / DFDC tree (``--layout``).
Videos are sampled at ``--frames`` timestamps exactly as the pipeline samples them. A face model
scores the largest face of each frame, cropped with its manifest margin and size (frames without a
face are counted and skipped; ``--whole-image`` treats each image as an already cut face crop); a
synthetic-image model scores whole frames. Frame level: every scored frame; video level: the mean
logit of a file's frames. Output: AUC, AP, EER, accuracy at the calibrated threshold (logit 0 when
the model has no calibration, which the output states), log loss, Brier score and ECE (15 bins)
as a Markdown table and ``metrics.json``, ``scores.csv``, ROC and reliability PNGs in ``--out``,
plus a per-group table (bias audit) when labels carry groups.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from datasets.readers import Sample, read_csv, read_real_fake
from detector.errors import InvalidRequest, TrueframeError
from detector.evaluation.metrics import binary_metrics, format_table
from detector.evaluation.model_args import LAYOUTS, add_arguments
from detector.evaluation.plots import plot_reliability, plot_roc
from detector.models.base import Classifier


@dataclass(frozen=True)
class FrameScore:
    """The raw fake-logit of one frame (or image) of one sample."""

    sample: Sample
    frame: int
    logit: float


def read_samples(
    data: Path | None, csv_path: Path | None, layout: str | None, fake_dir: str = "fake"
) -> list[Sample]:
    """The labelled samples the command line names (exactly one of folder or CSV)."""
    if (data is None) == (csv_path is None):
        raise InvalidRequest("give exactly one of --data DIR or --csv FILE")
    if csv_path is not None:
        return read_csv(csv_path)
    assert data is not None
    if layout is not None:
        return LAYOUTS[layout](data)
    return read_real_fake(data, fake=fake_dir)


class Scorer:
    """Turns media files into per-frame logits with one classifier (face crops or whole frames)."""

    def __init__(self, classifier: Classifier, frames: int, whole_image: bool = False) -> None:
        self.classifier, self.frames, self.whole_image = classifier, frames, whole_image
        self.is_face = classifier.entry.task == "face_forgery"
        self._extractor: Any = None
        self.no_face = 0
        from detector.media.loader import MediaLoader
        from detector.media.sampling import FrameSampler

        self._loader = MediaLoader()
        self._sampler = FrameSampler(loader=self._loader)

    def _inputs(self, images: list[np.ndarray]) -> list[tuple[int, np.ndarray]]:
        if not self.is_face or self.whole_image:
            return list(enumerate(images))
        from detector.faces.extract import FaceExtractor, crop_face

        if self._extractor is None:
            self._extractor = FaceExtractor(device=self.classifier.device)
        margin = self.classifier.spec.crop_margin or 1.0
        size = self.classifier.spec.size[0]
        out = []
        for i, (image, faces) in enumerate(zip(images, self._extractor.detect(images), strict=True)):
            if faces:
                out.append((i, crop_face(image, faces[0].box, margin, size)))
            else:
                self.no_face += 1
        return out

    def score(self, sample: Sample) -> list[FrameScore]:
        """Logits of the sample's scored frames (empty when no frame had a face)."""
        frames = self._sampler.sample(self._loader.load(sample.path), self.frames).frames
        inputs = self._inputs([f.image for f in frames])
        if not inputs:
            return []
        logits = self.classifier.predict([im for _, im in inputs])
        return [FrameScore(sample, i, float(v)) for (i, _), v in zip(inputs, logits, strict=True)]


def _probabilities(classifier: Classifier, logits: np.ndarray) -> tuple[np.ndarray, bool]:
    from detector.scoring.calibration import Calibrator
    from detector.scoring.logodds import sigmoid

    cal = classifier.entry.calibration
    if cal is None:
        return sigmoid(logits), False
    return Calibrator.from_manifest(cal).probabilities(logits), True


def _levels(scores: Sequence[FrameScore]) -> dict[str, tuple[np.ndarray, np.ndarray, list[Sample]]]:
    frame_y = np.array([s.sample.label for s in scores])
    frame_s = np.array([s.logit for s in scores])
    per_video: dict[Path, list[float]] = defaultdict(list)
    samples: dict[Path, Sample] = {}
    for s in scores:
        per_video[s.sample.path].append(s.logit)
        samples[s.sample.path] = s.sample
    videos = [samples[p] for p in sorted(per_video)]
    video_y = np.array([v.label for v in videos])
    video_s = np.array([float(np.mean(per_video[v.path])) for v in videos])
    return {"frame": (frame_y, frame_s, [s.sample for s in scores]), "video": (video_y, video_s, videos)}


def summarize(classifier: Classifier, scores: Sequence[FrameScore], out: Path | None) -> dict[str, Any]:
    """Metrics at frame and video level, per-group video metrics, and the plots (when ``out``)."""
    if not scores:
        raise InvalidRequest("no frame could be scored (no media, or no faces found)")
    levels = _levels(scores)
    result: dict[str, Any] = {"model": classifier.name, "levels": {}, "groups": {}}
    curves = {}
    for level, (y, s, samples) in levels.items():
        probs, calibrated = _probabilities(classifier, s)
        result["calibrated"] = calibrated
        result["levels"][level] = binary_metrics(y, s, probs)
        curves[level] = (y, s)
        if level == "video" and any(x.group for x in samples):
            for group in sorted({x.group or "-" for x in samples}):
                sel = np.array([(x.group or "-") == group for x in samples])
                result["groups"][group] = binary_metrics(y[sel], s[sel], probs[sel])
        if out is not None:
            plot_reliability(y, probs, out / f"reliability_{level}.png", f"{classifier.name} ({level})")
    result["threshold"] = "calibrated P = 0.5" if result["calibrated"] else "logit 0 (uncalibrated)"
    if out is not None:
        plot_roc(curves, out / "roc.png", classifier.name)
    return result


def write_outputs(result: dict[str, Any], scores: Sequence[FrameScore], out: Path) -> None:
    """``metrics.json`` and ``scores.csv`` (one row per scored frame) in ``out``."""
    from detector.evaluation.suite import write_json

    write_json(result, out / "metrics.json")  # strict JSON: a metric one class cannot give is null
    with open(out / "scores.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", "group", "frame", "logit"])
        for s in scores:
            writer.writerow([s.sample.path, s.sample.label, s.sample.group or "", s.frame, f"{s.logit:.6f}"])


def class_warnings(samples: Sequence[Sample], scores: Sequence[FrameScore], no_face: int) -> list[str]:
    """One warning per class (real, fake) of which no item was scored: AUC, AP and EER need both,
    and a run whose fakes all lacked a face printed ``n_fake 0`` and AUC nan without a word."""
    given = Counter(s.label for s in samples)
    scored = {s.sample.label for s in scores}
    return [
        f"no {word} item was scored ({given[label]} given, {no_face} frame(s) without a face in all): "
        "AUC, AP and EER need both classes and are not measured"
        for label, word in ((1, "fake"), (0, "real"))
        if label not in scored
    ]


def render(result: dict[str, Any]) -> str:
    """The Markdown tables: levels, then groups when present; warnings above them."""
    text = "".join(f"WARNING: {w}\n\n" for w in result.get("warnings", []))
    text += f"model {result['model']}; accuracy threshold: {result['threshold']}\n\n"
    text += format_table(result["levels"]) + "\n"
    if result["groups"]:
        text += (
            "\nper group (video level)\n\n"
            + format_table(result["groups"], ["n", "n_fake", "auc", "accuracy", "ece"])
            + "\n"
        )
    return text


def run(args: argparse.Namespace) -> int:
    """Score, summarise, print the table and write the outputs."""
    from detector.evaluation.checks import writable_dir
    from detector.models._registry import create_model
    from detector.runtime import select_device
    from detector.settings import check_frames

    check_frames(args.frames, "--frames")  # 1 to 512, as analyze and the settings (100000 was taken)
    if args.out is not None:
        writable_dir(args.out, "--out")  # before scoring, not after it
    samples = read_samples(args.data, args.csv, args.layout, args.fake_dir)
    device = select_device(args.device, "--device")
    classifier = create_model(args.model, weights_dir=args.weights_dir, device=device)
    scorer = Scorer(classifier, args.frames, args.whole_image)
    scores: list[FrameScore] = []
    failed: list[str] = []
    for sample in tqdm(samples, desc="scoring", leave=False):
        try:
            scores += scorer.score(sample)
        except TrueframeError as exc:
            failed.append(f"{sample.path}: {exc.code}: {exc.message}")
    result = summarize(classifier, scores, args.out)
    warnings = class_warnings(samples, scores, scorer.no_face)
    result.update(frames_without_face=scorer.no_face, failed=failed, warnings=warnings)
    if args.out is not None:
        write_outputs(result, scores, args.out)
    print(render(result))
    for line in warnings:
        print(f"warning: {line}", file=sys.stderr)
    for line in failed:
        print(f"skipped {line}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m scripts.evaluate``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
