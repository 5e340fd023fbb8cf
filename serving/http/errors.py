"""Typed errors of the HTTP service (codes are public API, like those of :mod:`detector.errors`)."""

from __future__ import annotations

from typing import Any

from detector.errors import LimitExceeded, TrueframeError

MAX_ECHOED_CHARS = 64
"""Longest client-sent id or name a ``*_not_found`` message repeats (a 10,000-character id is cut)."""


def echoed(value: str) -> str:
    """``value`` quoted for an error message, cut after :data:`MAX_ECHOED_CHARS` characters."""
    return f"{value[:MAX_ECHOED_CHARS]!r}" + (" (cut)" if len(value) > MAX_ECHOED_CHARS else "")


class Unauthorized(TrueframeError):
    """No valid API key or session: send ``Authorization: Bearer <key>`` or ``X-API-Key``."""

    code = "unauthorized"
    http_status = 401


class RequestTimeout(TrueframeError):
    """The client stopped sending its request body for longer than ``serve.body_timeout_s``."""

    code = "request_timeout"
    http_status = 408


class Forbidden(TrueframeError):
    """A valid key whose role does not allow this (e.g. metrics without an admin key)."""

    code = "forbidden"
    http_status = 403


class ServiceUnavailable(TrueframeError):
    """A stage of the service stayed unavailable after bounded retries; retry later."""

    code = "service_unavailable"
    http_status = 503


class JobNotFound(TrueframeError):
    """Unknown job id, or a job that belongs to another key (never told apart)."""

    code = "job_not_found"
    http_status = 404


class NotFound(TrueframeError):
    code = "not_found"
    http_status = 404


class MethodNotAllowed(TrueframeError):
    code = "method_not_allowed"
    http_status = 405


class PayloadTooLarge(LimitExceeded):
    """The request body passed the upload limit while it was still streaming in."""

    code = "payload_too_large"
    http_status = 413


class QueueFull(TrueframeError):
    """Too many jobs are waiting; retry after ``retry_after`` seconds."""

    code = "queue_full"
    http_status = 429

    def __init__(self, message: str, retry_after: int, **details: Any) -> None:
        super().__init__(message, retry_after=retry_after, **details)
        self.retry_after = retry_after


class MediaLost(TrueframeError):
    """A job's upload was gone when its analysis was to start (a data folder cleaned, a node whose
    folder another node cannot read): upload it again. Only ever a job's outcome; ``?wait=true``
    answers with it (it was a 500, the status of a bug)."""

    code = "media_lost"
    http_status = 410


class NotReady(TrueframeError):
    code = "not_ready"
    http_status = 503


def status_of(code: str) -> int:
    """The HTTP status of an error code (500 for a code no typed error declares)."""
    from detector.errors import all_error_classes

    return next((c.http_status for c in all_error_classes() if c.code == code), 500)


class Conflict(TrueframeError):
    """The request does not fit the resource's state (e.g. reviewing a job that has no report yet)."""

    code = "conflict"
    http_status = 409


class AppealNotFound(TrueframeError):
    """Unknown appeal id, or another key's appeal (never told apart)."""

    code = "appeal_not_found"
    http_status = 404


class ListNotFound(TrueframeError):
    """No hash list of that name."""

    code = "list_not_found"
    http_status = 404


class KeyNotFound(TrueframeError):
    """No API key with that id."""

    code = "key_not_found"
    http_status = 404
