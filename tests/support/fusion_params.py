"""Hand-set fusion parameters shared by the fusion tests (unit and on the C2PA fixtures)."""

from __future__ import annotations

from detector.report.schema import Score
from detector.scoring.fusion.rules import BandThreshold, FusionParameters, SubModel, Thresholds

FACE, SYNTH = "facecnn.test", "nprcnn.test"
STRONG_REAL = -8.0  # calibrated face logit: the pixels say "authentic" with P(fake) ~ 0.0003


def _band(p: float, target: float, measured: float) -> BandThreshold:
    return BandThreshold(manipulated=p, target_rate=target, measured_rate=measured)


def make_params() -> FusionParameters:
    """Hand-set fusion parameters: all three sub-models, bands at 0.05 / 0.2 / 0.7 / 0.9."""
    return FusionParameters(
        schema_version=1,
        fitted_on="unit test",
        face_model=FACE,
        synthetic_model=SYNTH,
        submodels={
            "face_synthetic": SubModel(intercept=-0.2, face=0.9, synthetic=0.7, n=100),
            "face": SubModel(intercept=0.1, face=1.0, n=100),
            "synthetic": SubModel(intercept=-0.3, synthetic=1.1, n=100),
        },
        thresholds=Thresholds(
            authentic=_band(0.05, 0.01, 0.01),
            likely_authentic=_band(0.2, 0.05, 0.05),
            likely_manipulated=_band(0.7, 0.05, 0.04),
            manipulated=_band(0.9, 0.01, 0.01),
        ),
    )


def manipulated(score: Score) -> float:
    """The score's P(manipulated), asserting it is there."""
    assert score.manipulated is not None
    return score.manipulated
