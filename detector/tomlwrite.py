"""The one TOML writer: values, and whole tables written into the weights manifest in place.

tomllib reads TOML; nothing in the standard library writes it. The manifest and the fusion
parameters are small, so values are written by :func:`toml_value` and a model's table is replaced
line by line (:func:`replace_table`), keeping every comment of the file. Writes are validated by
the caller's reader and atomic.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any


def toml_value(value: Any) -> str:
    """A TOML literal for a str, bool, int, float, list or dict (inline table); None is refused."""
    if value is None:
        raise ValueError("TOML has no null")
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def table_lines(header: str, fields: dict[str, Any]) -> list[str]:
    """``[header]`` then ``key = value`` lines (None values are left out)."""
    return [f"[{header}]"] + [f"{k} = {toml_value(v)}" for k, v in fields.items() if v is not None]


def replace_table(text: str, header: str, fields: dict[str, Any], after: str) -> str:
    """``text`` with table ``[header]`` replaced (or added after the last table starting with ``after``)."""
    lines = text.splitlines()
    target = f"[{header}]"
    if target in lines:
        start = lines.index(target)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
        while end > start and lines[end - 1].strip() == "":
            end -= 1
        del lines[start:end]
        while (
            start < len(lines) and start > 0 and lines[start - 1].strip() == "" and lines[start].strip() == ""
        ):
            del lines[start]
    own = re.compile(rf"^\[{re.escape(after)}(\..*)?\]$")
    starts = [i for i, line in enumerate(lines) if own.match(line)]
    if not starts:
        raise ValueError(f"no table [{after}] to place [{header}] after")
    end = next((i for i in range(starts[-1] + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    while end > starts[-1] and lines[end - 1].strip() == "":
        end -= 1
    return "\n".join([*lines[:end], "", *table_lines(header, fields), *lines[end:]]) + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
