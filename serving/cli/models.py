"""``trueframe models`` and ``trueframe weights list|import|fetch``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    """Add the ``models`` and ``weights`` sub-commands."""
    m = sub.add_parser("models", help="list registered models and whether their weights are ready")
    m.add_argument("--json", action="store_true", help="print a JSON array")
    _weights_dir_option(m)
    m.set_defaults(func=run_models)

    w = sub.add_parser("weights", help="list, import or download model weights")
    wsub = w.add_subparsers(dest="weights_command", required=True, metavar="ACTION")
    ls = wsub.add_parser("list", help="every weights file, its source and state")
    ls.add_argument("--json", action="store_true", help="print a JSON array")
    _weights_dir_option(ls)
    ls.set_defaults(func=run_weights_list)
    imp = wsub.add_parser("import", help="convert a family's upstream files found in a local folder")
    imp.add_argument("family", metavar="FAMILY", help="weights family, e.g. mesonet")
    imp.add_argument(
        "--from", dest="src", type=Path, required=True, metavar="DIR", help="folder holding the files"
    )
    _weights_dir_option(imp)
    imp.set_defaults(func=run_weights_import)
    fetch = wsub.add_parser("fetch", help="download a family's upstream files and import them")
    fetch.add_argument("family", metavar="FAMILY", help="weights family, e.g. mesonet")
    fetch.add_argument(
        "--base-url", default=None, help="download FILE from BASE_URL/FILE instead of upstream"
    )
    fetch.add_argument("--timeout", type=seconds, default=60.0, help="seconds per request (default 60)")
    _weights_dir_option(fetch)
    fetch.set_defaults(func=run_weights_fetch)


def seconds(text: str) -> float:
    """An ``argparse`` type: a number of seconds above 0 (``--timeout 0`` or ``-1`` failed with
    a ValueError traceback from requests)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, not {text}")
    return value


def _weights_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--weights-dir",
        type=Path,
        default=None,
        help="weights cache folder (default: setting models.weights_dir, ~/.cache/trueframe)",
    )


def _weights_dir(args: argparse.Namespace) -> Path:
    from detector.models._weights import default_weights_dir

    return Path(args.weights_dir).expanduser() if args.weights_dir else default_weights_dir()


def _install_dir(args: argparse.Namespace) -> Path:
    """The weights folder ``import`` and ``fetch`` write into, made; one that cannot be (a regular
    file) is ``invalid_request`` naming it and its option or setting, not a FileExistsError traceback."""
    from detector.evaluation.checks import writable_dir

    what = "--weights-dir" if args.weights_dir else "TRUEFRAME_MODELS__WEIGHTS_DIR"
    return writable_dir(_weights_dir(args), what)


def _rows(weights_dir: Path) -> list[dict[str, Any]]:
    from detector.models._manifest import load_manifest
    from detector.models._registry import list_models
    from detector.models._weights import weights_path, weights_state

    manifest = load_manifest()
    rows = []
    for name in list_models(manifest=manifest):
        entry = manifest.models[name]
        rows.append(
            {
                "name": name,
                "task": entry.task,
                "weights": weights_state(entry, weights_dir),
                "licence": entry.licence,
                "family": entry.source.importer,
                "source": entry.source.kind,
                "upstream_file": entry.source.upstream_file,
                "path": str(weights_path(entry, weights_dir)),
                "sha256": entry.sha256,
            }
        )
    return rows


def _print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    cells = [[str(r[c] if r[c] is not None else "-") for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def run_models(args: argparse.Namespace) -> int:
    """Every registered model: name, task, weights state (as ``weights list``), licence.

    Under the table, one line per family and state says how to fix it: missing weights are
    imported or fetched; a file with the wrong sha256 must be deleted first (import refuses to
    overwrite it).
    """
    rows = _rows(_weights_dir(args))
    if args.json:
        keys = ("name", "task", "weights", "licence", "path", "sha256")
        print(json.dumps([{k: r[k] for k in keys} for r in rows]))
    elif rows:
        _print_table(rows, ["name", "task", "weights", "licence"])
        for line in _fix_hints(rows):
            print(line)
    return 0


def _fix_hints(rows: list[dict[str, Any]]) -> list[str]:
    """``missing`` / ``checksum_mismatch`` lines for imported families, worded as the state column."""
    lines = []
    for family in sorted({r["family"] for r in rows if r["family"]}):
        hint = f"trueframe weights import {family} --from DIR (or: trueframe weights fetch {family})"
        mine = [r for r in rows if r["family"] == family]
        if missing := [r["name"] for r in mine if r["weights"] == "missing"]:
            lines.append(f"weights missing ({', '.join(missing)}): run {hint}")
        if bad := [r for r in mine if r["weights"] == "checksum_mismatch"]:
            names = ", ".join(r["name"] for r in bad)
            paths = " ".join(r["path"] for r in bad)
            lines.append(
                f"weights checksum_mismatch ({names}: sha256 differs from the manifest): "
                f"delete {paths}, then run {hint}"
            )
    return lines


def run_weights_list(args: argparse.Namespace) -> int:
    """Each weights file: model, family, upstream file, state and where it is expected."""
    rows = _rows(_weights_dir(args))
    if args.json:
        print(json.dumps(rows))
    elif rows:
        _print_table(rows, ["name", "family", "upstream_file", "weights", "path"])
    return 0


def run_weights_import(args: argparse.Namespace) -> int:
    """Convert ``FAMILY``'s upstream files from ``--from DIR`` into the cache, verified."""
    from detector.models._importing import import_weights

    for path, added in import_weights(args.family, args.src, _install_dir(args)):
        print(f"imported {path}" if added else f"already in place (sha256 verified) {path}")
    return 0


def run_weights_fetch(args: argparse.Namespace) -> int:
    """Download ``FAMILY``'s upstream files and import them into the cache."""
    from detector.models._importing import fetch_weights

    target = _install_dir(args)
    for path, added in fetch_weights(args.family, target, base_url=args.base_url, timeout=args.timeout):
        print(f"fetched {path}" if added else f"already in place (sha256 verified) {path}")
    return 0
