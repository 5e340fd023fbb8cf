"""Operations: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from serving.http.access import principal, require_role
from serving.http.errors import NotReady
from serving.http.metrics import CONTENT_TYPE_LATEST
from serving.http.state import State

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(state: State) -> dict[str, str]:
    """Models are loaded and the worker runs: 200, else 503 ``not_ready``."""
    if not await state.analyzer.ready():
        raise NotReady("models are not loaded (weights missing?)")
    return {"status": "ready"}


@router.get("/metrics", response_class=Response)
async def metrics(request: Request, state: State) -> Response:
    """Prometheus text exposition: public when configured, else for admin keys (anyone while open)."""
    if not state.settings.serve.metrics_public:
        caller = await principal(request, state)
        if caller.via != "anonymous":
            require_role(caller, "admin")
    return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
