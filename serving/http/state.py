"""The app's typed state and the helpers every router uses to reach it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request

from detector.settings import Settings
from serving.analyzer import Analyzer
from serving.http.admission import Admission
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
    admission: Admission = field(init=False)
    """The places in ``serve.max_queue`` held by uploads the store's count cannot see yet."""

    def __post_init__(self) -> None:
        serve = self.settings.serve
        self.admission = Admission(serve.max_queue, serve.retry_after_s, self.store.active_count)


def app_state(request: Request) -> AppState:
    """The :class:`AppState` of the app serving ``request``."""
    state: AppState = request.app.state.trueframe
    return state


State = Annotated[AppState, Depends(app_state)]
