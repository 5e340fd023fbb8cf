"""One settings object for the whole service, read from ``TRUEFRAME_*`` environment variables.

Nested groups use ``__``: ``TRUEFRAME_LIMITS__MAX_IMAGE_BYTES=10000000``. Nothing is read at import
time; call :func:`get_settings` (cached) or build ``Settings()`` explicitly in tests.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from detector.errors import InvalidRequest, SettingsInvalid


class _Group(BaseModel):
    """A settings group: a key it does not have (a misspelt limit in ``TRUEFRAME_LIMITS='{...}'``)
    is refused, not ignored."""

    model_config = ConfigDict(extra="forbid")


class LimitSettings(_Group):
    """Hard limits on what is accepted; exceeding one is a typed 413-class error."""

    max_image_bytes: int = Field(50_000_000, gt=0)
    max_video_bytes: int = Field(250_000_000, gt=0)
    max_pixels: int = Field(
        120_000_000, gt=0, description="width*height, checked from the header (cameras reach 102-108 M)"
    )
    max_video_seconds: float = Field(600.0, gt=0)
    min_side: int = Field(16, ge=1, description="images or videos smaller than this are rejected")
    max_decoded_pixels: int = Field(
        20_000_000_000, gt=0, description="pixels decoded per request (every frame decoded, sampled or not)"
    )
    max_decode_seconds: float = Field(120.0, gt=0, description="decoding time per request")
    frame_max_side: int = Field(
        2048, ge=256, description="sampled frames are scaled down to this longest side"
    )


class _Keyed(_Group):
    """A settings group some of whose fields change only how fast or how batched the work runs."""

    EXECUTION_ONLY: ClassVar[frozenset[str]] = frozenset()

    def keyed(self) -> dict[str, Any]:
        """The fields that change what the stages find: what result and evaluation cache keys hold."""
        return self.model_dump(mode="json", exclude=set(self.EXECUTION_ONLY))


MAX_FRAMES = 512
"""Most timestamps one video may be sampled at: the settings, ``?frames=``, ``--frames`` and
:class:`detector.stages.Options` all refuse more (each frame is decoded, searched and scored)."""


def check_frames(frames: int | None, what: str = "frames") -> None:
    """:class:`InvalidRequest` unless ``frames`` is None (the settings' count) or 1 to :data:`MAX_FRAMES`."""
    if frames is not None and not 1 <= frames <= MAX_FRAMES:
        raise InvalidRequest(f"{what} must be between 1 and {MAX_FRAMES}, not {frames}")


class SamplingSettings(_Keyed):
    EXECUTION_ONLY: ClassVar[frozenset[str]] = frozenset({"decode_threads"})  # same pixels either way

    frames: int = Field(32, ge=1, le=MAX_FRAMES, description="timestamps sampled per video")
    mode: Literal["exact", "keyframes"] = Field(
        "exact", description="exact frames, or the keyframe before each timestamp (batch triage)"
    )
    decode_threads: Literal["slice", "frame"] = Field(
        "slice",
        description=(
            "FFmpeg decoder threading: slice threads, or frame and slice threads (more latency and "
            "memory per frame; on 2 cores the plan ran 3-21% slower with it, see README Performance)"
        ),
    )


class FaceSettings(_Keyed):
    EXECUTION_ONLY: ClassVar[frozenset[str]] = frozenset({"batch_size", "max_batch_pixels"})

    detect_longest_side: int = Field(640, ge=64, description="MTCNN runs on a copy this large")
    min_face_px: int | None = Field(
        None,
        ge=8,
        description=(
            "smallest face side searched and kept, full-resolution px; None: 0.8 x the smallest face the "
            "face model judges (input side / crop margin / 2): 32 px for the shipped model"
        ),
    )
    min_probability: float = Field(0.95, ge=0.0, le=1.0)
    margin: float = Field(1.3, ge=1.0, description="square crop side / face box side")
    batch_size: int = Field(16, ge=1)
    max_batch_pixels: int = Field(
        1_000_000, ge=1, description="pixels of the MTCNN copies in one batch (bounds peak memory)"
    )
    full_detect_every: int = Field(
        4,
        ge=1,
        description=(
            "video: search whole frames on every Nth sampled frame and the last, and follow faces in "
            "small regions between them (detector/faces/plan.py); 1 searches every frame whole"
        ),
    )
    track_iou: float = Field(0.3, ge=0.0, le=1.0)
    track_center_dist: float = Field(0.5, ge=0.0, description="as a fraction of the box side")


def _refuse_blank(value: Any, why: str) -> Any:
    """``value``, unless it is a string of blanks only (a template variable left empty): ``why``."""
    if isinstance(value, str) and not value.strip():
        raise ValueError(why)
    return value


def _no_empty_folder(value: Any) -> Any:
    """A folder setting given empty (``TRUEFRAME_DATA_DIR=``) is refused: it read as ``.``, so the
    store, uploads or weights went to the working folder."""
    return _refuse_blank(value, "an empty folder is the working folder; unset the variable for the default")


class ModelSettings(_Group):
    weights_dir: Path = Field(Path("~/.cache/trueframe"), description="imported/fetched weights cache")
    face_model: str = "effnetlite0.faces4"
    synthetic_model: str | None = "effnetlite0v.synthetic3"

    _weights_dir_not_empty = field_validator("weights_dir", mode="before")(_no_empty_folder)


class ProvenanceSettings(_Group):
    trust_anchors: list[Path] = Field(default_factory=list, description="PEM files of trusted roots")
    allowed_list: Path | None = Field(None, description="PEM file of end-entity certs always trusted")
    trust_config: Path | None = Field(None, description="EKU OID list file")
    remote_manifest_fetch: bool = False
    ocsp_fetch: bool = False


class FusionSettings(_Group):
    """How per-crop and per-frame scores are aggregated and fused (see detector/aggregate.py)."""

    track_rule: Literal["mean", "confident", "top"] = Field(
        "mean",
        description=(
            "per-track rule: mean of logits, the DFDC winner's confident frames, or the mean of the "
            "highest top_share of them"
        ),
    )
    confident_fake: float = Field(0.8, gt=0.5, lt=1.0, description="P(fake) above which a frame is confident")
    confident_real: float = Field(0.2, gt=0.0, lt=0.5, description="P(fake) below which a frame is confident")
    confident_min_frames: int = Field(11, ge=1, description="confident fake frames needed to use them alone")
    top_share: float = Field(
        0.25, gt=0.0, le=1.0, description="rule 'top': share of a series' highest logits averaged (>= one)"
    )
    synthetic_rule: Literal["mean", "confident", "top"] = Field(
        "mean", description="per-video synthetic rule (as track_rule, over frames)"
    )
    fusion_file: Path | None = Field(
        None, description="fitted fusion parameters (default: weights/fusion.toml)"
    )
    heatmap_faces: int = Field(3, ge=1, le=16, description="top face crops that get a Grad-CAM heatmap")

    @field_validator("fusion_file", mode="before")
    @classmethod
    def _empty_is_default(cls, value: Any) -> Any:
        """An empty ``TRUEFRAME_FUSION__FUSION_FILE`` means the shipped file (it read the folder ``.``)."""
        return None if value == "" else value


DEVICE_FORM = re.compile(r"auto|cpu|cuda(:[0-9]+)?")
"""The devices trueframe runs on (``runtime.device``, ``--device``): torch names more (``mps``,
``xpu``, ``meta``), which failed with a traceback deep in a model."""
DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


class RuntimeSettings(_Group):
    device: str = Field("auto", description="'auto', 'cpu' or 'cuda[:N]'")

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        """Only the devices of :data:`DEVICE_FORM`."""
        if not DEVICE_FORM.fullmatch(value):
            raise ValueError(f"use {DEVICE_CHOICES}")
        return value

    precision: Literal["auto", "fp32"] = Field(
        "auto",
        description=(
            "auto: float16 on CUDA for the models validated in it (manifest half_precision), float32 "
            "otherwise; fp32: float32 everywhere"
        ),
    )
    torch_threads: int = Field(0, ge=0, description="0 keeps torch's default")


class ScanSettings(_Group):
    """Where ``trueframe scan`` runs its stages and how it lays them out (results are the same either way)."""

    executor: Literal["auto", "local", "ray"] = Field(
        "auto",
        description=(
            "local: worker threads of the scan's own process, no Ray; ray: Ray Data actor pools "
            "(RAY_ADDRESS's cluster, else a local Ray); auto: local when this machine scans alone "
            "(no RAY_ADDRESS, no GPU, at most 4 CPUs), else ray"
        ),
    )
    layout: Literal["auto", "fused", "staged"] = Field(
        "auto",
        description=(
            "fused: every stage in one actor per item stream (no frames pickled between stages); "
            "staged: one actor pool per stage (GPU actors for faces and models); auto: staged when "
            "the cluster has GPUs, else fused"
        ),
    )
    actors: int = Field(
        0,
        ge=0,
        description="fused actors or local worker threads; 0: one per CPU (Ray cluster's or this machine's)",
    )


class ServeSettings(_Group):
    """The HTTP service: bind address, job queue, retention, access and webhooks (see serving/api.py)."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_queue: int = Field(32, ge=1, description="jobs queued or running (plus sync images) before 429")
    job_workers: int = Field(1, ge=0, description="concurrent jobs; 0 stores jobs without running them")
    retry_after_s: int = Field(10, ge=1, description="Retry-After sent with 429 queue_full")
    wait_timeout_s: float = Field(300.0, gt=0, description="longest ?wait=true holds a request")
    report_ttl_hours: float = Field(
        24.0, gt=0, description="finished jobs and cached reports are kept this long"
    )
    purge_interval_s: float = Field(600.0, gt=0)
    job_stale_s: float = Field(
        90.0,
        gt=0,
        description=(
            "a running job whose worker has not touched its heartbeat for this long is put back in the "
            "queue (checked at start and every third of it while running)"
        ),
    )
    api_keys_required: bool = Field(
        False, description="require a key (or a key-bound session) even while no key exists yet"
    )
    allow_anonymous: bool = Field(
        False,
        description="stay open to anonymous use after keys exist (off: once a key exists, keys are needed)",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="the service's log lines on stderr at this level and above"
    )
    metrics_public: bool = Field(
        False, description="serve /metrics without a key (off: an admin key is needed once keys exist)"
    )
    session_ttl_hours: float = Field(12.0, gt=0, description="web form session cookie lifetime")
    header_timeout_s: float = Field(10.0, gt=0, description="a request's head must arrive within this")
    body_timeout_s: float = Field(30.0, gt=0, description="longest pause between two chunks of a body")
    keep_alive_s: float = Field(5.0, gt=0, description="idle keep-alive connections are closed after this")
    max_connections: int = Field(128, ge=1, description="open connections beyond this are refused (503)")
    cors_origins: list[str] = Field(default_factory=list, description="empty: CORS off")
    callback_allow_private: bool = Field(False, description="allow webhooks to loopback/private addresses")
    webhook_secret: str | None = Field(
        None,
        description=(
            "signs webhooks of jobs made without an API key (each key has its own); an empty one is "
            "refused: it signed callbacks with an empty HMAC key anyone could forge"
        ),
    )
    webhook_max_attempts: int = Field(5, ge=1)

    @field_validator("webhook_secret", mode="before")
    @classmethod
    def _secret_not_blank(cls, value: Any) -> Any:
        """Empty or blanks only: an HMAC key anyone can forge."""
        return _refuse_blank(
            value, "an empty webhook secret, or one of blanks, signs callbacks anyone can forge"
        )

    webhook_backoff_s: float = Field(2.0, gt=0, description="first retry delay; doubles each attempt")
    webhook_timeout_s: float = Field(10.0, gt=0)
    light_stages_in_ingress: bool = Field(
        True,
        description=(
            "Ray Serve: images are decoded and their provenance read in the ingress replica (two fewer "
            "Ray hops and no pickled frame sent back); videos always go to the media deployment"
        ),
    )


class Settings(BaseSettings):
    """All trueframe settings; see README 'Configuration'."""

    model_config = SettingsConfigDict(env_prefix="TRUEFRAME_", env_nested_delimiter="__", extra="ignore")

    limits: LimitSettings = Field(default_factory=LimitSettings)
    sampling: SamplingSettings = Field(default_factory=SamplingSettings)
    faces: FaceSettings = Field(default_factory=FaceSettings)
    models: ModelSettings = Field(default_factory=ModelSettings)
    provenance: ProvenanceSettings = Field(default_factory=ProvenanceSettings)
    fusion: FusionSettings = Field(default_factory=FusionSettings)
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    scan: ScanSettings = Field(default_factory=ScanSettings)
    data_dir: Path = Field(Path(".trueframe-data"), description="job store, uploads, scan state")
    database_url: str | None = Field(
        None,
        description="postgresql://user:pass@host/db: a store replicas share (unset: SQLite in data_dir)",
    )

    _data_dir_not_empty = field_validator("data_dir", mode="before")(_no_empty_folder)


_SECRET_WORDS = ("secret", "password", "token", "url", "key")
"""A refused setting whose name holds one of these is named without its value (a database URL holds
its password, a webhook secret is one)."""


PREFIX = "TRUEFRAME_"
NOT_SETTINGS = frozenset({"TRUEFRAME_TEST_DATABASE_URL"})
"""``TRUEFRAME_*`` variables that are not settings (the test suite's database)."""


def _members(field: str) -> list[str]:
    """The settings of group ``field`` (``limits`` -> ``max_image_bytes``, ...); none for a plain one."""
    kind = Settings.model_fields[field].annotation
    return sorted(kind.model_fields) if isinstance(kind, type) and issubclass(kind, BaseModel) else []


def setting_names() -> dict[str, frozenset[str]]:
    """Every settings variable: a group's own name (its JSON form) -> the names of its members."""
    return {
        PREFIX + field.upper(): frozenset(f"{PREFIX}{field}__{m}".upper() for m in _members(field))
        for field in Settings.model_fields
    }


def check_setting_names(environ: Mapping[str, str]) -> None:
    """:class:`~detector.errors.SettingsInvalid` for a ``TRUEFRAME_*`` variable that names no setting
    (a misspelt limit was silently ignored) or a group set both as JSON and member by member (one
    form silently won)."""
    names = setting_names()
    known = set(names) | {m for members in names.values() for m in members} | NOT_SETTINGS
    given = {name.upper() for name in environ if name.upper().startswith(PREFIX)}
    problems = []
    for name in sorted(given - known):
        close = difflib.get_close_matches(name, sorted(known), n=1)
        problems.append(f"{name} is not a setting" + (f" (did you mean {close[0]}?)" if close else ""))
    for group, members in names.items():
        if group in given and (both := sorted(given & members)):
            problems.append(f"{group} and {', '.join(both)} both set it: use one form")
    if problems:
        raise SettingsInvalid("; ".join(problems) + " (see README 'Configuration')")


def _unknown_key(group: str, key: str) -> str:
    """A key of ``TRUEFRAME_<GROUP>``'s JSON that is none of its settings, with the closest one."""
    close = difflib.get_close_matches(key, _members(group), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{PREFIX}{group.upper()}: {key!r} is not one of its settings{hint}"


def load_settings() -> Settings:
    """Settings from the environment; a refused value or name is
    :class:`~detector.errors.SettingsInvalid` naming each variable, its value and why (not
    pydantic's traceback)."""
    check_setting_names(os.environ)
    try:
        return Settings()
    except SettingsError as exc:  # a value that is not even JSON where a list or object is due
        raise SettingsInvalid(_not_json(exc, os.environ)) from None
    except ValidationError as exc:
        given = {name.upper() for name in os.environ}
        problems = []
        for error in exc.errors():
            path = [str(part) for part in error["loc"]]
            name = "TRUEFRAME_" + "__".join(path[:2]).upper()  # a variable; deeper parts are its items
            item = f" (item {'.'.join(path[2:])})" if len(path) > 2 else ""
            if error["type"] == "extra_forbidden" and len(path) == 2:  # a key of a group's JSON form
                problems.append(_unknown_key(path[0], path[1]))
                continue
            secret = any(word in part.lower() for part in path for word in _SECRET_WORDS)
            value = "(hidden)" if secret else repr(error.get("input"))
            group = PREFIX + path[0].upper()
            if len(path) > 1 and group in given and name not in given:  # set through the group's JSON
                problems.append(f"{group} (key {'.'.join(path[1:])!r}: {value}): {error['msg']}")
            else:
                problems.append(f"{name}{item}={value}: {error['msg']}")
        raise SettingsInvalid("; ".join(problems)) from None


def _takes_json(group: str, member: str | None) -> bool:
    """Whether the variable of ``group`` (or of its ``member``) is read as JSON: a group's own name,
    or a member that is a list, set, mapping or settings object."""
    if member is None:
        return True
    group_type = Settings.model_fields[group].annotation
    fields = (
        group_type.model_fields if isinstance(group_type, type) and issubclass(group_type, BaseModel) else {}
    )
    kind = fields[member].annotation if member in fields else None
    listed = getattr(kind, "__origin__", None) in (list, set, frozenset, tuple, dict)
    return listed or (isinstance(kind, type) and issubclass(kind, BaseModel))


def _not_json(exc: SettingsError, environ: Mapping[str, str]) -> str:
    """The variables of the group pydantic-settings names in ``exc`` whose JSON does not parse,
    with their values (hidden for secrets) and the parser's reason; pydantic-settings names only
    the group ("error parsing value for field "serve" from source ...")."""
    found = re.search(r'field "(\w+)"', str(exc))
    group = found.group(1) if found else ""
    problems = []
    for variable, value in sorted(environ.items()):
        upper = variable.upper()
        if group not in Settings.model_fields or not upper.startswith(PREFIX + group.upper()):
            continue
        member = upper.removeprefix(PREFIX + group.upper())
        if member and (not member.startswith("__") or member[2:].lower() not in _members(group)):
            continue
        name = member[2:].lower() if member else None
        if not _takes_json(group, name):
            continue
        try:
            json.loads(value)
        except ValueError as err:
            # a group's JSON holds its members' values: hidden when any member is a secret
            names = [name] if name is not None else _members(group)
            secret = any(word in part for part in names for word in _SECRET_WORDS)
            problems.append(f"{upper}={'(hidden)' if secret else repr(value)}: not JSON ({err})")
    if not problems:  # not traced to one variable: pydantic-settings' own words
        cause = f": {exc.__cause__}" if exc.__cause__ is not None else ""
        problems.append(f"{exc}{cause}")
    return "; ".join(problems) + " (a list or object setting takes JSON)"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once on first use."""
    return load_settings()
