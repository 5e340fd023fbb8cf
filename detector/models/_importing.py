"""Importing and fetching third-party weights: upstream files -> verified safetensors in the cache.

Kept apart from :mod:`._weights` (resolution and verification), which the registry uses, so that
neither imports the other: this module needs the registry's importers, the registry needs only
``_weights``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from detector.errors import UnknownModel, WeightsChecksumMismatch, WeightsMissing
from detector.models._manifest import Manifest, load_manifest
from detector.models._registry import get_importer
from detector.models._weights import CHUNK, atomic_target, sha256_file, write_safetensors


def import_weights(
    family: str,
    src_dir: Path,
    weights_dir: Path,
    *,
    names: Iterable[str] | None = None,
    manifest: Manifest | None = None,
) -> list[Path]:
    """Convert ``family``'s upstream files found in ``src_dir`` into verified files in ``weights_dir``.

    Each upstream file must match the manifest's ``upstream_sha256``; each converted file must
    match the manifest's ``sha256`` (else nothing is left behind for it).
    """
    convert = get_importer(family)
    entries = (manifest or load_manifest()).family(family)
    wanted = set(entries) if names is None else set(names)
    if unknown := sorted(wanted - set(entries)):
        known = ", ".join(sorted(entries))
        raise UnknownModel(f"{', '.join(unknown)} not in weights family {family!r} ({known})")
    written: list[Path] = []
    weights_dir = weights_dir.expanduser()
    for name in sorted(wanted):
        entry = entries[name]
        src = entry.source
        assert src.upstream_file is not None  # validated by the manifest
        assert src.upstream_sha256 is not None
        upstream = src_dir.expanduser() / src.upstream_file
        if not upstream.is_file():
            raise WeightsMissing(f"{upstream} not found: {src_dir} must hold {src.upstream_file} for {name}")
        actual = sha256_file(upstream)
        if actual != src.upstream_sha256:
            raise WeightsChecksumMismatch(
                f"{upstream} has sha256 {actual}, not the upstream file the manifest names "
                f"({src.upstream_sha256}); refusing to import it",
                path=str(upstream),
            )
        state = convert(upstream, entry)
        meta = {
            "format": "pt",
            "trueframe_model": name,
            "source_file": src.upstream_file,
            "source_sha256": actual,
            "licence": entry.licence,
        }
        tmp, target = atomic_target(weights_dir, entry.file)
        try:
            write_safetensors(tmp, state, meta)
            produced = sha256_file(tmp)
            if produced != entry.sha256:
                raise WeightsChecksumMismatch(
                    f"converting {upstream} gave sha256 {produced}, the manifest expects {entry.sha256}",
                    path=str(upstream),
                )
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        written.append(target)
    return written


def fetch_weights(
    family: str,
    weights_dir: Path,
    *,
    base_url: str | None = None,
    timeout: float = 60.0,
    manifest: Manifest | None = None,
) -> list[Path]:
    """Download ``family``'s upstream files (or from ``base_url``/FILE) and import them.

    Downloads go to a temporary folder that is always removed; a file whose sha256 differs from
    the manifest is refused. Network failures become :class:`WeightsMissing` naming each URL tried.
    """
    import requests

    get_importer(family)  # an unknown family fails before any download
    entries = (manifest or load_manifest()).family(family)
    with tempfile.TemporaryDirectory(prefix="trueframe-fetch-") as tmp:
        tmp_dir = Path(tmp)
        for name, entry in sorted(entries.items()):
            src = entry.source
            assert src.upstream_file is not None  # validated by the manifest
            urls = [f"{base_url.rstrip('/')}/{src.upstream_file}"] if base_url else list(src.upstream_urls)
            errors: list[str] = []
            for url in urls:
                try:
                    _download(url, tmp_dir / src.upstream_file, timeout)
                    break
                except requests.RequestException as exc:
                    errors.append(f"{url}: {exc}")
            else:
                raise WeightsMissing(f"could not download weights for {name}: {'; '.join(errors)}")
        return import_weights(family, tmp_dir, weights_dir, manifest=manifest)


def _download(url: str, dest: Path, timeout: float) -> None:
    import requests

    with requests.get(url, stream=True, timeout=(min(timeout, 15.0), timeout)) as resp:
        resp.raise_for_status()
        with open(dest, "wb") as fh:
            for chunk in resp.iter_content(chunk_size=CHUNK):
                fh.write(chunk)
