"""Operations: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response, Security

from serving.health import StoreProbe
from serving.http.access import API_KEY, BEARER, SESSION, principal, require_role
from serving.http.errors import Forbidden, NotReady, Unauthorized
from serving.http.metrics import CONTENT_TYPE_LATEST
from serving.http.openapi import errors
from serving.http.state import State

log = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get("/readyz", responses=errors(NotReady))
async def readyz(request: Request, state: State) -> dict[str, str]:
    """Models are loaded, the store answers and the workers run: 200, else 503 ``not_ready``."""
    if not await state.analyzer.ready():
        raise NotReady("models are not loaded (weights missing?)")
    probe: StoreProbe | None = getattr(request.app.state, "store_probe", None)
    if probe is not None and (problem := await probe.problem()) is not None:
        log.warning("not ready: %s", problem)  # the database address stays in the log
        raise NotReady("the job store cannot be reached; the service log has the details")
    if (problem := state.runner.problem()) is not None:
        raise NotReady(problem)
    return {"status": "ready"}


@router.get(
    "/metrics",
    response_class=Response,
    responses=errors(Unauthorized, Forbidden),
    dependencies=[Security(BEARER), Security(API_KEY), Security(SESSION)],  # declared: read by principal
)
async def metrics(request: Request, state: State) -> Response:
    """Prometheus text exposition: public when configured, else for admin keys (anyone while open)."""
    if not state.settings.serve.metrics_public:
        caller = await principal(request, state)
        if caller.via != "anonymous":
            require_role(caller, "admin")
    return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
