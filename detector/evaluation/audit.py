"""``trueframe audit``: false-positive rates of the verdict bands on real faces, per demographic group.

The faces are UTKFace photos held out of every training run (:func:`datasets.face_training.is_audit_face`:
a stable 15% by file name), staged with ``python -m datasets.staging stage --only utkface``. Each is
analysed end to end, like a user's upload; a real face given ``manipulated``, ``ai_generated`` or
``likely_manipulated`` is a false positive of that band. Groups come from the UTKFace file names
(``age_gender_race_date``): age bands, gender (0 male, 1 female) and race (0 White, 1 Black,
2 Asian, 3 Indian, 4 Others, the dataset's own coarse labels). Every rate has an exact 95% binomial
interval; the table states the worst-to-best ratio of the accusing rate across groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detector.errors import InvalidRequest
from detector.evaluation.suite import rate_ci

if TYPE_CHECKING:
    from detector.settings import Settings

AGE_BANDS = (
    (0, 12, "0-12"),
    (13, 19, "13-19"),
    (20, 29, "20-29"),
    (30, 39, "30-39"),
    (40, 49, "40-49"),
    (50, 59, "50-59"),
    (60, 200, "60+"),
)
GENDERS = {"0": "male", "1": "female"}
RACES = {"0": "White", "1": "Black", "2": "Asian", "3": "Indian", "4": "Others"}
FALSE_POSITIVE_BANDS = ("manipulated", "ai_generated", "likely_manipulated")


@dataclass(frozen=True)
class AuditFace:
    """One held-out real face, its groups and the verdict the service gave it."""

    path: Path
    age: str
    gender: str
    race: str
    verdict: str = ""


def age_band(age: int) -> str:
    """The age band an age falls in."""
    return next(name for lo, hi, name in AGE_BANDS if lo <= age <= hi)


def audit_faces(utk_dir: Path, limit: int | None = None) -> list[AuditFace]:
    """The held-out UTKFace photos under ``utk_dir`` with their labels (files without labels skipped)."""
    from datasets.face_pool import utk_tag
    from datasets.face_training import is_audit_face

    faces = []
    for path in sorted(utk_dir.glob("*.jpg")):
        tag = dict(kv.split("=") for kv in utk_tag(path.name).split(";") if kv)
        if (
            tag
            and is_audit_face(f"utkface/{path.name.split('.')[0]}")
            and tag["gender"] in GENDERS
            and tag["race"] in RACES
        ):
            faces.append(
                AuditFace(path, age_band(int(tag["age"])), GENDERS[tag["gender"]], RACES[tag["race"]])
            )
    if not faces:
        raise InvalidRequest(
            f"no held-out UTKFace photos in {utk_dir}; stage them first "
            "(python -m datasets.staging stage --only utkface)"
        )
    from detector.evaluation.checks import evenly_spaced

    return evenly_spaced(faces, limit)  # over the name-sorted list: every age, gender and race stays


def group_rates(faces: Sequence[AuditFace]) -> dict[str, Any]:
    """Per attribute and group: n and the false-positive rate of each band (value, 95% interval)."""
    out: dict[str, Any] = {}
    for attribute in ("age", "gender", "race"):
        table = {}
        for group in sorted({getattr(f, attribute) for f in faces}):
            mine = [f for f in faces if getattr(f, attribute) == group]
            row: dict[str, Any] = {"n": len(mine)}
            for band in FALSE_POSITIVE_BANDS:
                row[band] = rate_ci([f.verdict == band for f in mine])
            row["any_accusing"] = rate_ci([f.verdict in FALSE_POSITIVE_BANDS for f in mine])
            table[group] = row
        rates = [r["any_accusing"][0] for r in table.values() if r["n"] >= 20]
        best, worst = (min(rates), max(rates)) if rates else (0.0, 0.0)
        out[attribute] = {
            "groups": table,
            "worst_to_best": None if best == 0 else round(worst / best, 3),
            "best": best,
            "worst": worst,
        }
    return out


def run_audit(
    settings: Settings, utk_dir: Path, cache: Path, out: Path, limit: int | None = None
) -> dict[str, Any]:
    """Analyse every held-out face (stage outputs cached) and tabulate the rates per group."""
    from dataclasses import replace

    from tqdm import tqdm

    from detector.evaluation.collect import OutputCache
    from detector.evaluation.suite import write_json
    from detector.pipeline import Pipeline

    faces = audit_faces(utk_dir, limit)
    pipeline = Pipeline(settings)
    outputs = OutputCache(cache, settings, None, None)
    judged, failed = [], []
    for face in tqdm(faces, desc="audit", leave=False):
        found = outputs.get(pipeline, face.path)
        if found.outputs is None:  # not a face the service judged: no place in a false-positive rate
            failed.append({"path": str(face.path), "error": found.error or "no stage outputs"})
            continue
        judged.append(replace(face, verdict=pipeline.assembler.build(found.outputs).score.verdict))
    result = {"n": len(judged), "failed": failed, "attributes": group_rates(judged)}
    out.mkdir(parents=True, exist_ok=True)
    write_json(result, out / "audit.json")
    (out / "audit.md").write_text(render_audit(result), encoding="utf-8")
    return result


def render_audit(result: dict[str, Any]) -> str:
    """Markdown tables, one per attribute."""
    failed = result.get("failed", [])
    left_out = f" ({len(failed)} more could not be analysed and are left out)" if failed else ""
    lines = [
        f"{result['n']} held-out real UTKFace faces{left_out}; false-positive rate per band, "
        "exact 95% binomial interval.",
        "",
    ]
    for attribute, table in result["attributes"].items():
        lines += [
            f"| {attribute} | n | manipulated | ai_generated | likely_manipulated | any of them |",
            "|---|---|---|---|---|---|",
        ]
        for group, row in table["groups"].items():
            cells = [
                f"{v[0]:.1%} [{v[1]:.1%}, {v[2]:.1%}]"
                for v in (row[b] for b in (*FALSE_POSITIVE_BANDS, "any_accusing"))
            ]
            lines.append(f"| {group} | {row['n']} | " + " | ".join(cells) + " |")
        ratio = table["worst_to_best"]
        large = any(row["n"] >= 20 for row in table["groups"].values())
        why = "best is 0" if large else "no group of 20+"
        spread = f"{ratio:.2f}x" if ratio is not None else f"undefined ({why})"
        lines += ["", f"Worst / best group (any accusing band, groups of 20+): {spread}", ""]
    return "\n".join(lines)
