"""What a long-running command checks before it starts anything: the configured models, their
weights and the fusion parameters (:func:`check_models`), and the C2PA trust settings
(:func:`check_provenance`).

Each failure is the typed error the first analysis would have met (``unknown_model`` naming its
setting, ``weights_missing``, ``weights_checksum_mismatch``, ``model_error``,
``provenance_config_invalid``), so ``trueframe serve`` and ``trueframe scan`` print one line and exit
2. Until 2026-12-04 ``serve`` started anyway: ``/readyz`` said "weights missing?" whatever the cause,
and every upload answered the error (a bad trust-anchor file passed ``/readyz`` and made every
upload ``500``).

Neither check imports torch or the model registry: they read the manifest, the weights files'
sha256, the fusion file and the trust files only.
"""

from __future__ import annotations

from detector.errors import UnknownModel
from detector.settings import Settings

MODEL_SETTINGS = (
    ("TRUEFRAME_MODELS__FACE_MODEL", "face_model"),
    ("TRUEFRAME_MODELS__SYNTHETIC_MODEL", "synthetic_model"),
)


def check_models(settings: Settings) -> None:
    """Fail before any work when a configured model is unknown or fills the wrong role, or its
    weights or the fusion parameters are missing or corrupt."""
    from detector.models._manifest import check_roles, manifest_entry
    from detector.models._weights import default_weights_dir, resolve_weights
    from detector.scoring.fusion.params import load_parameters

    for variable, field in MODEL_SETTINGS:
        name = getattr(settings.models, field)
        if not name and field == "synthetic_model":  # none: only the face model judges
            continue
        try:
            manifest_entry(name)
        except UnknownModel as exc:
            raise UnknownModel(f"{variable}: {exc.message}") from None
    load_parameters(settings.fusion.fusion_file)
    weights_dir = settings.models.weights_dir or default_weights_dir()
    for entry in check_roles(settings.models.face_model, settings.models.synthetic_model):
        resolve_weights(entry, weights_dir)


def check_provenance(settings: Settings) -> None:
    """Fail before any work when a trust-anchor, allowed-list or trust-config file is missing, holds
    no certificate or is refused by the C2PA SDK."""
    from detector.provenance.reader import ProvenanceReader

    ProvenanceReader(settings.provenance).check()


def check_configuration(settings: Settings) -> None:
    """:func:`check_models` and :func:`check_provenance`."""
    check_models(settings)
    check_provenance(settings)
