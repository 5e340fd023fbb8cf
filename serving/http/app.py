"""The HTTP API (FastAPI): ``create_app(settings, analyzer, store)``; routes in :mod:`serving.http.routers`.

Errors are always ``{"error": {"code", "message"}}`` with the status of the typed error
(:mod:`detector.errors`, :mod:`serving.http.errors`). Access rule: ``/v1`` needs an API key
(``Authorization: Bearer <key>`` or ``X-API-Key``) or the web form's session cookie whenever a
key exists or ``serve.api_keys_required`` is set; with no key at all (a fresh local ``make run``)
requests are anonymous. See :mod:`serving.auth.keys` for keys and sessions.

A store that cannot be reached is ``503 store_unavailable`` with ``Retry-After`` (the store raises
the typed error, :mod:`serving.jobs.store`); only a bug is ``500 internal_error``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount

from detector.errors import OPERATOR_ERRORS, InternalError, InvalidRequest, StoreUnavailable, TrueframeError
from detector.settings import Settings
from serving.analyzer import Analyzer
from serving.health import StoreProbe
from serving.http.errors import MethodNotAllowed, NotFound, PayloadTooLarge, QueueFull, RequestTimeout
from serving.http.metrics import Metrics
from serving.http.middleware import Observe
from serving.http.openapi import install as install_openapi
from serving.http.state import AppState
from serving.http.upload import BodyLimit
from serving.jobs.runner import JobRunner
from serving.jobs.store import JobStore
from serving.known.lookup import StoreKnownMedia

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


def create_app(
    settings: Settings, analyzer: Analyzer, store: JobStore, *, static_dir: Path | None = None
) -> FastAPI:
    """The service app; its lifespan runs the job worker (resuming jobs left by a previous run).

    ``static_dir`` holds the web form (``index.html`` served at ``/``, the rest under ``/static``).
    """
    from serving.http.routers import analyze, hashlists, jobs, ops, privacy, reviews, session, web

    metrics = Metrics(queue_depth=lambda: float(store.active_count()))
    runner = JobRunner(settings, analyzer, store, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runner.start()
        try:
            yield
        finally:
            await runner.stop()

    app = FastAPI(
        title="trueframe",
        summary="How likely is this image or video authentic, and why.",
        version="1",
        lifespan=lifespan,
        docs_url=None,  # served by routers/web.py without a CDN
        redoc_url=None,
    )
    static = STATIC_DIR if static_dir is None else static_dir
    known = getattr(analyzer, "known", None)
    app.state.trueframe = AppState(
        settings,
        analyzer,
        store,
        runner,
        metrics,
        static,
        known if isinstance(known, StoreKnownMedia) else None,
    )
    app.state.store_probe = StoreProbe(store)  # /readyz: SELECT 1, cached and time-bounded
    _add_error_handlers(app)
    install_openapi(app)  # the error envelope, key headers and upload bodies, not FastAPI's 422
    routers = (analyze, jobs, reviews, hashlists, privacy, session, ops, web)
    for router in (module.router for module in routers):
        app.include_router(router)
    if static.is_dir():
        app.mount("/static", StaticFiles(directory=static), name="static")
    max_bytes = max(settings.limits.max_image_bytes, settings.limits.max_video_bytes)
    app.add_middleware(BodyLimit, max_bytes=max_bytes, timeout_s=settings.serve.body_timeout_s)
    if settings.serve.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.serve.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
        )
    app.add_middleware(Observe, metrics=metrics)
    return app


def error_response(exc: TrueframeError, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON error body with the error's status and ``headers`` (``Retry-After`` for ``queue_full``
    and ``store_unavailable``; ``Connection: close`` when the body was not read to its end)."""
    headers = dict(headers or {})
    if isinstance(exc, QueueFull | StoreUnavailable):
        headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, PayloadTooLarge | RequestTimeout):
        headers["Connection"] = "close"  # do not wait for the rest of an oversize or stalled body
    return JSONResponse({"error": exc.to_dict()}, status_code=exc.http_status, headers=headers or None)


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
"""The methods :func:`allowed_methods` tries on a path."""


def allowed_methods(request: Request) -> str:
    """The ``Allow`` header of a 405: every method some route answers on this path.

    Each method is matched against the routes again: Starlette's own header names only the methods
    of the first route that matched the path (``GET`` for ``/v1/jobs/{id}``, which has ``DELETE`` too).
    """
    root = request.scope.get("app_root_path", request.scope.get("root_path", ""))  # a mount changes root_path
    methods: set[str] = set()
    for route in request.app.router.routes:
        for method in METHODS:
            probe = {"type": "http", "path": request.scope["path"], "method": method, "root_path": root}
            if route.matches(probe)[0] is Match.FULL:
                methods |= {"GET", "HEAD"} if isinstance(route, Mount) else {method}  # StaticFiles reads
    return ", ".join(sorted(methods))


def _add_error_handlers(app: FastAPI) -> None:
    async def typed(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, TrueframeError)
        if isinstance(exc, StoreUnavailable):  # the database's address and reason stay in the log
            log.warning("%s %s: %s", request.method, request.url.path, exc.message)
            exc = StoreUnavailable("the job store is unavailable; retry later")
        elif isinstance(exc, OPERATOR_ERRORS):  # weights, models, trust files: the operator's to fix
            log.error("%s %s: %s", request.method, request.url.path, exc)
        return error_response(exc)

    async def validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors()
        )
        return error_response(InvalidRequest(problems or "invalid request"))

    async def http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            return error_response(NotFound(f"no route {request.url.path}"))
        if exc.status_code == 405:
            exc405 = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}")
            return error_response(exc405, {"Allow": allowed_methods(request)})
        if exc.status_code < 500:  # e.g. a malformed multipart body: a documented, typed 400
            return error_response(InvalidRequest(f"the request could not be read: {exc.detail}"))
        log.error("HTTP %s on %s %s: %s", exc.status_code, request.method, request.url.path, exc.detail)
        return error_response(InternalError("internal error; the service log has the details"))

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(InternalError("internal error; the service log has the details"))

    app.add_exception_handler(TrueframeError, typed)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(StarletteHTTPException, http)
    app.add_exception_handler(Exception, unexpected)
