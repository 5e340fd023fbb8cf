"""Importing and fetching third-party weights: upstream files -> verified safetensors in the cache.

Kept apart from :mod:`._weights` (resolution and verification), which the registry uses, so that
neither imports the other: this module needs the registry's importers, the registry needs only
``_weights``.

A family is installed all-or-nothing: every file is checked, converted and verified into a staging
folder inside the weights folder first, and only when all of them verify are they moved into place,
each by an atomic rename. Any failure leaves the weights folder as it was and says so.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

from detector.errors import ModelError, UnknownModel, WeightsChecksumMismatch, WeightsMissing
from detector.models._manifest import Manifest, ModelEntry, load_manifest
from detector.models._registry import get_importer
from detector.models._weights import CHUNK, sha256_file, write_safetensors


class Installed(NamedTuple):
    """One weights file after an import or fetch: where it is, and whether this call put it there
    (False: the verified file was already in place and was left as it was)."""

    path: Path
    added: bool


NOTHING_INSTALLED = "nothing was installed"


def import_weights(
    family: str,
    src_dir: Path,
    weights_dir: Path,
    *,
    names: Iterable[str] | None = None,
    manifest: Manifest | None = None,
) -> list[Installed]:
    """Convert ``family``'s upstream files found in ``src_dir`` into verified files in ``weights_dir``.

    Each upstream file must match the manifest's ``upstream_sha256`` and each converted file its
    ``sha256``; otherwise nothing is installed (see the module docstring).
    """
    entries = _select(family, names, manifest)
    src_dir = src_dir.expanduser()
    sources: dict[str, tuple[Path, str]] = {}
    for name, entry in entries.items():
        assert entry.source.upstream_file is not None  # validated by the manifest
        upstream = src_dir / entry.source.upstream_file
        if not upstream.is_file():
            raise WeightsMissing(
                f"{upstream} not found: {src_dir} must hold {entry.source.upstream_file} for {name}; "
                + NOTHING_INSTALLED,
                path=str(upstream),
            )
        sources[name] = (upstream, str(upstream))
    return _install(family, entries, sources, weights_dir.expanduser())


def fetch_weights(
    family: str,
    weights_dir: Path,
    *,
    base_url: str | None = None,
    timeout: float = 60.0,
    manifest: Manifest | None = None,
) -> list[Installed]:
    """Download ``family``'s upstream files (or from ``base_url``/FILE) and install them verified.

    Downloads go to a temporary folder that is always removed; errors name the URL a file came
    from, never that folder. Network failures become :class:`WeightsMissing` naming each URL tried.
    """
    import requests

    entries = _select(family, None, manifest)
    with tempfile.TemporaryDirectory(prefix="trueframe-fetch-") as tmp:
        sources: dict[str, tuple[Path, str]] = {}
        for name, entry in entries.items():
            src = entry.source
            assert src.upstream_file is not None  # validated by the manifest
            urls = [f"{base_url.rstrip('/')}/{src.upstream_file}"] if base_url else list(src.upstream_urls)
            dest = Path(tmp) / src.upstream_file
            errors: list[str] = []
            for url in urls:
                try:
                    _download(url, dest, timeout)
                except requests.RequestException as exc:
                    errors.append(f"{url}: {exc}")
                else:
                    sources[name] = (dest, url)
                    break
            else:
                raise WeightsMissing(
                    f"could not download weights for {name}: {'; '.join(errors)}; {NOTHING_INSTALLED}"
                )
        return _install(family, entries, sources, weights_dir.expanduser())


def _select(family: str, names: Iterable[str] | None, manifest: Manifest | None) -> dict[str, ModelEntry]:
    """The manifest entries of ``family`` to install (all, or ``names``), sorted by name."""
    get_importer(family)  # an unknown family fails before any file is read or downloaded
    entries = (manifest or load_manifest()).family(family)
    wanted = set(entries) if names is None else set(names)
    if unknown := sorted(wanted - set(entries)):
        known = ", ".join(sorted(entries))
        raise UnknownModel(f"{', '.join(unknown)} not in weights family {family!r} ({known})")
    return {name: entries[name] for name in sorted(wanted)}


def _install(
    family: str,
    entries: Mapping[str, ModelEntry],
    sources: Mapping[str, tuple[Path, str]],
    weights_dir: Path,
) -> list[Installed]:
    """Verify and convert every upstream file into a staging folder, then move all into place.

    ``sources`` maps each name to (upstream file, what to call it in errors: its path or URL). A
    target that already holds the expected bytes is left as it is (re-importing is idempotent); one
    that holds other bytes is refused, never overwritten: the user deletes it deliberately.
    """
    convert = get_importer(family)
    weights_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".trueframe-install-", dir=weights_dir))
    try:
        staged: list[tuple[Path, Path]] = []
        present: set[Path] = set()
        for name, entry in entries.items():
            upstream, origin = sources[name]
            src = entry.source
            assert src.upstream_file is not None  # validated by the manifest
            target = weights_dir / entry.file
            if target.exists():
                digest = sha256_file(target)
                if digest == entry.sha256:
                    present.add(target)  # already installed, these very bytes: nothing to convert or move
                    continue
                raise WeightsChecksumMismatch(
                    f"{target} already exists with sha256 {digest}, not the manifest's "
                    f"{entry.sha256}; refusing to overwrite it: delete it and run the command "
                    f"again; {NOTHING_INSTALLED}",
                    path=str(target),
                )
            actual = sha256_file(upstream)
            if actual != src.upstream_sha256:
                raise WeightsChecksumMismatch(
                    f"{origin} has sha256 {actual}, not the upstream file the manifest names "
                    f"({src.upstream_sha256}) for {name}; refusing to import it; {NOTHING_INSTALLED}",
                    source=origin,
                )
            part = staging / entry.file
            write_safetensors(
                part,
                convert(upstream, entry),
                {
                    "format": "pt",
                    "trueframe_model": name,
                    "source_file": src.upstream_file,
                    "source_sha256": actual,
                    "licence": entry.licence,
                },
            )
            produced = sha256_file(part)
            if produced != entry.sha256:
                raise WeightsChecksumMismatch(
                    f"converting {origin} gave sha256 {produced}, the manifest expects "
                    f"{entry.sha256} for {name}; {NOTHING_INSTALLED}",
                    source=origin,
                )
            staged.append((part, target))
        _move_all(staged, weights_dir)
        targets = [weights_dir / entry.file for entry in entries.values()]
        return [Installed(target, target not in present) for target in targets]
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _move_all(staged: list[tuple[Path, Path]], weights_dir: Path) -> None:
    """Rename each verified staged file onto its target; if one rename fails, undo the others."""
    added: list[Path] = []
    for part, target in staged:
        try:
            os.replace(part, target)
        except OSError as exc:
            for done in added:
                done.unlink(missing_ok=True)
            raise ModelError(
                f"could not move {target.name} into {weights_dir}: {exc}; {NOTHING_INSTALLED}",
                path=str(target),
            ) from exc
        added.append(target)


def _download(url: str, dest: Path, timeout: float) -> None:
    """Stream ``url`` into ``dest``; HTTP errors raise :class:`requests.HTTPError`."""
    import requests

    with requests.get(url, stream=True, timeout=(min(timeout, 15.0), timeout)) as resp:
        resp.raise_for_status()
        with open(dest, "wb") as fh:
            for chunk in resp.iter_content(chunk_size=CHUNK):
                fh.write(chunk)
