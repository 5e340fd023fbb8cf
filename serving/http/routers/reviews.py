"""Human reviews, appeals and the review queue (``/v1/jobs/{id}/review``, ``/appeal``, ``/v1/reviews``).

Roles: reviewers and admins record decisions, take appeals and read the whole queue (and any job);
a submitter appeals its own finished jobs and sees only its own queue items. Every state change
queues an event for the job owner's webhook (:mod:`serving.reviews.events`).
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from detector.report.schema import ReviewVerdict
from serving.auth.keys import Principal, Role
from serving.http.access import Caller, require_role
from serving.http.errors import AppealNotFound, Conflict, Forbidden, JobNotFound, echoed
from serving.http.openapi import errors
from serving.http.state import AppState, State, off_loop
from serving.jobs.store import Job, valid_job_id
from serving.reviews import records
from serving.reviews.events import add_event
from serving.reviews.views import appeal_view, human_review

router = APIRouter(prefix="/v1", tags=["reviews"])
STAFF: tuple[Role, ...] = ("reviewer", "admin")


def _no_nul(value: str | None) -> str | None:
    """Refuse a NUL character: PostgreSQL text cannot hold one (it answered 500 there)."""
    if value is not None and "\x00" in value:
        raise ValueError("must not contain a NUL character")
    return value


class ReviewIn(BaseModel):
    """Texts are kept without surrounding blanks; a reason of blanks only is refused, as is a NUL."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    verdict: ReviewVerdict
    reason: str = Field(min_length=1, max_length=2000, description="why, in the reviewer's words")
    notes: str | None = Field(None, max_length=10000, description="optional; blanks only count as none")

    _texts = field_validator("reason", "notes")(_no_nul)

    @field_validator("notes")
    @classmethod
    def _blank_notes(cls, value: str | None) -> str | None:
        return value or None


class AppealIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    statement: str = Field(min_length=1, max_length=5000, description="why the decision is wrong")

    _texts = field_validator("statement")(_no_nul)


def is_staff(caller: Principal) -> bool:
    return caller.role in STAFF


async def visible_job(state: AppState, caller: Principal, job_id: str) -> Job:
    """The job if the caller owns it or is staff; 404 ``job_not_found`` otherwise."""
    owner = None if is_staff(caller) else caller.owner
    job = await off_loop(state.store.get, job_id, owner)
    if job is None:
        raise JobNotFound(f"no job {echoed(job_id)}")
    return job


async def _emit(state: AppState, job: Job, event: str, payload: dict[str, Any]) -> None:
    state.runner.send_event(await off_loop(add_event, state.store, job, event, payload))


@router.post("/jobs/{job_id}/review", status_code=201, responses=errors(Forbidden, JobNotFound, Conflict))
async def review_job(job_id: str, body: ReviewIn, caller: Caller, state: State) -> JSONResponse:
    """Record a reviewer's decision (append-only); it decides the job's pending appeal, if any (an
    appeal another reviewer has taken only when the caller is an admin: 409 otherwise)."""
    require_role(caller, *STAFF)
    job = await visible_job(state, caller, job_id)
    review, decided = await off_loop(
        partial(records.record_review, override=caller.role == "admin"), state.store, job, caller.owner,
        body.verdict, body.reason, body.notes, state.runner.ttl_s,
    )  # fmt: skip
    owner_view = human_review(review, staff=False)
    await _emit(state, job, "review.recorded", {"review": owner_view})
    for appeal in decided:
        await _emit(
            state, job, f"appeal.{appeal.state}", {"appeal": appeal.public(False), "review": owner_view}
        )
    answer = {"review": human_review(review, staff=True), "appeals": [appeal_view(a, True) for a in decided]}
    return JSONResponse(answer, status_code=201)


@router.get("/jobs/{job_id}/reviews", responses=errors(JobNotFound))
async def list_reviews(job_id: str, caller: Caller, state: State) -> dict[str, Any]:
    """Every decision on the job, oldest first (the owner does not see who decided).

    Decisions are the record of what was decided and outlive their job (expired or deleted): they
    stay readable by the job's owner and by staff until the owner's data is erased.
    """
    owner = None if is_staff(caller) else caller.owner
    if not valid_job_id(job_id):  # never sent to the store (PostgreSQL answered a NUL with 500)
        raise JobNotFound(f"no job {echoed(job_id)}")
    job = await off_loop(state.store.get, job_id, owner)
    found = await off_loop(records.job_reviews, state.store, job_id)
    if job is None and not (found and owner in (None, found[0].job_owner)):
        raise JobNotFound(f"no job {echoed(job_id)}")
    return {"job_id": job_id, "reviews": [human_review(r, is_staff(caller)) for r in found]}


@router.post("/jobs/{job_id}/appeal", status_code=201, responses=errors(Forbidden, JobNotFound, Conflict))
async def appeal_job(job_id: str, body: AppealIn, caller: Caller, state: State) -> JSONResponse:
    """The job owner asks for another look at a finished analysis (or at its human decision).

    Staff, who may read every job, get ``403 forbidden`` for another key's job (not a 404 for a job
    they can read); any other key gets ``404 job_not_found``.
    """
    job = await visible_job(state, caller, job_id)
    if job.owner != caller.owner:
        raise Forbidden(f"only the key that submitted job {job.id} (its owner) can appeal it")
    appeal = await off_loop(records.open_appeal, state.store, job, body.statement)
    await _emit(state, job, "appeal.opened", {"appeal": appeal.public(False)})
    return JSONResponse(appeal_view(appeal, is_staff(caller)), status_code=201)


async def _visible_appeal(state: AppState, caller: Principal, appeal_id: str) -> records.Appeal:
    appeal = await off_loop(records.get_appeal, state.store, appeal_id)
    if appeal is None or not (is_staff(caller) or appeal.owner == caller.owner):
        raise AppealNotFound(f"no appeal {echoed(appeal_id)}")
    return appeal


@router.get("/appeals/{appeal_id}", responses=errors(AppealNotFound))
async def get_appeal(appeal_id: str, caller: Caller, state: State) -> dict[str, Any]:
    return appeal_view(await _visible_appeal(state, caller, appeal_id), is_staff(caller))


@router.post("/appeals/{appeal_id}/start", responses=errors(Forbidden, AppealNotFound, Conflict))
async def start_appeal(appeal_id: str, caller: Caller, state: State) -> dict[str, Any]:
    """A reviewer takes an open appeal (``in_review``, assigned to them)."""
    require_role(caller, *STAFF)
    await _visible_appeal(state, caller, appeal_id)
    appeal = await off_loop(records.start_appeal, state.store, appeal_id, caller.owner)
    job = await off_loop(state.store.get, appeal.job_id)
    if job is not None:
        await _emit(state, job, "appeal.in_review", {"appeal": appeal.public(False)})
    return appeal_view(appeal, True)


@router.get("/reviews/queue", responses=errors(Forbidden))
async def review_queue(
    caller: Caller,
    state: State,
    kind: Literal["appeal", "flagged"] = "appeal",
    owner: Annotated[str | None, Query(max_length=128, pattern=r"^[^\x00]*$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Pending appeals, or model-flagged jobs without a human decision: oldest first, then by score.

    Reviewers and admins see every key's items (``owner`` narrows it to one key); a submitter
    sees only its own and may not ask for another key's.
    """
    if not is_staff(caller):
        if owner is not None and owner != caller.owner:
            raise Forbidden("a submitter key sees only its own queue items")
        owner = caller.owner
    items = await off_loop(records.queue, state.store, kind, owner, limit)
    for item in items:
        item["links"] = {"job": f"/v1/jobs/{item['job_id']}"}
        if kind == "appeal":
            item["links"]["appeal"] = f"/v1/appeals/{item['appeal_id']}"
        if not is_staff(caller):
            item.pop("assigned_to", None)
    return {"kind": kind, "items": items}
