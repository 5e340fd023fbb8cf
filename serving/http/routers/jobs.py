"""``/v1/jobs/{id}``: read a job (status, progress, partial results, report) or delete it."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from serving.http.access import Caller
from serving.http.errors import JobNotFound
from serving.http.state import State, off_loop
from serving.jobs.runner import job_response

router = APIRouter(prefix="/v1/jobs", tags=["analysis"])


@router.get("/{job_id}")
async def get_job(job_id: str, caller: Caller, state: State) -> JSONResponse:
    """Status, progress, partial results and (when done) the report or the error."""
    job = await off_loop(state.store.get, job_id, owner=caller.owner)
    if job is None:
        raise JobNotFound(f"no job {job_id}")
    return job_response(job)


@router.delete("/{job_id}", status_code=204)
async def delete_job(job_id: str, caller: Caller, state: State) -> Response:
    """Cancel if still queued or running, and delete the job, its report and its media."""
    if not await off_loop(state.store.delete, job_id, caller.owner):
        raise JobNotFound(f"no job {job_id}")
    state.runner.forget(job_id)
    return Response(status_code=204)
