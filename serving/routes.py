"""The routes of :func:`serving.api.create_app`: ``/v1`` API, health, metrics and the web form."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import anyio.to_thread
from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from detector.errors import InvalidRequest, all_error_classes
from detector.media import Media, MediaLoader
from detector.settings import Settings
from serving.analyzer import AnalyzeOptions, Analyzer
from serving.errors import JobNotFound, NotFound, NotReady, QueueFull, Unauthorized
from serving.jobs import JobRunner, job_json
from serving.keys import (
    Principal,
    any_active_key,
    authenticate_key,
    create_session,
    end_session,
    key_webhook_secret,
    session_owner,
)
from serving.metrics import CONTENT_TYPE_LATEST, Metrics
from serving.store import Job, JobStore
from serving.upload import read_upload
from serving.webhooks import check_callback_url

SESSION_COOKIE = "trueframe_session"


def _state(request: Request) -> Any:
    return request.app.state


def principal(request: Request) -> Principal:
    """Who calls: a key header wins, then the session cookie, then anonymous (only while open)."""
    state = _state(request)
    store: JobStore = state.store
    settings: Settings = state.settings
    token = request.headers.get("x-api-key")
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        token = auth[7:].strip()
    if token:
        found = authenticate_key(store, token)
        if found is None:
            raise Unauthorized("the API key is not valid (unknown or revoked)")
        return found
    open_mode = _open_mode(state)
    cookie = request.cookies.get(SESSION_COOKIE)
    owner = session_owner(store, cookie) if cookie else None
    if owner is not None and (owner.startswith("key:") or open_mode):
        _same_origin(request)
        secret = key_webhook_secret(store, owner) or settings.serve.webhook_secret
        return Principal(owner=owner, webhook_secret=secret, via="session")
    if open_mode:
        return Principal(owner="anonymous", webhook_secret=settings.serve.webhook_secret, via="anonymous")
    raise Unauthorized("send an API key: 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")


Caller = Annotated[Principal, Depends(principal)]


def _open_mode(state: Any) -> bool:
    """No key is required: none is configured as mandatory and none exists."""
    return not state.settings.serve.api_keys_required and not any_active_key(state.store)


def _same_origin(request: Request) -> None:
    """Cookie-authorised requests must not come from another site (besides ``SameSite=Strict``)."""
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        raise Unauthorized("the session cookie is not accepted on cross-site requests")


def _status_of(code: str) -> int:
    return next((c.http_status for c in all_error_classes() if c.code == code), 500)


def _job_response(job: Job, status_code: int = 200) -> JSONResponse:
    headers = {"Location": f"/v1/jobs/{job.id}"} if status_code == 202 else None
    return JSONResponse(job_json(job), status_code=status_code, headers=headers)


def register_routes(app: FastAPI, static_dir: Path) -> None:
    """Attach every route to ``app``."""

    @app.post("/v1/analyze", tags=["analysis"], status_code=200, responses={202: {"description": "job"}})
    async def analyze(
        request: Request,
        caller: Caller,
        name: Annotated[str | None, Query(max_length=255)] = None,
        wait: bool = False,
        frames: Annotated[int | None, Query(ge=1, le=512)] = None,
        heatmaps: bool = False,
        callback_url: Annotated[str | None, Query(max_length=2048)] = None,
    ) -> Response:
        """Analyse an upload (multipart field ``file`` or the raw body).

        Images: 200 with the report. Videos, or any upload with ``callback_url``: 202 with a job
        (poll ``GET /v1/jobs/{id}``), or 200 with the report when ``wait=true`` and it finishes in time.
        """
        state = _state(request)
        settings: Settings = state.settings
        store: JobStore = state.store
        runner: JobRunner = state.runner
        analyzer: Analyzer = state.analyzer
        if store.active_count() + state.sync_inflight >= settings.serve.max_queue:
            raise QueueFull(
                f"{settings.serve.max_queue} analyses are queued or running; retry later",
                retry_after=settings.serve.retry_after_s,
            )
        if callback_url is not None:
            check_callback_url(callback_url, settings.serve.callback_allow_private)
            if caller.webhook_secret is None:
                raise InvalidRequest("callback_url needs an API key (its webhook secret signs the callback)")
        upload = await read_upload(request, name)
        loader = MediaLoader(settings.limits)
        media: Media = await anyio.to_thread.run_sync(loader.load, upload.data, upload.name)
        info = media.info
        options = AnalyzeOptions(frames=frames, heatmaps=heatmaps)
        cache_key = (info.sha256, analyzer.model_versions(), options.cache_key())
        cached = store.cached_report(*cache_key)
        metrics: Metrics = state.metrics
        if cached is not None:
            metrics.cache_hits.inc()
        if info.kind == "image" and callback_url is None:
            if cached is not None:
                return JSONResponse(cached, headers={"X-Trueframe-Cache": "hit"})
            state.sync_inflight += 1
            try:
                report = await analyzer.analyze(media.data, upload.name, options)
            finally:
                state.sync_inflight -= 1
            body = json.loads(report.to_json())
            store.cache_report(*cache_key, body)
            return JSONResponse(body, headers={"X-Trueframe-Cache": "miss"})
        job = store.create_job(
            owner=caller.owner,
            sha256=info.sha256,
            options=dataclasses.asdict(options),
            name=upload.name,
            media=media.data,
            callback_url=callback_url,
            report=cached,
            ttl_s=runner.ttl_s,
        )
        if cached is None:
            runner.submit(job.id)
        else:
            runner.finished(job)
        if not wait:
            return _job_response(job, 202)
        await runner.wait(job.id, settings.serve.wait_timeout_s)
        done = store.get(job.id)
        if done is None:
            raise JobNotFound("the job was deleted while waiting")
        if done.status == "succeeded":
            return JSONResponse(done.report)
        if done.status == "failed" and done.error_code is not None:
            body = {"error": {"code": done.error_code, "message": done.error_message}}
            return JSONResponse(body, status_code=_status_of(done.error_code))
        return _job_response(done, 202)

    @app.get("/v1/jobs/{job_id}", tags=["analysis"])
    async def get_job(request: Request, job_id: str, caller: Caller) -> JSONResponse:
        """Status, progress, partial results and (when done) the report or the error."""
        job = _state(request).store.get(job_id, owner=caller.owner)
        if job is None:
            raise JobNotFound(f"no job {job_id}")
        return _job_response(job)

    @app.delete("/v1/jobs/{job_id}", tags=["analysis"], status_code=204)
    async def delete_job(request: Request, job_id: str, caller: Caller) -> Response:
        """Cancel if still queued or running, and delete the job, its report and its media."""
        state = _state(request)
        if not state.store.delete(job_id, caller.owner):
            raise JobNotFound(f"no job {job_id}")
        state.runner.forget(job_id)
        return Response(status_code=204)

    @app.post("/v1/session", tags=["access"], status_code=204)
    async def start_session(request: Request, caller: Caller) -> Response:
        """Exchange a key (sent once, in a header) for the web form's session cookie."""
        state = _state(request)
        owner = caller.owner if caller.via == "key" else None
        response = Response(status_code=204)
        _set_session(response, state, owner)
        return response

    @app.delete("/v1/session", tags=["access"], status_code=204)
    async def stop_session(request: Request) -> Response:
        if cookie := request.cookies.get(SESSION_COOKIE):
            end_session(_state(request).store, cookie)
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    async def readyz(request: Request) -> dict[str, str]:
        """Models are loaded and the worker runs: 200, else 503 ``not_ready``."""
        if not await _state(request).analyzer.ready():
            raise NotReady("models are not loaded (weights missing?)")
        return {"status": "ready"}

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def metrics(request: Request) -> Response:
        """Prometheus text exposition."""
        return Response(_state(request).metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    async def index(request: Request) -> Response:
        """The web form; while the service is open, a fresh visitor gets an anonymous session."""
        page = static_dir / "index.html"
        if not page.is_file():
            raise NotFound("the web form is not installed (serving/static/index.html)")
        response: Response = FileResponse(page, media_type="text/html")
        state = _state(request)
        cookie = request.cookies.get(SESSION_COOKIE)
        if _open_mode(state) and (cookie is None or session_owner(state.store, cookie) is None):
            _set_session(response, state, None)
        return response

    if static_dir.is_dir():
        app.mount("/static", StaticFiles(directory=static_dir), name="static")


def _set_session(response: Response, state: Any, owner: str | None) -> None:
    settings: Settings = state.settings
    ttl_s = settings.serve.session_ttl_hours * 3600.0
    token, _ = create_session(state.store, owner, ttl_s)
    response.set_cookie(
        SESSION_COOKIE, token, max_age=int(ttl_s), path="/", httponly=True, samesite="strict",
        secure=False,  # the default bind is loopback over plain HTTP; a TLS proxy may add Secure
    )  # fmt: skip
