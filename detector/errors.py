"""Typed errors for everything that can go wrong with user input or local setup.

Every error has a stable string ``code`` (part of the public API: the CLI prints it, the HTTP
layer returns it in ``{"error": {"code", "message"}}``) and the HTTP status it maps to.
"""

from __future__ import annotations

from typing import Any, ClassVar


class TrueframeError(Exception):
    """Base of every error trueframe raises on purpose."""

    code: ClassVar[str] = "trueframe_error"
    http_status: ClassVar[int] = 400

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The JSON body the API returns for this error."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = {k: v for k, v in self.details.items() if _jsonable(v)}
        return body

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def _jsonable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) or value is None


class MediaError(TrueframeError):
    """The submitted bytes cannot be analysed."""

    code = "media_error"
    http_status = 422


class UnsupportedMediaType(MediaError):
    code = "unsupported_media_type"
    http_status = 415


class EmptyMedia(MediaError):
    code = "empty_media"


class CorruptMedia(MediaError):
    code = "corrupt_media"


class MediaTooSmall(MediaError):
    """Images or videos too small to hold any evidence (e.g. 1x1 pixels)."""

    code = "media_too_small"


class NoVideoStream(MediaError):
    code = "no_video_stream"


class NoFramesDecoded(MediaError):
    code = "no_frames_decoded"


class LimitExceeded(MediaError):
    """A configured limit (bytes, pixels, duration) was exceeded."""

    code = "limit_exceeded"
    http_status = 413


class MediaTooLarge(LimitExceeded):
    code = "media_too_large"


class TooManyPixels(LimitExceeded):
    code = "too_many_pixels"


class VideoTooLong(LimitExceeded):
    code = "video_too_long"


class DecodeBudgetExceeded(LimitExceeded):
    """Decoding this request needed more pixels than its budget (``limits.max_decoded_pixels``)."""

    code = "decode_budget_exceeded"


class DecodeTimeExceeded(LimitExceeded):
    """Decoding this request took longer than ``limits.max_decode_seconds``."""

    code = "decode_time_exceeded"


class ModelError(TrueframeError):
    """A model or its weights are not usable."""

    code = "model_error"
    http_status = 503


class UnknownModel(ModelError):
    code = "unknown_model"
    http_status = 400


class DuplicateModel(ModelError):
    code = "duplicate_model"
    http_status = 500


class WeightsMissing(ModelError):
    code = "weights_missing"


class WeightsChecksumMismatch(ModelError):
    code = "weights_checksum_mismatch"


class ProvenanceError(TrueframeError):
    """A C2PA manifest is present but cannot be parsed (reported as state ``unreadable``)."""

    code = "provenance_unreadable"
    http_status = 422


class ProvenanceConfigError(TrueframeError):
    """The provenance trust settings point at a missing or unusable file (bad PEM, bad list)."""

    code = "provenance_config_invalid"
    http_status = 500


class InvalidRequest(TrueframeError):
    code = "invalid_request"
    http_status = 400


class SourceUnreadable(InvalidRequest):
    """A file named by a batch scan cannot be opened or read (missing, no permission, network)."""

    code = "source_unreadable"
    http_status = 404


class StoreUnavailable(TrueframeError):
    """The job store's database cannot be reached (down, restarting, unreachable, locked too long).

    A transient condition, not a bug: the service answers 503 with ``Retry-After``; the command
    line prints it as one line and exits with 2.
    """

    code = "store_unavailable"
    http_status = 503
    retry_after: ClassVar[int] = 5


class SettingsInvalid(TrueframeError):
    """A setting (``TRUEFRAME_*`` variable) has a value its field refuses: the process cannot start."""

    code = "settings_invalid"
    http_status = 500


class InternalError(TrueframeError):
    """An unexpected failure (a bug): the service answers 500, a scan records it on the item's row."""

    code = "internal_error"
    http_status = 500


def all_error_classes() -> list[type[TrueframeError]]:
    """Every error class, base first; used to document and test the code table."""
    seen: list[type[TrueframeError]] = []
    stack: list[type[TrueframeError]] = [TrueframeError]
    while stack:
        cls = stack.pop(0)
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return seen


OPERATOR_ERRORS: tuple[type[TrueframeError], ...] = (
    ModelError,
    ProvenanceConfigError,
    SettingsInvalid,
    InternalError,
)
"""Typed errors that are the service's configuration at fault (weights, models, trust files,
settings): logged at ERROR when a request or job meets them. A service not ready yet, a stage or
store briefly unavailable are not: a readiness probe during warm-up logged ERROR on every call."""
