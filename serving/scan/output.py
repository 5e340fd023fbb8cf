"""Scan results: one flat row per item, an append-only fsynced journal, and the final file.

Rows are appended to a **journal** as items complete, one JSON line each, flushed and fsynced,
so a crash or Ctrl-C loses nothing already written; a half-written last line (power cut) is cut
off when the journal is reopened. With a ``.jsonl`` RESULTS the journal *is* RESULTS. With
``.csv`` or ``.parquet`` the journal is ``RESULTS.journal.jsonl`` next to it and RESULTS is
(re)materialised from it at the end of every scan, atomically (temp file + rename); the journal
is kept so a later scan can resume. In CSV/Parquet a path appears once (its latest row); a JSONL
journal keeps history (a path whose content or models changed gets a new row on rescan).

A row is identified by ``(path, sha256, model_versions)``: a rerun skips those already present.
Rows carry the usable PDQ hashes of the item (``pdq``), its reviewed near-duplicate in the store's
hash lists at scan time (``known_match_*``) and its near-duplicate cluster (``cluster_id``, see
:mod:`serving.scan.clusters`).
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from detector.errors import InvalidRequest, TrueframeError
from detector.provenance.pdq import MIN_QUALITY
from detector.report.schema import Report, deciding_signal

Row = dict[str, Any]
RowKey = tuple[str, str, str]

RESULT_COLUMNS: tuple[str, ...] = (
    "path",
    "sha256",
    "kind",
    "format",
    "size_bytes",
    "verdict",
    "authenticity",
    "manipulated",
    "manipulated_low",
    "manipulated_high",
    "provenance_state",
    "ai_declaration",
    "faces",
    "top_signal",
    "top_signal_contribution",
    "rule",
    "known_match_verdict",
    "known_match_distance",
    "known_match_share",
    "known_match_list",
    "cluster_id",
    "pdq",
    "seconds",
    "timings",
    "error_code",
    "error_message",
    "duplicate_of",
    "model_versions",
    "scanned_at",
)
EXTRA_PREFIX = "source_"
FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet"}
_SCHEMA = {
    "size_bytes": pa.int64(),
    "authenticity": pa.float64(),
    "manipulated": pa.float64(),
    "manipulated_low": pa.float64(),
    "manipulated_high": pa.float64(),
    "faces": pa.int64(),
    "top_signal_contribution": pa.float64(),
    "known_match_distance": pa.int64(),
    "known_match_share": pa.float64(),
    "seconds": pa.float64(),
}


def output_format(path: Path, option: str = "--out") -> str:
    """``jsonl`` (default for unknown suffixes is refused), ``csv`` or ``parquet`` from the suffix."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InvalidRequest(f"{option} must end in .jsonl, .csv or .parquet, not {path.name!r}")
    return fmt


def row_key(row: Row) -> RowKey:
    """What makes a row unique: the listed path, the content hash and the model versions."""
    return (str(row.get("path") or ""), str(row.get("sha256") or ""), str(row.get("model_versions") or ""))


def _extra(extra: dict[str, Any]) -> Row:
    return {(EXTRA_PREFIX + k if k in RESULT_COLUMNS else k): v for k, v in extra.items()}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def report_row(report: Report) -> Row:
    """The result columns a report fills (everything but path, extras and bookkeeping)."""
    score = report.score
    contributing = [s for s in score.signals if s.contribution is not None]
    # the signal a rule decided by, else the largest contribution (a rule's signal adds no log-odds,
    # so the prior pushing towards authentic was named for an AI-declared image)
    top = deciding_signal(score) or max(contributing, key=lambda s: abs(s.contribution or 0.0), default=None)
    provenance = report.provenance
    known = report.known_match
    usable = []
    if report.perceptual_hash is not None:
        pairs = zip(report.perceptual_hash.hashes, report.perceptual_hash.qualities, strict=True)
        usable = [h for h, q in pairs if q >= MIN_QUALITY]
    return {
        "sha256": report.media.sha256,
        "kind": report.media.kind,
        "format": report.media.format,
        "size_bytes": report.media.size_bytes,
        "verdict": score.verdict,
        "authenticity": score.authenticity,
        "manipulated": score.manipulated,
        "manipulated_low": None if score.manipulated_range is None else score.manipulated_range[0],
        "manipulated_high": None if score.manipulated_range is None else score.manipulated_range[1],
        "provenance_state": provenance.state if provenance is not None else None,
        "ai_declaration": provenance.ai_declaration.value if provenance is not None else None,
        "faces": len(report.tracks),
        "top_signal": top.name if top is not None else None,
        "top_signal_contribution": top.contribution if top is not None else None,
        "rule": score.rule,
        "known_match_verdict": known.verdict if known is not None else None,
        "known_match_distance": known.distance if known is not None else None,
        "known_match_share": known.matched_share if known is not None else None,
        "known_match_list": known.list_name if known is not None else None,
        "pdq": " ".join(usable) or None,
        "seconds": report.timings.get("total"),
        "timings": json.dumps(report.timings, sort_keys=True),
        "error_code": None,
        "error_message": None,
    }


def error_row(error: TrueframeError) -> Row:
    """The result columns of an item that failed: its typed code and message (and hash if known)."""
    details = error.details
    return {
        "sha256": details.get("sha256"),
        "size_bytes": details.get("size_bytes"),
        "error_code": error.code,
        "error_message": error.message,
    }


def make_row(path: str, extra: dict[str, Any], result: Row, model_versions: str) -> Row:
    """A full output row: path, the manifest's extra columns, the result, bookkeeping."""
    row: Row = {"path": path, **_extra(extra)}
    for column in RESULT_COLUMNS[1:]:
        row[column] = result.get(column)
    row["model_versions"] = model_versions
    row["scanned_at"] = result.get("scanned_at") or _now()
    return row


class Journal:
    """Append-only JSON lines, each write flushed and fsynced before :meth:`append` returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._repair()
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def _repair(self) -> None:
        """Cut a half-written last line (a crash mid-write) so appends start on a fresh line."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(self.path, "r+b") as fh:
                fh.truncate(data.rfind(b"\n") + 1)
                os.fsync(fh.fileno())

    def append(self, rows: Iterable[Row]) -> None:
        text = "".join(json.dumps(row, default=str) + "\n" for row in rows)
        if text:
            self._fh.write(text)
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()


def read_jsonl(path: Path) -> list[Row]:
    """Rows of a JSON-lines file; a half-written last line (a crash) is ignored."""
    rows: list[Row] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.endswith("\n"):
                break
            if line.strip():
                rows.append(json.loads(line))
    return rows


def read_rows(path: Path) -> list[Row]:
    """Rows of a results file of any supported format."""
    fmt = output_format(path)
    if fmt == "jsonl":
        return read_jsonl(path)
    table = pq.read_table(path) if fmt == "parquet" else _read_csv(path)
    return [{k: _clean(v) for k, v in row.items()} for row in table.to_pylist()]


def _read_csv(path: Path) -> pa.Table:
    names = pacsv.read_csv(path).column_names
    types = {n: pa.string() for n in names if n not in _SCHEMA}
    return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=types))


def _clean(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


class ResultStore:
    """RESULTS and its journal: what is already done, appending rows, the final file."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.format = output_format(out)
        self.journal_path = out if self.format == "jsonl" else out.with_name(out.name + ".journal.jsonl")
        self._journal: Journal | None = None

    def existing(self) -> list[Row]:
        """Rows written by earlier scans (the journal; RESULTS itself when the journal is gone)."""
        if self.journal_path.exists():
            return read_jsonl(self.journal_path)
        if self.out.exists():
            return read_rows(self.out)
        return []

    def open(self) -> None:
        """Start appending; seeds a missing journal from an existing RESULTS file."""
        self.out.parent.mkdir(parents=True, exist_ok=True)
        seed = [] if self.journal_path.exists() else self.existing()
        self._journal = Journal(self.journal_path)
        self._journal.append(seed)

    def append(self, rows: Sequence[Row]) -> None:
        if self._journal is None:
            raise RuntimeError("ResultStore.open() first")
        self._journal.append(rows)

    def close(self) -> None:
        """Close the journal and materialise RESULTS (CSV or Parquet) from it."""
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        if self.format != "jsonl" and self.journal_path.exists():
            from serving.scan.clusters import assign_clusters

            write_rows(self.out, assign_clusters(latest_per_path(read_jsonl(self.journal_path))))


def latest_per_path(rows: Iterable[Row]) -> list[Row]:
    """One row per path, the last written, in first-seen order."""
    latest: dict[str, Row] = {}
    for row in rows:
        latest.pop(str(row.get("path")), None)
        latest[str(row.get("path"))] = row
    return list(latest.values())


def _columns(rows: Sequence[Row]) -> list[str]:
    extras = dict.fromkeys(k for row in rows for k in row if k not in RESULT_COLUMNS)
    return ["path", *extras, *RESULT_COLUMNS[1:]]


def write_rows(path: Path, rows: Sequence[Row]) -> None:
    """Write ``rows`` to ``path`` in the format of its suffix, atomically (temp file + rename)."""
    fmt = output_format(path)
    tmp = path.with_name(f".{path.name}.tmp")
    columns = _columns(rows)
    if fmt == "parquet":
        pq.write_table(_arrow_table(rows, columns), tmp)
    else:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            if fmt == "csv":
                writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
                writer.writeheader()
                writer.writerows({k: _csv_value(row.get(k)) for k in columns} for row in rows)
            else:
                fh.writelines(json.dumps(row, default=str) + "\n" for row in rows)
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)


def _csv_value(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, dict | list) else value


def _arrow_table(rows: Sequence[Row], columns: list[str]) -> pa.Table:
    arrays = {}
    for name in columns:
        values = [row.get(name) for row in rows]
        kind = _SCHEMA.get(name, pa.string() if name in RESULT_COLUMNS else None)
        try:
            arrays[name] = pa.array(values, type=kind)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed extra column: keep it as text
            arrays[name] = pa.array([None if v is None else str(v) for v in values], type=pa.string())
    return pa.table(arrays)
