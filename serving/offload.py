"""Blocking work (SQLite, file I/O, decoding) runs in worker threads, never on the event loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

import anyio.to_thread

P = ParamSpec("P")
R = TypeVar("R")


async def off_loop(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """``func(*args, **kwargs)`` in an anyio worker thread; the event loop keeps serving meanwhile."""
    return await anyio.to_thread.run_sync(lambda: func(*args, **kwargs))
