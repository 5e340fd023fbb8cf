"""Fitting the fusion stack and its verdict thresholds (used by ``trueframe calibrate`` and tests).

* :func:`fit_submodel`: logistic regression of the label on calibrated model logits with the
  weights constrained to be >= 0 (scipy L-BFGS-B with bounds, light L2), so the fused score can
  only rise with each model's evidence.
* :func:`fit_stack`: one sub-model per signal pattern, each fitted on the rows that pattern
  describes (``synthetic``: items where no face was found; ``face``: items with a face, the
  synthetic score ignored; ``face_synthetic``: items with both). Patterns with too few rows of
  either class are left out (fusion then falls back to equal weights and says so). No pattern
  starts above the prior of all rows (:func:`shift_prior`): which detectors could run is not
  evidence of manipulation. Given the shared section's rows (:class:`Pool`), a media kind's
  pattern with few rows of a class is pulled towards the shared weights (:mod:`.shrink`).
* :func:`choose_thresholds`: band boundaries at stated error rates on the calibration set.
* :func:`dump_parameters`: ``weights/fusion.toml`` text.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from detector.scoring.calibration import CalibrationDataError
from detector.scoring.fusion.params import BandThreshold, FusionParameters, Pattern, SubModel, Thresholds
from detector.scoring.fusion.shrink import choose_strength
from detector.scoring.fusion.spread import REPLICATES, parameter_covariance
from detector.scoring.logodds import sigmoid
from detector.tomlwrite import toml_value

MIN_ROWS_PER_CLASS = 10
SCARCE_ROWS_PER_CLASS = 2 * MIN_ROWS_PER_CLASS
"""A section's pattern with fewer rows of either class than this is pulled towards the shared one
(:mod:`.shrink`); from here on it stands on its own rows (see :func:`fit_stack`)."""
L2 = 1e-3
LIKELY_ODDS = 2.0  # a "likely_*" band needs its side at least twice as likely as the other
LIKELY_P = LIKELY_ODDS / (1.0 + LIKELY_ODDS)
SURE_ODDS = 9.0  # "manipulated" / "authentic" need their side at least nine times as likely
SURE_P = SURE_ODDS / (1.0 + SURE_ODDS)


def fit_submodel(
    features: np.ndarray, labels: np.ndarray, toward: np.ndarray | None = None, strength: float = 0.0
) -> tuple[float, list[float]]:
    """(intercept, weights >= 0) of ``sigmoid(b + X w)`` minimising mean log-loss + L2 on w.

    With ``toward`` (weights of the shared section's sub-model), the penalty
    ``strength * ||w - toward||^2`` is added: the pull a section's own fit gets towards the shared
    one (:mod:`.shrink` chooses ``strength``). The intercept is never penalised.
    """
    from scipy.optimize import minimize  # type: ignore[import-untyped]

    x = np.asarray(features, dtype=np.float64).reshape(len(labels), -1)
    y = np.asarray(labels, dtype=np.float64)
    w0 = np.zeros(x.shape[1]) if toward is None else np.asarray(toward, np.float64).reshape(-1)

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = theta[0] + x @ theta[1:]
        p = sigmoid(z)
        pull = theta[1:] - w0
        value = float(
            np.mean(np.logaddexp(0.0, z) - y * z) + L2 * np.sum(theta[1:] ** 2) + strength * np.sum(pull**2)
        )
        grad_z = (p - y) / len(y)
        grad = np.concatenate([[grad_z.sum()], x.T @ grad_z + 2 * L2 * theta[1:] + 2 * strength * pull])
        return value, grad

    start = np.concatenate([[0.0], np.ones(x.shape[1]) if toward is None else w0])
    bounds = [(None, None)] + [(0.0, None)] * x.shape[1]
    result = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds)
    return float(result.x[0]), [float(v) for v in result.x[1:]]


def _log_odds(labels: np.ndarray) -> float:
    rate = float(np.mean(labels))
    return math.log(rate / (1.0 - rate))


def shift_prior(intercept: float, rows: np.ndarray, everything: np.ndarray) -> float:
    """``intercept`` fitted on labels ``rows``, lowered to the class balance of ``everything`` when
    the rows held more fakes than the whole (never raised).

    A sub-model's intercept absorbs the share of fakes among the rows it was fitted on. On the dev
    set that share is an accident of collection: nearly every generated image is a face and most
    real photos are not, so the pattern fitted on images with a face learned "a face was found, so
    it is probably fake" (+0.86 log-odds before any evidence) and real face photos were accused
    (with v3 and per-pattern priors, 6 of 52 held-out teenagers in the bias audit). Moving the
    rows' log-odds to the whole section's (the prior-shift correction of a logistic model) keeps
    the pattern's weights and lets only evidence raise the score. The other way round (a pattern
    of mostly real rows) is not corrected: raising a prior from the collection's composition would
    accuse on no evidence just the same.
    """
    return min(intercept, intercept - _log_odds(rows) + _log_odds(everything))


def _enough(labels: np.ndarray) -> bool:
    return int((labels == 1).sum()) >= MIN_ROWS_PER_CLASS and int((labels == 0).sum()) >= MIN_ROWS_PER_CLASS


SIGNALS: dict[Pattern, tuple[str, ...]] = {
    "face_synthetic": ("face", "synthetic"),
    "face": ("face",),
    "synthetic": ("synthetic",),
}


@dataclass(frozen=True)
class Pool:
    """Rows a section's patterns are pulled towards: calibrated logits (NaN: missing), labels, groups."""

    face: np.ndarray
    synthetic: np.ndarray
    labels: np.ndarray
    groups: np.ndarray

    def rows(self, pattern: Pattern) -> np.ndarray:
        """The rows ``pattern`` is fitted on (the rule :func:`fit_stack` states)."""
        return pattern_rows(pattern, self.face, self.synthetic, self.labels)

    def target(self, pattern: Pattern) -> Callable[[np.ndarray], np.ndarray]:
        """Weights of ``pattern`` fitted on these rows without the given groups (none: all rows)."""
        rows = self.rows(pattern)
        x = np.stack([getattr(self, name) for name in SIGNALS[pattern]], axis=1)

        def fitted(excluded: np.ndarray) -> np.ndarray:
            keep = rows & ~np.isin(self.groups, excluded)
            return np.asarray(fit_submodel(x[keep], self.labels[keep])[1])

        return fitted


def pattern_rows(pattern: Pattern, face: np.ndarray, synthetic: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``face_synthetic``: rows with both signals; ``face``: with a face logit; ``synthetic``: with
    only the synthetic logit, or with it at all when those are too few."""
    has_f, has_s = ~np.isnan(face), ~np.isnan(synthetic)
    if pattern == "face_synthetic":
        return has_f & has_s
    if pattern == "face":
        return has_f
    only_s = has_s & ~has_f
    return only_s if _enough(labels[only_s]) else has_s


def _chosen_pull(
    pattern: Pattern,
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray | None,
    toward: Pool | None,
    to_none: bool,
) -> tuple[float, np.ndarray | None]:
    """The pull of ``pattern``'s fit on rows ``x`` / ``y`` and the weights it pulls towards (``0.0,
    None``: fitted freely), by the rules :func:`fit_stack` states: towards zero with ``to_none``;
    else towards the shared rows' weights when the pattern is scarce here and ``toward`` has it."""
    if groups is None:
        return 0.0, None
    if to_none:
        none = np.zeros(len(SIGNALS[pattern]))
        return choose_strength(x, y, groups, lambda _held_out: none).strength, none
    scarce = min(int((y == 1).sum()), int((y == 0).sum())) < SCARCE_ROWS_PER_CLASS
    if scarce and toward is not None and _enough(toward.labels[toward.rows(pattern)]):
        target = toward.target(pattern)
        return choose_strength(x, y, groups, target).strength, target(np.array([], dtype=str))
    return 0.0, None


def fit_stack(
    face: np.ndarray,
    synthetic: np.ndarray,
    labels: np.ndarray,
    joint: bool = True,
    shared_prior: bool = True,
    toward: Pool | None = None,
    groups: np.ndarray | None = None,
    replicates: int = REPLICATES,
    to_none: bool = False,
) -> dict[Pattern, SubModel]:
    """Sub-models per pattern; ``face`` / ``synthetic`` hold calibrated logits, NaN where missing.

    ``joint``: fit ``face_synthetic`` on the rows with both signals. Leave it False when those rows
    do not hold both kinds of fakes (e.g. only face-swaps); fusion then combines the face and
    synthetic sub-models as a noisy-OR instead. ``shared_prior``: no pattern's intercept starts
    above the class balance of all rows with a signal (:func:`shift_prior`). ``toward`` (the rows
    of the shared section) with ``groups`` (each row's clip or identity): a pattern with fewer
    than :data:`SCARCE_ROWS_PER_CLASS` rows of either class is fitted with the pull towards the
    shared section's weights that grouped cross-validation chooses (:mod:`.shrink`; the strength
    is kept as ``SubModel.pull``). Patterns with more rows are not pulled: the shared section is
    mostly stills, where the face model's weight is 0, and the dev set's videos are mostly
    talking heads, on which cross-validation would pull the video face weight to the stills'
    and leave face swaps (few in the dev set, the face model's main case) to the synthetic-image
    model. ``to_none`` with ``groups``: every pattern is instead pulled towards zero weights (no
    evidence: the score stays at the rows' base rate) as hard as grouped cross-validation says,
    for a section whose few clips carry weak evidence (degraded videos: ``calibrate.NO_EVIDENCE``).
    Each sub-model also gets the covariance of its parameters over ``replicates``
    bootstrap refits, whole ``groups`` (or rows) redrawn (:mod:`.spread`; 0: none).
    """
    f = np.asarray(face, dtype=np.float64)
    s = np.asarray(synthetic, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    with_signal = np.flatnonzero(~np.isnan(f) | ~np.isnan(s))  # the rows the prior is shifted to
    signals = {"face": f, "synthetic": s}

    def submodel(pattern: Pattern, rows: np.ndarray) -> SubModel:
        full = np.stack([signals[name] for name in SIGNALS[pattern]], axis=1)  # every row; NaN: missing
        x = full[rows]
        mine = None if groups is None else groups[rows]
        pull, w0 = _chosen_pull(pattern, x, y[rows], mine, toward, to_none)

        def refit(draw: np.ndarray) -> tuple[float, list[float]] | None:
            """The fit on the rows with a signal at ``draw`` (repeats allowed): this pattern's rows
            among them, its prior shifted to the balance of all of them (None: a class is missing)."""
            drawn = with_signal[draw]
            mine = drawn[rows[drawn]]
            if len(np.unique(y[mine])) < 2:
                return None
            b, w = fit_submodel(full[mine], y[mine], toward=w0, strength=pull)
            return (shift_prior(b, y[mine], y[drawn]) if shared_prior else b), w

        fitted = refit(np.arange(len(with_signal)))
        assert fitted is not None  # the pattern has MIN_ROWS_PER_CLASS rows of each class
        intercept, w = fitted
        named = groups[with_signal] if groups is not None else with_signal
        covariance = parameter_covariance(refit, SIGNALS[pattern], named, y[with_signal], replicates)
        return SubModel(
            intercept=intercept,
            n=int(rows.sum()),
            pull=pull,
            covariance=covariance,  # empty with replicates=0
            **dict(zip(SIGNALS[pattern], w, strict=True)),
        )

    out: dict[Pattern, SubModel] = {}
    for pattern in SIGNALS:
        rows = pattern_rows(pattern, f, s, y)
        if (joint or pattern != "face_synthetic") and _enough(y[rows]):
            out[pattern] = submodel(pattern, rows)
    if not out:
        raise CalibrationDataError(f"no signal pattern has {MIN_ROWS_PER_CLASS} items of each class")
    return out


def stack_logits(submodels: dict[Pattern, SubModel], face: np.ndarray, synthetic: np.ndarray) -> np.ndarray:
    """Fused pixel logits per row exactly as serving computes them (:func:`combine`); NaN: no signal."""
    from detector.scoring.fusion.rules import combine

    out = []
    for fv, sv in zip(np.asarray(face, np.float64), np.asarray(synthetic, np.float64), strict=True):
        combined = combine(
            submodels, None if math.isnan(fv) else float(fv), None if math.isnan(sv) else float(sv)
        )
        out.append(math.nan if combined is None else combined.logit)
    return np.asarray(out, np.float64)


def _fpr(auth: np.ndarray, t: float) -> float:
    return float(np.mean(auth >= t)) if auth.size else 0.0


def _false_authentic(fake: np.ndarray, t: float) -> float:
    return float(np.mean(fake <= t)) if fake.size else 0.0


def choose_thresholds(
    probs: np.ndarray,
    labels: np.ndarray,
    fpr_manipulated: float = 0.01,
    fpr_likely: float = 0.05,
    false_authentic: float = 0.01,
    false_likely_authentic: float = 0.05,
    fpr_rows: np.ndarray | None = None,
) -> Thresholds:
    """Band boundaries on P(manipulated) at the stated rates, measured on ``probs`` / ``labels``.

    ``manipulated`` / ``likely_manipulated``: the lowest P at which at most ``fpr_*`` of the
    authentic items score at or above it; with the boolean mask ``fpr_rows`` (authentic items of
    sources no model trained on), at most ``fpr_*`` of those *and* of all authentic items, so
    the band keeps its rate on both (the measured rate given is the larger of the two).
    ``authentic`` / ``likely_authentic``: the highest P at which at most ``false_*`` of the
    manipulated items score at or below it. Manipulated bands
    never start below P = :data:`LIKELY_P` (2/3) and authentic bands never reach above 1 - 2/3,
    so a band never contradicts the calibrated probability and ``uncertain`` always holds the
    scores where neither side is at least twice as likely as the other. The definite bands need
    9:1 odds (``manipulated`` from P = :data:`SURE_P`, ``authentic`` up to 0.1): on a few hundred
    calibration items a 1% rate is two or three items, too few to set a definite verdict alone.
    """
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    auth, fake = p[y == 0], p[y == 1]
    groups = [auth] if fpr_rows is None else [auth, p[(y == 0) & fpr_rows]]
    candidates = np.unique(np.concatenate([p, [0.0, 1.0 - SURE_P, 1.0 - LIKELY_P, LIKELY_P, SURE_P, 1.0]]))

    def fpr(t: float) -> float:
        return max(_fpr(group, t) for group in groups)

    def lowest_fpr(rate: float) -> float:
        return float(next(t for t in candidates if fpr(t) <= rate))

    def highest_fa(rate: float) -> float:
        return float(next(t for t in candidates[::-1] if _false_authentic(fake, t) <= rate))

    likely_m = max(lowest_fpr(fpr_likely), LIKELY_P)
    manip = max(lowest_fpr(fpr_manipulated), likely_m, SURE_P)
    likely_a = min(highest_fa(false_likely_authentic), 1.0 - LIKELY_P)
    if likely_a >= likely_m:
        likely_a = math.nextafter(likely_m, 0.0)
    auth_t = min(highest_fa(false_authentic), likely_a, 1.0 - SURE_P)
    return Thresholds(
        authentic=BandThreshold(
            manipulated=auth_t, target_rate=false_authentic, measured_rate=_false_authentic(fake, auth_t)
        ),
        likely_authentic=BandThreshold(
            manipulated=likely_a,
            target_rate=false_likely_authentic,
            measured_rate=_false_authentic(fake, likely_a),
        ),
        likely_manipulated=BandThreshold(
            manipulated=likely_m, target_rate=fpr_likely, measured_rate=fpr(likely_m)
        ),
        manipulated=BandThreshold(manipulated=manip, target_rate=fpr_manipulated, measured_rate=fpr(manip)),
    )


def _section_lines(prefix: str, submodels: dict[Pattern, SubModel], thresholds: Thresholds) -> list[str]:
    """TOML tables ``[{prefix}submodels.*]`` and ``[{prefix}thresholds]``."""
    lines = []
    for name, sub in submodels.items():
        lines.append(f"[{prefix}submodels.{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in sub.model_dump().items()]
        lines.append("")
    lines.append(f"[{prefix}thresholds]")
    for band in ("authentic", "likely_authentic", "likely_manipulated", "manipulated"):
        t: BandThreshold = getattr(thresholds, band)
        fields = ", ".join(f"{k} = {toml_value(v)}" for k, v in t.model_dump().items())
        lines.append(f"{band} = {{ {fields} }}")
    lines.append("")
    return lines


def dump_parameters(params: FusionParameters, header: str = "") -> str:
    """``weights/fusion.toml`` text for ``params`` (round-trips through :func:`load_parameters`)."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines += ["schema_version = 1", f"fitted_on = {toml_value(params.fitted_on)}"]
    for key in ("face_model", "synthetic_model", "video_frames"):
        value = getattr(params, key)
        if value is not None:
            lines.append(f"{key} = {toml_value(value)}")
    lines.append("")
    lines += _section_lines("", params.submodels, params.thresholds)
    lines.append("[priors]")
    lines += [f"{k} = {toml_value(v)}" for k, v in params.priors.model_dump().items()]
    lines += ["", "[measured]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in params.measured.items()]
    for kind, section in params.kinds.items():
        lines += ["", f"[kinds.{kind}]", f"fitted_on = {toml_value(section.fitted_on)}"]
        lines.append(f"measured = {toml_value(section.measured)}")
        lines.append("")
        lines += _section_lines(f"kinds.{kind}.", section.submodels, section.thresholds)
    return "\n".join(lines).rstrip("\n") + "\n"
