"""One hostile-input case and the outcomes it may have (a report or typed error codes)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Stage = Literal["intake", "decode"]
REPORT = "report"


@dataclass(frozen=True)
class Case:
    """One kind of hostile input and the outcomes a full analysis may give (``"report"`` or codes)."""

    name: str
    kind: str
    make: Callable[[Path], bytes]
    expect: frozenset[str]
    stage: Stage = "intake"
    upload_name: str | None = None  # the name a client sends, when the case is about names
    http_expect: frozenset[str] | None = None  # what the HTTP API answers, when it differs
    verdict: str | None = None  # the report's verdict when it is the point of the case
    provenance: str | None = None  # the report's provenance state when it is the point of the case
    serve: bool = False  # also sent to the Serve app (a representative subset)

    @property
    def sent_name(self) -> str:
        return self.name if self.upload_name is None else self.upload_name

    def expect_http(self) -> frozenset[str]:
        return self.expect if self.http_expect is None else self.http_expect

    def probe_expect(self) -> frozenset[str]:
        """What intake alone answers: the typed error of an intake case, else a report."""
        return self.expect if self.stage == "intake" else frozenset({REPORT})


def outcomes(*codes: str) -> frozenset[str]:
    return frozenset(codes)


R = outcomes(REPORT)
CORRUPT = outcomes("corrupt_media")
UNSUPPORTED = outcomes("unsupported_media_type")
PIXELS = outcomes("too_many_pixels")
BIG = 11000  # 11000 x 11000 = 121 M pixels: just over the default limit of 120 M
