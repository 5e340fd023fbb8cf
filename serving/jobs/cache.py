"""The one result key: everything a report depends on besides the bytes of the medium.

Used by the HTTP result cache, the job runner and the batch scan alike, so a recalibration, a new
fusion file, other verdict thresholds, other face-detector settings or another frame count can
never return a report computed under the old ones. The key hashes: the report schema version;
for each configured model its name, weights sha256, input spec and calibration table; the bytes of
the fusion parameters file (sub-models, priors, verdict thresholds); the face, sampling, fusion
and provenance (trust) settings; and the request's options with the frame count resolved.
"""

from __future__ import annotations

import hashlib
import json

from detector.settings import Settings
from detector.stages import Options


def result_key(settings: Settings, options: Options, kind: str = "video") -> str:
    """A stable hex digest naming the analysis ``settings`` and ``options`` would run on a ``kind``.

    For an image the frame count cannot change the report, so it is left out. Reads the manifest
    without importing torch.
    """
    from detector.models._manifest import load_manifest, manifest_entry
    from detector.report.schema import SCHEMA_VERSION
    from detector.scoring.fusion.params import default_fusion_path
    from detector.stages import ANALYSIS_VERSION, REPORT_VERSION, resolved_faces

    models = {}
    manifest = load_manifest()
    for role, name in (("face", settings.models.face_model), ("synthetic", settings.models.synthetic_model)):
        if name:
            entry = manifest_entry(name, manifest)
            models[role] = {
                "name": name,
                "sha256": entry.sha256,
                "input": entry.input.model_dump(mode="json"),
                "calibration": None
                if entry.calibration is None
                else entry.calibration.model_dump(mode="json"),
            }
    face_input = manifest_entry(settings.models.face_model, manifest).input.to_spec()
    fusion_path = settings.fusion.fusion_file or default_fusion_path()
    fusion = hashlib.sha256(fusion_path.read_bytes()).hexdigest() if fusion_path.is_file() else None
    parts = {
        "schema": SCHEMA_VERSION,
        "analysis": ANALYSIS_VERSION,
        "report": REPORT_VERSION,
        "models": models,
        "fusion_file": fusion,
        "settings": {
            "faces": resolved_faces(settings, face_input).keyed(),
            "provenance": settings.provenance.model_dump(mode="json"),
            "sampling": settings.sampling.keyed(),
            "fusion": settings.fusion.model_dump(mode="json", exclude={"fusion_file"}),
        },
        "options": {
            "frames": None if kind == "image" else options.frames or settings.sampling.frames,
            "heatmaps": options.heatmaps,
        },
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
