"""A job as the store holds it, and the shape of job ids (no database code here)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
FINISHED: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})

JOB_ID = re.compile(r"job_[A-Za-z0-9_-]{22}")
"""The shape of every job id; anything else is refused before it reaches SQL or the filesystem."""


def new_job_id() -> str:
    """An unguessable job id (128 random bits)."""
    return "job_" + secrets.token_urlsafe(16)


def valid_job_id(job_id: str) -> bool:
    """Whether ``job_id`` has the shape of an id this store makes."""
    return JOB_ID.fullmatch(job_id) is not None


@dataclass(frozen=True)
class Job:
    """One row of ``jobs``; ``report``/``partial`` are decoded JSON."""

    id: str
    owner: str
    status: JobStatus
    progress: float
    partial: dict[str, Any] | None
    report: dict[str, Any] | None
    error_code: str | None
    error_message: str | None
    media_path: str | None
    name: str | None
    sha256: str
    options: dict[str, Any]
    callback_url: str | None
    callback_state: str | None
    created_at: float
    updated_at: float
    expires_at: float | None
    kind: str | None = None
    verdict: str | None = None
    score: float | None = None
    known_verdict: str | None = None
    heartbeat_at: float | None = None
    callback_attempts: int = 0
    claims: int = 0

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


def summary(report: Mapping[str, Any] | None) -> dict[str, Any]:
    """The columns the review queue sorts and filters on, read from a report."""
    if report is None:
        return {}
    score = report.get("score") or {}
    return {
        "kind": (report.get("media") or {}).get("kind"),
        "verdict": score.get("verdict"),
        "score": score.get("manipulated"),
        "known_verdict": (report.get("known_match") or {}).get("verdict"),
    }
