"""The README's configuration table and verdict-band table say what the code and the fitted fusion
file do: a new user's walkthrough found a stale default (the pixel limit) and stale bands there."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from detector.scoring.fusion.params import default_fusion_path
from detector.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"
CONFIG_ROW = re.compile(r"^\| (`TRUEFRAME_[A-Z_]+`(?: / `__[A-Z_]+`)*) \| ([^|]+) \|", re.M)
BAND_ROW = re.compile(
    r"^  \| (images|videos|degraded images|degraded videos) \| (\w+) \| (>=|<=) ([0-9.]+) \|", re.M
)
KINDS = {
    "images": "image",
    "videos": "video",
    "degraded images": "image_degraded",
    "degraded videos": "video_degraded",
}
NOT_A_FIELD_DEFAULT = {"TRUEFRAME_FUSION__FUSION_FILE"}
"""Documented by the file used when the setting is unset, not by the setting's own default (None)."""


def _rows() -> list[tuple[str, str]]:
    """(variable, documented default) for every variable of the configuration table."""
    rows = []
    for names, defaults in CONFIG_ROW.findall(README.read_text(encoding="utf-8")):
        variables = [v.strip("`") for v in names.split(" / ")]
        first = variables[0]
        group = first[: first.rindex("__")] if "__" in first else first
        full = [first, *(group + v for v in variables[1:])]
        values = [d.strip() for d in defaults.split(" / ")] if len(full) > 1 else [defaults.strip()]
        rows += list(zip(full, values, strict=True))
    return rows


def _setting(variable: str) -> Any:
    """The setting's default: ``TRUEFRAME_*`` variables of this environment are left out."""
    ours = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("TRUEFRAME_")}
    try:
        value: Any = Settings()
    finally:
        os.environ.update(ours)
    for part in variable.removeprefix("TRUEFRAME_").lower().split("__"):
        value = getattr(value, part)
    return value


def _documented(text: str) -> Any:
    text = text.strip("`")
    if text in ("unset", "(model)"):
        return None
    if text in ("true", "false"):
        return text == "true"
    if text == "[]":
        return []
    if re.fullmatch(r"[0-9][0-9,]*(\.[0-9]+)?", text):
        return float(text.replace(",", ""))
    return text


def test_the_configuration_table_parses_into_rows() -> None:
    """A pattern that matched nothing would leave the test below with no case to fail."""
    assert len(_rows()) >= 40


@pytest.mark.parametrize(("variable", "documented"), _rows())
def test_each_documented_default_is_the_settings_default(variable: str, documented: str) -> None:
    if variable in NOT_A_FIELD_DEFAULT:
        assert _setting(variable) is None
        return
    actual, expected = _setting(variable), _documented(documented)
    if isinstance(expected, float):
        assert float(actual) == expected, f"{variable}: README says {documented}, the code {actual}"
    elif isinstance(actual, Path):
        assert actual == Path(expected)
    else:
        assert actual == expected, f"{variable}: README says {documented}, the code {actual!r}"


def test_the_band_table_is_the_fitted_fusion_file_rounded() -> None:
    bands = BAND_ROW.findall(README.read_text(encoding="utf-8"))
    assert len(bands) == 16, "four bands for each of the four media kinds"
    fitted = tomllib.loads(default_fusion_path().read_text(encoding="utf-8"))["kinds"]
    for kind, band, sign, value in bands:
        assert sign == (">=" if band.endswith("manipulated") else "<=")
        threshold = fitted[KINDS[kind]]["thresholds"][band]["manipulated"]
        assert f"{threshold:.3f}" == value, f"{kind} {band}: README {value}, fusion.toml {threshold:.4f}"


ABSTRACT_CODES = {"trueframe_error", "media_error", "limit_exceeded"}
"""Base classes that nothing raises as such: their subclasses carry the codes users see."""


def test_every_error_code_is_in_the_readme_error_table_with_its_status() -> None:
    """A code a user can get (over HTTP or on the command line) must be explained where they look."""
    import serving.http.errors  # noqa: F401  (registers the HTTP layer's error classes)
    from detector.errors import all_error_classes

    text = README.read_text(encoding="utf-8")
    table = text[text.index("| code | HTTP | meaning |") :].split("\n\n", 1)[0]
    documented: dict[str, str] = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        codes, statuses = re.findall(r"`([a-z_]+)`", cells[0]), cells[1].split(" / ")
        for i, code in enumerate(codes):
            documented[code] = statuses[min(i, len(statuses) - 1)]
    for cls in all_error_classes():
        if cls.code in ABSTRACT_CODES or cls.code == "provenance_unreadable":
            continue
        assert cls.code in documented, f"{cls.code} is not in the README's error table"
        assert documented[cls.code] == str(cls.http_status), cls.code
