"""What a batch scan looks at: list a SOURCE into items, and read items' bytes from any filesystem.

SOURCE is one of (decided by what it is, never by a guess at its contents' names):

* a **folder**, local or ``s3://bucket/prefix`` (any URI pyarrow's ``FileSystem.from_uri`` knows):
  every file under it, recursively, in sorted order. Files and folders whose name starts with ``.``
  are left out (``.DS_Store``, ``.git``, the scan's own journal). Every other file is an item,
  whatever its name: the type is sniffed from the content later, and a file that is not media gets
  a row with ``unsupported_media_type`` instead of being skipped silently; a local entry that is
  not a regular file (a FIFO, a socket, a link to nothing) gets a ``source_unreadable`` row and is
  never opened for reading (a FIFO would block the scan). Links to folders are followed, each real
  folder listed once, so a link loop ends and a linked folder's files are not listed twice;
* a **CSV** (``.csv``) or **JSON lines** (``.jsonl`` / ``.ndjson``) manifest with a ``path``
  column; every other column is carried unchanged into the item's output row;
* a **single media file** (sniffed by content): that one item;
* any other file: a **text list** of paths, one per line (blank lines and ``#`` comments skipped).

Relative paths in a list or manifest are taken relative to the folder that holds it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import os
import posixpath
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.fs as pafs

from detector.errors import EmptyMedia, InvalidRequest, SourceUnreadable, TrueframeError, UnsupportedMediaType
from detector.media.files import open_regular_file
from detector.media.sniff import HEAD_BYTES, sniff

PATH_COLUMN = "path"
MANIFEST_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
CHUNK = 1 << 20


@dataclass(frozen=True)
class ScanItem:
    """One file to analyse: its path as the user wrote it (or as listed) and the extra columns."""

    path: str
    extra: dict[str, Any] = field(default_factory=dict)


def is_uri(path: str) -> bool:
    """True for ``scheme://...`` paths (object storage); False for local paths, Windows drives too."""
    scheme = urlsplit(path).scheme
    return len(scheme) > 1 and "://" in path


@lru_cache(maxsize=16)
def _filesystem(root: str) -> pafs.FileSystem:
    """One pyarrow filesystem per ``scheme://netloc`` and process (credentials resolve once)."""
    fs, _ = pafs.FileSystem.from_uri(root)
    return fs


def resolve(path: str) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem holding ``path`` and the path inside it (``file://`` URIs are local);
    :class:`SourceUnreadable` for a URI pyarrow cannot open."""
    if not is_uri(path):
        return pafs.LocalFileSystem(), str(Path(path).expanduser().resolve())
    try:
        fs, inner = pafs.FileSystem.from_uri(path)
        if isinstance(fs, pafs.LocalFileSystem):
            return fs, inner
        parts = urlsplit(path)
        return _filesystem(f"{parts.scheme}://{parts.netloc}"), inner
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise _unreadable(path, exc) from exc


def _unreadable(path: str, exc: BaseException) -> SourceUnreadable:
    return SourceUnreadable(f"cannot read {path}: {exc}", path=path)


@contextmanager
def _stream(path: str) -> Iterator[Any]:
    """``path`` open for reading (``read(n)``, ``read()``); :class:`SourceUnreadable` otherwise.

    A local file (a path or a ``file://`` URI) is opened only when it is a regular file (without
    blocking, checked on the descriptor: :func:`open_regular_file`), so a FIFO, a device or a
    folder is never read; other URIs go through pyarrow's filesystem.
    """
    fs, inner = resolve(path)
    if isinstance(fs, pafs.LocalFileSystem):
        try:
            with open_regular_file(Path(inner)) as (handle, _):
                yield handle
        except InvalidRequest as exc:
            raise SourceUnreadable(f"{path}: {exc.message}", path=path) from exc
        return
    try:
        with fs.open_input_stream(inner) as stream:
            yield stream
    except (OSError, pa.ArrowException) as exc:
        raise _unreadable(path, exc) from exc


def read_bytes(path: str, limit: int | None = None) -> bytes:
    """The file's bytes (at most ``limit``, so an oversized file is never read whole)."""
    with _stream(path) as stream:
        return bytes(stream.read(limit))


@dataclass(frozen=True)
class Fingerprint:
    """What a scan learns from one streamed read: content hash, size and the sniffed type."""

    sha256: str
    size_bytes: int
    kind: str
    format: str


def fingerprint(path: str) -> Fingerprint:
    """sha256 of the whole file (read in chunks) and its sniffed type.

    Raises :class:`SourceUnreadable`, or ``UnsupportedMediaType`` (with ``details['sha256']``) for
    content that is not a supported image or video, so such files are keyed by content as well.
    """
    digest = hashlib.sha256()
    head = b""
    size = 0
    with _stream(path) as stream:
        while chunk := stream.read(CHUNK):
            if len(head) < HEAD_BYTES:
                head += bytes(chunk[: HEAD_BYTES - len(head)])
            digest.update(chunk)
            size += len(chunk)
    sha = digest.hexdigest()
    if size == 0:
        raise EmptyMedia("the file is empty (0 bytes)", sha256=sha, size_bytes=0)
    try:
        kind, fmt, _ = sniff(head)
    except UnsupportedMediaType as exc:
        exc.details.update(sha256=sha, size_bytes=size)
        raise
    return Fingerprint(sha256=sha, size_bytes=size, kind=kind, format=fmt)


def _join(base: str, child: str) -> str:
    """``child`` as is when absolute or a URI, else relative to ``base`` (a folder)."""
    if is_uri(child) or Path(child).expanduser().is_absolute():
        return child
    if is_uri(base):
        return posixpath.join(base, child)
    return str(Path(base) / child)


def _parent(path: str) -> str:
    return posixpath.dirname(path) if is_uri(path) else str(Path(path).parent)


def _hidden(rel: str) -> bool:
    return any(part.startswith(".") for part in rel.split("/"))


def _list_local_folder(source: str, root: str) -> Iterator[ScanItem]:
    """Every non-hidden entry that is not a folder, links to folders followed once per real folder."""
    seen: set[tuple[int, int]] = set()
    files = []

    def refuse(exc: OSError) -> None:
        raise _unreadable(source, exc)

    for folder, folders, names in os.walk(root, onerror=refuse, followlinks=True):
        here = os.stat(folder)
        if (here.st_dev, here.st_ino) in seen:  # a link back up, or a second link to one folder
            folders[:] = []
            continue
        seen.add((here.st_dev, here.st_ino))
        folders[:] = sorted(f for f in folders if not f.startswith("."))
        for name in names:
            rel = os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/")
            if not _hidden(rel):
                files.append(rel)
    for rel in sorted(files):
        yield ScanItem(path=_join(source, rel))


def _list_folder(source: str, fs: pafs.FileSystem, inner: str) -> Iterator[ScanItem]:
    if isinstance(fs, pafs.LocalFileSystem):
        yield from _list_local_folder(source, inner)
        return
    selector = pafs.FileSelector(inner, recursive=True)
    try:
        infos = fs.get_file_info(selector)
    except (OSError, pa.ArrowException) as exc:
        raise _unreadable(source, exc) from exc
    files = []
    for info in infos:
        rel = posixpath.relpath(info.path, inner)
        if info.type != pafs.FileType.File or _hidden(rel):
            continue
        files.append(rel)
    for rel in sorted(files):
        yield ScanItem(path=_join(source, rel))


def _manifest_rows(source: str, kind: str, text: str) -> Iterator[dict[str, Any]]:
    if kind == "csv":
        yield from csv.DictReader(io.StringIO(text))
        return
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidRequest(f"{source} line {number}: not JSON: {exc}") from exc
        if not isinstance(row, dict):
            raise InvalidRequest(f"{source} line {number}: expected a JSON object")
        yield row


def _list_manifest(source: str, kind: str, text: str) -> Iterator[ScanItem]:
    base = _parent(source)
    for number, row in enumerate(_manifest_rows(source, kind, text), 1):
        path = row.get(PATH_COLUMN)
        if not isinstance(path, str) or not path.strip():
            raise InvalidRequest(f"{source} row {number}: the manifest needs a non-empty '{PATH_COLUMN}'")
        extra = {k: v for k, v in row.items() if k != PATH_COLUMN}
        yield ScanItem(path=_join(base, path.strip()), extra=extra)


def _is_media(head: bytes) -> bool:
    try:
        sniff(head)
    except TrueframeError:
        return False
    return True


def list_source(source: str, limit: int | None = None) -> Iterator[ScanItem]:
    """The items of ``source`` (folder, manifest, single file or list of paths), at most ``limit``."""
    fs, inner = resolve(source)
    try:
        info = fs.get_file_info(inner)
    except (OSError, pa.ArrowException) as exc:
        raise _unreadable(source, exc) from exc
    if info.type == pafs.FileType.Directory:
        items = _list_folder(source, fs, inner)
    elif info.type == pafs.FileType.File:
        items = _list_file(source)
    else:
        raise SourceUnreadable(f"scan source {source} does not exist", path=source)
    yield from itertools.islice(items, limit)


def _list_file(source: str) -> Iterator[ScanItem]:
    suffix = posixpath.splitext(source)[1].lower()
    if suffix in MANIFEST_SUFFIXES:
        yield from _list_manifest(source, MANIFEST_SUFFIXES[suffix], _text(source))
        return
    if _is_media(read_bytes(source, HEAD_BYTES)):
        yield ScanItem(path=source)
        return
    base = _parent(source)
    for line in _text(source).splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            yield ScanItem(path=_join(base, line))


def _text(source: str) -> str:
    data = read_bytes(source)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"{source} is neither media nor a UTF-8 list or manifest of paths") from exc
