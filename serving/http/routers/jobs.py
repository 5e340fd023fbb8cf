"""``/v1/jobs/{id}``: read a job (status, progress, partial results, report) or delete it."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from serving.http.access import Caller
from serving.http.errors import JobNotFound, echoed
from serving.http.openapi import errors
from serving.http.routers.reviews import is_staff, visible_job
from serving.http.state import State, off_loop
from serving.reviews.views import job_view

router = APIRouter(prefix="/v1/jobs", tags=["analysis"])


@router.get("/{job_id}", responses=errors(JobNotFound))
async def get_job(job_id: str, caller: Caller, state: State) -> JSONResponse:
    """Status, progress, partial results and (when done) the report or the error.

    The report carries the latest human decision (``review``) beside the model's score; ``appeal``
    is the latest appeal. Reviewers and admins may read any key's job.
    """
    job = await visible_job(state, caller, job_id)
    return JSONResponse(await off_loop(job_view, state.store, job, is_staff(caller)))


@router.delete("/{job_id}", status_code=204, responses=errors(JobNotFound))
async def delete_job(job_id: str, caller: Caller, state: State) -> Response:
    """Cancel if still queued or running, and delete the job, its report and its media."""
    if not await off_loop(state.store.delete, job_id, caller.owner):
        raise JobNotFound(f"no job {echoed(job_id)}")
    state.runner.forget(job_id)
    return Response(status_code=204)
