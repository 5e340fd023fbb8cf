"""The weights manifest (``weights/manifest.toml``): one strict entry per ``arch.tag`` model.

An entry holds everything that belongs to a checkpoint rather than to code: task, architecture,
input spec, the weights file and its sha256, where the file comes from, licence, training data,
measured metrics and calibration. It is read with ``tomllib``, validated strictly (unknown keys
are errors) and cached per path; nothing is read until first asked for.
"""

from __future__ import annotations

import re
import tomllib
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from detector.errors import InvalidRequest, ModelError, UnknownModel
from detector.models.spec import InputSpec, Interpolation

MANIFEST_PACKAGE = "weights"
MANIFEST_FILE = "manifest.toml"

_SHA256 = r"^[0-9a-f]{64}$"
_NAME = r"^[a-z][a-z0-9_]*\.[a-z0-9][a-z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputConfig(_Strict):
    """The ``input`` table; see :class:`detector.models.base.InputSpec`."""

    size: tuple[int, int] = Field(description="(height, width)")
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    value_range: tuple[float, float] = (0.0, 1.0)
    crop_margin: float | None = Field(None, ge=1.0)
    interpolation: Interpolation = "area"

    @field_validator("size")
    @classmethod
    def _positive_size(cls, value: tuple[int, int]) -> tuple[int, int]:
        if min(value) < 1:
            raise ValueError("input size must be positive")
        return value

    @field_validator("std")
    @classmethod
    def _nonzero_std(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(v == 0 for v in value):
            raise ValueError("std must not contain 0")
        return value

    def to_spec(self) -> InputSpec:
        """The frozen runtime spec the classifier preprocesses with."""
        return InputSpec(
            size=self.size,
            mean=self.mean,
            std=self.std,
            crop_margin=self.crop_margin,
            value_range=self.value_range,
            interpolation=self.interpolation,
        )


class Source(_Strict):
    """Where the weights file comes from.

    ``shipped``: the file lives in the ``weights`` package. ``import``: a third-party checkpoint,
    converted by the importer named ``importer`` from ``upstream_file`` (downloadable from any of
    ``upstream_urls``; its sha256 is ``upstream_sha256``).
    """

    kind: Literal["shipped", "import"]
    importer: str | None = None
    upstream_file: str | None = None
    upstream_urls: tuple[str, ...] = ()
    upstream_sha256: str | None = Field(None, pattern=_SHA256)
    notice: str | None = Field(None, description="attribution the licence asks to keep")

    @model_validator(mode="after")
    def _import_fields(self) -> Source:
        needed = ("importer", "upstream_file", "upstream_sha256")
        if self.kind == "import" and (missing := [f for f in needed if getattr(self, f) is None]):
            raise ValueError(f"source kind 'import' needs {', '.join(missing)}")
        if self.kind == "import" and not self.upstream_urls:
            raise ValueError("source kind 'import' needs at least one upstream_urls entry")
        if self.kind == "shipped" and (self.importer or self.upstream_urls):
            raise ValueError("shipped weights take no importer or upstream_urls")
        return self


class Calibration(_Strict):
    """How raw logits map to calibrated probabilities (fitted by the calibration scripts)."""

    method: Literal["platt", "temperature", "isotonic"]
    parameters: dict[str, float | list[float]]
    fitted_on: str
    n: int = Field(0, ge=0, description="samples the parameters were fitted on")
    ece_before: float | None = Field(None, ge=0.0, le=1.0, description="ECE of the raw sigmoid, held out")
    ece_after: float | None = Field(None, ge=0.0, le=1.0, description="ECE after calibration, held out")


class ModelEntry(_Strict):
    """One ``[models."arch.tag"]`` table."""

    task: Literal["face_forgery", "synthetic_image"]
    arch: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = ""
    input: InputConfig
    file: str = Field(pattern=r"^[A-Za-z0-9_.-]+\.safetensors$")
    sha256: str = Field(pattern=_SHA256)
    raw_logit_positive: Literal["fake", "real"] = Field(
        "fake", description="the class the network's raw pre-sigmoid output is the log-odds of"
    )
    source: Source
    licence: str
    training_data: str
    paper: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    calibration: Calibration | None = None
    half_precision: bool = Field(
        False,
        description=(
            "validated in float16: its probabilities stay within 1e-2 of float32 on real media "
            "(tests/integration/test_half_precision.py); precision 'auto' runs it so on CUDA"
        ),
    )


class Manifest(_Strict):
    """The whole manifest file."""

    schema_version: Literal[1]
    models: dict[str, ModelEntry]

    @model_validator(mode="after")
    def _names_match_arch(self) -> Manifest:
        for name, entry in self.models.items():
            if not re.fullmatch(_NAME, name):
                raise ValueError(f"model name {name!r} is not 'arch.tag' (lower case, [a-z0-9_])")
            if name.split(".", 1)[0] != entry.arch:
                raise ValueError(f"model {name!r} names arch {entry.arch!r}; the prefix must match")
            if entry.file != f"{name}.safetensors":
                raise ValueError(f"model {name!r}: file must be {name}.safetensors, not {entry.file!r}")
        return self

    def family(self, importer: str) -> dict[str, ModelEntry]:
        """Entries converted by ``importer`` (e.g. ``mesonet``), by name."""
        return {n: e for n, e in self.models.items() if e.source.importer == importer}


def default_manifest_path() -> Path:
    """``manifest.toml`` inside the installed ``weights`` package."""
    try:
        return Path(str(resources.files(MANIFEST_PACKAGE).joinpath(MANIFEST_FILE)))
    except ModuleNotFoundError as exc:
        raise ModelError(f"package {MANIFEST_PACKAGE!r} ({MANIFEST_FILE}) is not installed") from exc


def load_manifest(path: Path | None = None) -> Manifest:
    """The validated manifest at ``path`` (default: the shipped one), read once per path."""
    return _load(str((path or default_manifest_path()).resolve()))


def manifest_entry(name: str, manifest: Manifest | None = None) -> ModelEntry:
    """The manifest entry of ``name`` without the model registry (which imports every architecture
    and so torch): for callers that only read what the manifest says about a model."""
    models = (manifest or load_manifest()).models
    if name not in models:
        raise UnknownModel(f"unknown model {name!r}; known: {', '.join(sorted(models))}")
    return models[name]


ROLE_TASKS: dict[str, Literal["face_forgery", "synthetic_image"]] = {
    "face_model": "face_forgery",
    "synthetic_model": "synthetic_image",
}
"""The task a model must be trained for to fill each role of the settings' ``models`` group."""


def role_entry(role: str, name: str, manifest: Manifest | None = None) -> ModelEntry:
    """The manifest entry of ``name`` checked for ``role``: a synthetic-image model named as the face
    model (or the other way round) would be scored and worded as the wrong detector."""
    entry = manifest_entry(name, manifest)
    wanted = ROLE_TASKS[role]
    if entry.task != wanted:
        raise InvalidRequest(f"{name} is a {entry.task} model; {role} needs a {wanted} model")
    return entry


def check_roles(face_model: str, synthetic_model: str | None) -> list[ModelEntry]:
    """The manifest entries of the configured models, each checked for the role it fills
    (:func:`role_entry`); the synthetic-image model only when one is set."""
    named = (("face_model", face_model), ("synthetic_model", synthetic_model))
    return [role_entry(role, name) for role, name in named if name]


@lru_cache(maxsize=8)
def _load(path: str) -> Manifest:
    return read_validated_toml(path, Manifest, "weights manifest")


ModelT = TypeVar("ModelT", bound=BaseModel)


def read_validated_toml(path: str | Path, model: type[ModelT], what: str) -> ModelT:
    """A TOML file validated as ``model``; unreadable or invalid files are a ``ModelError``."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ModelError(f"cannot read {what} {path}: {exc}") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:  # one line per field, not pydantic's multi-line dump
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'file'}: {e['msg']}" for e in exc.errors())
        raise ModelError(f"invalid {what} {path}: {problems}") from exc
