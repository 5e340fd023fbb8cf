"""Opening a local file for reading only when it is a regular file (no PyAV or Pillow here, so the
scan's driver can use it without importing a decoder)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from detector.errors import MediaTooLarge, SourceUnreadable


@contextmanager
def open_regular_file(path: Path) -> Iterator[tuple[BinaryIO, int]]:
    """``path`` opened for reading, and its size, when it is a regular file; ``source_unreadable`` else.

    Opened without blocking and checked on the open descriptor, so a FIFO (whose open or read
    would wait forever for a writer), a device such as ``/dev/zero`` (endless) or a folder is never
    read, even when a link points there or the path is swapped after a check. Read errors inside
    the ``with`` block are ``source_unreadable`` too.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise SourceUnreadable(f"cannot read {path.name}: {exc.strerror or exc}") from exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise SourceUnreadable(f"not a regular file: {path.name}")
    with os.fdopen(fd, "rb") as fh:
        try:
            yield fh, info.st_size
        except OSError as exc:
            raise SourceUnreadable(f"cannot read {path.name}: {exc.strerror or exc}") from exc


def read_regular_file(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (typed errors otherwise, see
    :func:`open_regular_file`); never more than ``limit + 1`` bytes are read."""
    with open_regular_file(path) as (fh, size):
        if size > limit:
            raise MediaTooLarge(f"{path.name} is {size} bytes; the limit is {limit}", size=size, limit=limit)
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise MediaTooLarge(f"{path.name} is over the limit of {limit} bytes", limit=limit)
    return data
