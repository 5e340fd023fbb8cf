"""``POST /v1/analyze``: an image answers with its report, a video (or a callback) with a job."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from detector.errors import InvalidRequest
from detector.media.loader import Media, MediaLoader
from detector.settings import MAX_FRAMES
from detector.stages import Options
from serving.http.access import Caller
from serving.http.admission import Place
from serving.http.errors import JobNotFound, status_of
from serving.http.openapi import ANALYZE_RESPONSES, UPLOAD_BODY
from serving.http.state import AppState, State, off_loop
from serving.http.upload import Upload, read_upload
from serving.jobs.cache import result_key
from serving.jobs.runner import job_response
from serving.jobs.store import Job
from serving.jobs.webhooks import check_callback_url
from serving.known.lookup import still_current

router = APIRouter(prefix="/v1", tags=["analysis"])


class _Stored:
    """An upload's place (:class:`~serving.http.admission.Place`) until its job row is committed.

    The row's creation runs to its end even if the request is cancelled meanwhile (a client gone):
    a place given up by the cancelled request while the row was still being written counted in
    neither. The place is given up at the commit itself, under the admission lock
    (:meth:`Place.committing`), or, when the creation fails before it, once the creation ends.
    """

    def __init__(self, place: Place) -> None:
        self.place = place
        self.owner: asyncio.Future[Job] | None = None

    def release(self) -> None:
        """The request's end: give the place up, unless a row's creation owns it."""
        if self.owner is None:
            self.place.release()

    async def store(self, job: Coroutine[Any, Any, Job]) -> Job:
        """Run ``job`` (the row's creation, which gives the place up at its commit) to its end,
        shielded from the request's cancellation."""
        task = asyncio.ensure_future(job)
        self.owner = task
        task.add_done_callback(lambda _: self.place.release())
        return await asyncio.shield(task)


@router.post("/analyze", status_code=200, responses=ANALYZE_RESPONSES, openapi_extra=UPLOAD_BODY)
async def analyze(
    request: Request,
    caller: Caller,
    state: State,
    name: Annotated[str | None, Query(max_length=255)] = None,
    wait: bool = False,
    frames: Annotated[int | None, Query(ge=1, le=MAX_FRAMES)] = None,
    heatmaps: bool = False,
    callback_url: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response:
    """Analyse an upload (multipart field ``file`` or the raw body).

    Images: 200 with the report (``X-Trueframe-Job`` names the job it is kept as, for reviews and
    appeals). Videos, or any upload with ``callback_url``: 202 with a job (poll
    ``GET /v1/jobs/{id}``), or 200 with the report when ``wait=true`` and it finishes in time.
    """
    if callback_url is not None:
        check_callback_url(callback_url, state.settings.serve.callback_allow_private)
        if caller.webhook_secret is None:
            raise InvalidRequest("callback_url needs an API key (its webhook secret signs the callback)")
    await off_loop(state.admission.check)  # a full queue refuses before the body is read
    upload = await read_upload(request, name)
    place = _Stored(state.admission.place())  # taken once read: a trickled body holds none
    try:
        await off_loop(state.admission.take, place.place)
        return await _admitted(
            caller, state, upload, wait, Options(frames=frames, heatmaps=heatmaps), callback_url, place
        )
    finally:
        place.release()


async def _admitted(
    caller: Caller,
    state: AppState,
    upload: Upload,
    wait: bool,
    options: Options,
    callback_url: str | None,
    place: _Stored,
) -> Response:
    """The upload checked and answered (or stored as a job) once it holds its ``place``."""
    media, key, cached = await off_loop(_admit, state, upload.data, upload.name, options, caller.owner)
    if cached is not None:
        state.metrics.cache_hits.inc()
    if media.info.kind == "image" and callback_url is None:
        return await _image(state, media, upload.name, options, (key, caller.owner), cached)
    job = await place.store(
        _stored_job(state, caller.owner, media, upload.name, options, callback_url, cached, place.place)
    )
    if not wait:
        return job_response(job, 202)
    return await _wait(state, job.id, "miss" if cached is None else "hit")


async def _stored_job(
    state: AppState,
    owner: str,
    media: Media,
    name: str | None,
    options: Options,
    callback_url: str | None,
    cached: dict[str, Any] | None,
    place: Place,
) -> Job:
    """The upload stored as a job, queued for a worker (or finished at once from the cache); its
    ``place`` is given up at the row's commit."""
    job = await off_loop(
        state.store.create_job,
        owner=owner,
        sha256=media.info.sha256,
        options=dataclasses.asdict(options),
        name=name,
        media=media.data,
        callback_url=callback_url,
        report=cached,
        ttl_s=state.runner.ttl_s,
        committing=place.committing(),
    )
    if cached is None:
        state.runner.submit(job.id)
    else:
        state.runner.finished(job)
    return job


def _admit(
    state: AppState, data: bytes, name: str | None, options: Options, owner: str
) -> tuple[Media, str, dict[str, Any] | None]:
    """The loaded upload (typed errors for bad input), its result key and the caller's cached report.

    One worker-thread call for the three: each hop off the event loop costs time an image feels.
    """
    media = MediaLoader(state.settings.limits).load(data, name)
    key = result_key(state.settings, options, media.info.kind)
    return media, key, _cached(state, media.info.sha256, key, owner, name)


def _cached(state: AppState, sha256: str, key: str, owner: str, name: str | None) -> dict[str, Any] | None:
    """The caller's cached report, under this upload's ``name`` (the one thing in it a name changes),
    unless the hash lists now say something else about its media."""
    cached = state.store.cached_report(sha256, key, owner, max_age_s=state.runner.ttl_s)
    if cached is None or not still_current(state.known, cached):
        return None  # reviewed (or un-reviewed) since: analyse again so the fusion applies the match
    media = cached.get("media")
    return {**cached, "media": {**media, "name": name}} if isinstance(media, dict) else cached


async def _image(
    state: AppState,
    media: Media,
    name: str | None,
    options: Options,
    cache: tuple[str, str],
    cached: dict[str, Any] | None,
) -> Response:
    """The report of an image: from the caller's own cache, or analysed now and cached for them.

    Every answered image is also kept as a finished job (``X-Trueframe-Job``), so it can be
    reviewed and appealed like a video; a new report is cached in the same write.
    """
    body, hit = cached, "hit"
    if body is None:
        hit = "miss"
        started = time.perf_counter()
        report = await state.analyzer.analyze(media.data, name, options)
        state.metrics.analyses.labels("image").observe(time.perf_counter() - started)
        body = json.loads(report.to_json())
    job = await off_loop(
        state.store.create_job,
        owner=cache[1],
        sha256=media.info.sha256,
        options=dataclasses.asdict(options),
        name=name,
        report=body,
        ttl_s=state.runner.ttl_s,
        cache_key=cache[0] if hit == "miss" else None,
    )
    return JSONResponse(body, headers=_report_headers(hit, job.id))


def _report_headers(hit: str, job_id: str) -> dict[str, str]:
    """What an answered report carries besides its body: whether the cache answered, and its job."""
    return {"X-Trueframe-Cache": hit, "X-Trueframe-Job": job_id, "Link": f"</v1/jobs/{job_id}>; rel=job"}


async def _wait(state: AppState, job_id: str, hit: str) -> Response:
    """The job's report once it is done (``?wait=true``), with the same headers as an image's."""
    await state.runner.wait(job_id, state.settings.serve.wait_timeout_s)
    done = await off_loop(state.store.get, job_id)
    if done is None:
        raise JobNotFound("the job was deleted while waiting")
    if done.status == "succeeded":
        return JSONResponse(done.report, headers=_report_headers(hit, job_id))
    if done.status == "failed" and done.error_code is not None:
        body = {"error": {"code": done.error_code, "message": done.error_message}}
        return JSONResponse(body, status_code=status_of(done.error_code))
    return job_response(done, 202)
