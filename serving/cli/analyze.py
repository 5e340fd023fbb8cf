"""``trueframe analyze`` and ``trueframe schema``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detector.errors import TrueframeError
from detector.report.schema import Report, report_json_schema
from detector.scoring.fusion.text import percent, range_words
from serving.cli import model_name, with_face_model

if TYPE_CHECKING:
    from detector.pipeline import Pipeline
    from detector.provenance.pdq import KnownMedia

EXIT_USER_ERROR = 2
TOP_FRAMES = 3


def register(sub: Any) -> None:
    """Add the ``analyze`` and ``schema`` sub-commands."""
    p = sub.add_parser("analyze", help="score images or videos for manipulation")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--json", action="store_true", help="one JSON report per line")
    p.add_argument("--frames", type=int, default=None, help="frames sampled per video (default 32)")
    p.add_argument("--model", type=model_name, default=None, help="face model name (see `trueframe models`)")
    p.add_argument(
        "--heatmaps", action="store_true", help="add Grad-CAM heatmaps of the top face crops (base64 PNG)"
    )
    p.set_defaults(func=run_analyze)
    s = sub.add_parser("schema", help="print the report's JSON schema")
    s.set_defaults(func=run_schema)


def run_analyze(args: argparse.Namespace) -> int:
    """Analyse each file; a failing file prints its error and the others still run."""
    from detector.pipeline import Pipeline
    from detector.settings import check_frames, get_settings
    from serving.known.lookup import service_known_media

    check_frames(args.frames, "--frames")
    settings = with_face_model(get_settings(), args.model)
    pipeline = Pipeline(settings)
    # the reviewed hash lists the service and a scan match; a store that cannot be reached is
    # store_unavailable here, before any file
    known = service_known_media(settings)
    try:
        return _analyze_each(args, pipeline, known)
    finally:
        if known is not None:
            known.store.close()


def _analyze_each(args: argparse.Namespace, pipeline: Pipeline, known: KnownMedia | None) -> int:
    exit_code = 0
    for path in args.files:
        try:
            report = pipeline.analyze(path, frames=args.frames, heatmaps=args.heatmaps, known=known)
        except TrueframeError as exc:
            exit_code = EXIT_USER_ERROR
            if args.json:
                print(json.dumps({"file": str(path), "error": exc.to_dict()}))
            else:
                print(f"{path}: error: {exc.code}: {exc.message}", file=sys.stderr)
            continue
        print(report.to_json() if args.json else summarize(report, str(path)))
    return exit_code


def run_schema(args: argparse.Namespace) -> int:
    print(json.dumps(report_json_schema(), indent=2))
    return 0


def probability(p: float) -> str:
    """``p`` to three significant digits, never a bare 0 or 1: ``<0.001`` and ``>0.999`` at the ends
    (``.3g`` printed 0.9996 as "1", a certainty no calibration gives)."""
    if p < 0.001:
        return "<0.001"
    if p > 0.999:
        return ">0.999"
    return f"{p:.3g}"


def _faces_uncounted(report: Report) -> str | None:
    """Why the face tracks' ratings are not in the score (as the web form greys their boxes), or None
    when they are: no verdict was given (out of scope), or the fusion gives the face model weight 0."""
    if report.score.verdict == "out_of_scope":
        return "not counted: no detector applies, no verdict is given"
    face = next((s for s in report.score.signals if s.name == "face_model"), None)
    if face is not None and face.present and face.counted is False:
        return "not counted in the score"
    return None


def summarize(report: Report, label: str) -> str:
    """A few readable lines: verdict, why, faces, the frames that drove it, provenance, warnings."""
    m = report.media
    what = f"{m.kind} {m.format} {m.width}x{m.height}"
    if m.duration_s is not None:
        what += f" {m.duration_s:.1f}s" if m.duration_s >= 0.1 else f" {1000 * m.duration_s:.0f} ms"
    lines = [f"{label}: {what} sha256 {m.sha256[:12]}"]
    s = report.score
    lines.append(f"  verdict: {s.verdict}. {s.summary}")
    if s.authenticity is not None and s.manipulated is not None:
        # three significant digits, never a bare 0.000 or 1.000, and the words the report uses
        note = "" if s.calibrated else " (NOT calibrated for these models)"
        lines.append(
            f"  P(manipulated) {probability(s.manipulated)} ({percent(s.manipulated)}), "
            f"authenticity {percent(s.authenticity)}{note}"
        )
        if s.manipulated_range is not None:
            lines.append(f"  calibration range of P(manipulated): {range_words(s.manipulated_range)} (95%)")
    lines.extend(f"  - {signal.sentence}" for signal in s.signals)
    if s.thresholds and s.verdict != "out_of_scope":
        bands = ", ".join(
            f"{t.verdict} {'>=' if t.bound == 'at_least' else '<='} {t.manipulated:.2f}"
            f" ({t.rate.replace('_', ' ')} {100 * t.target_rate:g}%)"
            for t in s.thresholds
        )
        measured = "" if s.calibrated else " (rates measured for the fitted models, not these)"
        lines.append(f"  bands on P(manipulated): {bands}{measured}")
    if s.limited:  # degraded media and other limits of scope (also in the summary)
        lines.append(f"  limited: {'; '.join(s.limited)}")
    if report.heatmaps:
        lines.append(f"  heatmaps: {len(report.heatmaps)} (in --json output)")
    uncounted = _faces_uncounted(report)
    for t in report.tracks:
        score = "n/a" if t.score is None else probability(t.score)
        lines.append(
            f"  face track {t.track_id}: {t.length} frame(s), ~{t.mean_side:.0f}px, P(manipulated) {score}"
            + (f" (face model alone; {uncounted})" if uncounted and t.score is not None else "")
        )
    driving = sorted(
        (f for f in report.frames if f.max_face_logit is not None), key=lambda f: -(f.max_face_logit or 0)
    )
    if driving and m.kind == "video" and not uncounted:
        tops = ", ".join(
            f"t={f.timestamp:.2f}s (logit {f.max_face_logit:+.2f})" for f in driving[:TOP_FRAMES]
        )
        lines.append(f"  frames that drove it: {tops}")
    if report.provenance is not None:
        lines.append(f"  provenance: {report.provenance.state}: {report.provenance.state_description}")
    lines.extend(f"  warning: {w}" for w in report.warnings)
    return "\n".join(lines)
