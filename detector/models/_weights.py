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

import hashlib
import json
import threading
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np

from detector.errors import WeightsChecksumMismatch, WeightsMissing
from detector.models._manifest import MANIFEST_PACKAGE, ModelEntry

WeightsState = Literal["verified", "missing", "checksum_mismatch"]

CHUNK = 1 << 20
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
        while chunk := fh.read(CHUNK):
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
