"""Where weights files live, how they are verified, and how third-party ones are imported or fetched.

Shipped weights live in the ``weights`` package next to the manifest. Imported or fetched ones
live in the cache folder (setting ``models.weights_dir``, default ``~/.cache/trueframe``). Every
load verifies the file's sha256 against the manifest; the digest is cached in-process per
(path, mtime, size) so repeated loads do not re-hash.

Converted files are written by :func:`write_safetensors`, which is byte-for-byte deterministic
(sorted keys and metadata, little-endian contiguous arrays), so the manifest can pin the sha256 of
the file an import produces.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np

from detector.errors import UnknownModel, WeightsChecksumMismatch, WeightsMissing
from detector.models._manifest import MANIFEST_PACKAGE, Manifest, ModelEntry, load_manifest

WeightsState = Literal["verified", "missing", "checksum_mismatch"]

_CHUNK = 1 << 20
_digests: dict[tuple[str, int, int], str] = {}
_digests_lock = threading.Lock()
_ST_DTYPES: dict[str, str] = {"<f4": "F32", "<f2": "F16", "<i8": "I64", "<i4": "I32", "|u1": "U8"}


def default_weights_dir() -> Path:
    """The cache folder from settings (``TRUEFRAME_MODELS__WEIGHTS_DIR``), ``~`` expanded."""
    from detector.settings import get_settings

    return get_settings().models.weights_dir.expanduser()


def shipped_dir() -> Path:
    """The folder of the installed ``weights`` package (small weights trueframe ships)."""
    return Path(str(resources.files(MANIFEST_PACKAGE)))


def weights_path(entry: ModelEntry, weights_dir: Path) -> Path:
    """Where ``entry``'s safetensors file is expected."""
    base = shipped_dir() if entry.source.kind == "shipped" else weights_dir.expanduser()
    return base / entry.file


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, hashed in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def cached_sha256(path: Path) -> str:
    """:func:`sha256_file`, remembered per (path, mtime, size) for this process."""
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    with _digests_lock:
        known = _digests.get(key)
    if known is None:
        known = sha256_file(path)
        with _digests_lock:
            _digests[key] = known
    return known


def obtain_hint(name: str, entry: ModelEntry) -> str:
    """How a user gets the weights of model ``name``."""
    src = entry.source
    if src.kind == "shipped":
        return "it ships with trueframe: reinstall the package"
    return (
        f"run `trueframe weights fetch {src.importer}` (needs network) or "
        f"`trueframe weights import {src.importer} --from DIR` with DIR holding {src.upstream_file}"
    )


def _name_of(entry: ModelEntry) -> str:
    """The model name: the manifest requires ``file`` to be ``<arch.tag>.safetensors``."""
    return entry.file.removesuffix(".safetensors")


def weights_state(entry: ModelEntry, weights_dir: Path) -> WeightsState:
    """Whether ``entry``'s file is present and matches the manifest's sha256."""
    path = weights_path(entry, weights_dir)
    if not path.is_file():
        return "missing"
    return "verified" if cached_sha256(path) == entry.sha256 else "checksum_mismatch"


def resolve_weights(entry: ModelEntry, weights_dir: Path) -> Path:
    """The verified weights file of ``entry``; typed errors say what is wrong and how to fix it."""
    path = weights_path(entry, weights_dir)
    name = _name_of(entry)
    if not path.is_file():
        raise WeightsMissing(
            f"weights for {name} not found at {path}; {obtain_hint(name, entry)}", path=str(path)
        )
    actual = cached_sha256(path)
    if actual != entry.sha256:
        raise WeightsChecksumMismatch(
            f"{path} has sha256 {actual}, the manifest expects {entry.sha256}; delete it and "
            + obtain_hint(name, entry),
            path=str(path),
        )
    return path


def write_safetensors(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    """Write a safetensors file deterministically (same input, same bytes, any library version)."""
    header: dict[str, object] = {"__metadata__": dict(sorted(metadata.items()))}
    blobs: list[bytes] = []
    offset = 0
    for key in sorted(tensors):
        array = tensors[key]
        dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
        code = _ST_DTYPES.get(dtype.str)
        if code is None:
            raise ValueError(f"{key}: dtype {array.dtype} is not supported by write_safetensors")
        blob = np.ascontiguousarray(array, dtype=dtype).tobytes()
        header[key] = {
            "dtype": code,
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(blob)],
        }
        blobs.append(blob)
        offset += len(blob)
    raw = json.dumps(header, sort_keys=False, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as fh:
        fh.write(len(raw).to_bytes(8, "little"))
        fh.write(raw)
        for blob in blobs:
            fh.write(blob)


def _atomic_target(weights_dir: Path, file: str) -> tuple[Path, Path]:
    weights_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{file}.", suffix=".part", dir=weights_dir)
    os.close(fd)
    return Path(tmp), weights_dir / file


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
    from detector.models._registry import get_importer

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
        tmp, target = _atomic_target(weights_dir, entry.file)
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

    from detector.models._registry import get_importer

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
            for chunk in resp.iter_content(chunk_size=_CHUNK):
                fh.write(chunk)
