"""The labelled calibration sets of ``scripts/calibrate.py``, scored with the models being calibrated.

* **Faces** (face model): the identity-disjoint validation faces of the face training config
  (``val_groups`` of the MTCNN face cache, never trained on). Each face gives ``variants`` real
  crops and ``variants`` self-blended crops (different blend seeds); variant ``k > 0`` passes both
  through the same JPEG re-compression, so compression is never the cue. The synthetic-image
  model, when given, scores the face's whole original photo (what the pipeline feeds it).
* **Synthetic** (synthetic-image model): real photographs the synthetic model never trained on
  (``real_subsets`` of ``../shared/data/synthetic/real``) against every generated image in
  ``../shared/data/synthetic/generated``. With ``detect_faces`` the face model also scores the
  faces MTCNN finds there (item face logit as in the pipeline), so the fused stack sees items with
  both signals; items without a face keep the face signal missing (NaN), never zero.

Rows carry a ``group`` (source photo) so the held-out split never splits a photo's variants.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from datasets.augment import jpeg_recompress
from datasets.face_cache import FaceCache, center_crop, image_files, load_rgb
from datasets.self_blend import self_blend
from detector.models.base import Classifier
from scripts.calibrate import DEFAULT_REAL_SUBSETS

JPEG_QUALITIES = (90, 75, 60)


@dataclass
class ScoredSet:
    """Raw logits per item (NaN: signal missing), 0/1 labels, split groups and a name per set."""

    name: str
    face: list[float] = field(default_factory=list)
    synthetic: list[float] = field(default_factory=list)
    labels: list[float] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    strata: list[str] = field(default_factory=list)

    def add(self, face: float, synthetic: float, label: float, group: str, stratum: str) -> None:
        self.face.append(face)
        self.synthetic.append(synthetic)
        self.labels.append(label)
        self.groups.append(group)
        self.strata.append(stratum)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(face, synthetic, labels) as float64 arrays."""
        return (
            np.asarray(self.face, np.float64),
            np.asarray(self.synthetic, np.float64),
            np.asarray(self.labels, np.float64),
        )


def face_set(
    cache: FaceCache,
    val_groups: Sequence[str],
    face_model: Classifier,
    synthetic_model: Classifier | None,
    variants: int = 3,
    seed: int = 0,
) -> ScoredSet:
    """Real and self-blended crops of the validation faces, scored by the face model."""
    if face_model.spec.crop_margin is None:
        raise SystemExit(f"{face_model.name} has no crop_margin: not a face model")
    keep = [i for i, g in enumerate(cache.groups) if any(g.startswith(p) for p in val_groups)]
    if not keep:
        raise SystemExit(f"no face in the cache belongs to the validation groups {list(val_groups)}")
    rng = np.random.default_rng(seed)
    size, margin = face_model.spec.size[0], face_model.spec.crop_margin
    crops: list[np.ndarray] = []
    labels: list[float] = []
    owners: list[int] = []
    for i in tqdm(keep, desc="self-blending", leave=False):
        context = cache.crops[i]
        for k in range(variants):
            fake = self_blend(context, cache.boxes[i], cache.landmarks[i], rng).image
            pair = [center_crop(im, cache.context_margin, margin, size) for im in (context, fake)]
            if k > 0:
                quality = JPEG_QUALITIES[(k - 1) % len(JPEG_QUALITIES)]
                pair = [jpeg_recompress(im, quality) for im in pair]
            crops += pair
            labels += [0.0, 1.0]
            owners += [i, i]
    logits = face_model.predict(crops)
    synth_by_source: dict[str, float] = {}
    if synthetic_model is not None:
        for source in tqdm(sorted({cache.sources[i] for i in keep}), desc="synthetic on photos", leave=False):
            synth_by_source[source] = float(synthetic_model.predict([load_rgb(Path(source))])[0])
    out = ScoredSet("faces")
    for logit, label, i in zip(logits, labels, owners, strict=True):
        source = cache.sources[i]
        out.add(float(logit), synth_by_source.get(source, float("nan")), label, source, cache.groups[i])
    return out


def _item_face_logit(image: np.ndarray, face_model: Classifier, extractor: object) -> float:
    """The pipeline's item face logit for one image (raw logits, weighted by face side); NaN if no face."""
    from detector.faces.extract import FaceExtractor, crop_face
    from detector.scoring.aggregate import TrackEvidence, item_logit

    assert isinstance(extractor, FaceExtractor)
    dets = extractor.detect([image])[0]
    if not dets:
        return float("nan")
    margin = face_model.spec.crop_margin or 1.3
    crops = [crop_face(image, det.box, margin, face_model.spec.size[0]) for det in dets]
    logits = face_model.predict(crops)
    value = item_logit([TrackEvidence([float(v)], float(d.side)) for v, d in zip(logits, dets, strict=True)])
    return float("nan") if value is None else value


def synthetic_set(
    real_root: Path,
    generated_root: Path,
    synthetic_model: Classifier,
    face_model: Classifier | None,
    real_subsets: Sequence[str] = DEFAULT_REAL_SUBSETS,
    detect_faces: bool = True,
) -> ScoredSet:
    """Held-out real photos (label 0) and generated images (label 1), scored whole."""
    items = [(p, 0.0, f"real/{s}") for s in real_subsets for p in image_files(real_root / s)]
    items += [
        (p, 1.0, f"generated/{p.relative_to(generated_root).parts[0]}") for p in image_files(generated_root)
    ]
    if not items:
        raise SystemExit(f"no images under {real_root} / {generated_root}")
    extractor = None
    if detect_faces and face_model is not None:
        from detector.faces.extract import FaceExtractor
        from detector.settings import FaceSettings

        extractor = FaceExtractor(FaceSettings(), device=face_model.device)
    out = ScoredSet("synthetic")
    for path, label, stratum in tqdm(items, desc="synthetic set", leave=False):
        image = load_rgb(path)
        synth = float(synthetic_model.predict([image])[0])
        face = float("nan")
        if extractor is not None and face_model is not None:
            face = _item_face_logit(image, face_model, extractor)
        out.add(face, synth, label, str(path), stratum)
    return out


def split_groups(
    groups: Sequence[str], strata: Sequence[str], labels: Sequence[float] | np.ndarray, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (fit, held_out): half of the groups of every stratum held out, seeded.

    A group (a source photo) never straddles the split. Groups are split within each stratum
    (a collection such as ``faces/kair_real_faces`` or ``generated/stylegan2_cat``) and within each
    label set, so both halves hold the same mix of collections and classes.
    """
    rng = np.random.default_rng(seed)
    kinds: dict[str, set[tuple[str, float]]] = {}
    for g, st, y in zip(groups, strata, labels, strict=True):
        kinds.setdefault(g, set()).add((st, float(y)))
    held_groups: set[str] = set()
    for kind in sorted({tuple(sorted(v)) for v in kinds.values()}):
        members = sorted(g for g, v in kinds.items() if tuple(sorted(v)) == kind)
        order = rng.permutation(len(members))
        held_groups.update(members[j] for j in order[: len(members) // 2])
    held = np.asarray([g in held_groups for g in groups], dtype=bool)
    return ~held, held
