"""The app's typed state and the helpers every router uses to reach it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request

from detector.settings import Settings
from serving.analyzer import Analyzer
from serving.http.metrics import Metrics
from serving.jobs.runner import JobRunner
from serving.jobs.store import JobStore
from serving.known.lookup import StoreKnownMedia
from serving.offload import off_loop

__all__ = ["AppState", "State", "app_state", "off_loop"]


@dataclass
class AppState:
    """Everything a request handler needs, held by the app (``app.state.trueframe``)."""

    settings: Settings
    analyzer: Analyzer
    store: JobStore
    runner: JobRunner
    metrics: Metrics
    static_dir: Path
    known: StoreKnownMedia | None = None
    admitted: int = 0
    """Uploads let past ``serve.max_queue`` that are not yet a stored job (an image analysed now
    holds its place until answered): what the store's count of active jobs cannot see yet."""
    admission: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held while an upload is checked against ``serve.max_queue`` and takes its place."""


def app_state(request: Request) -> AppState:
    """The :class:`AppState` of the app serving ``request``."""
    state: AppState = request.app.state.trueframe
    return state


State = Annotated[AppState, Depends(app_state)]
