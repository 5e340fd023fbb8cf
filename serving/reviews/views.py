"""JSON views of jobs with their human decision and appeal (what ``GET /v1/jobs/{id}`` answers)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from detector.report.schema import HumanReview
from serving.jobs.runner import job_json
from serving.jobs.store import Job, JobStore
from serving.reviews.records import Appeal, Review, job_appeals, latest_review


def human_review(review: Review, staff: bool) -> dict[str, Any]:
    """A decision as the report's ``review`` section (who decided: reviewers and admins only)."""
    model = HumanReview(
        review_id=review.id,
        verdict=review.verdict,
        reason=review.reason,
        notes=review.notes,
        reviewed_at=datetime.fromtimestamp(review.created_at, UTC),
        reviewer=review.reviewer if staff else None,
        model_verdict=review.model_verdict,
        appeal_id=review.appeal_id,
    )
    return model.model_dump(mode="json")


def job_view(store: JobStore, job: Job, staff: bool) -> dict[str, Any]:
    """The job's JSON; its report shows the latest human decision beside the model's (blocking)."""
    body = job_json(job)
    review = latest_review(store, job.id)
    appeals = job_appeals(store, job.id)
    decision = None if review is None else human_review(review, staff)
    if body["report"] is not None:
        body["report"] = {**body["report"], "review": decision}
    body["review"] = decision
    body["appeal"] = appeals[-1].public(staff) if appeals else None
    body["links"] |= {"reviews": f"/v1/jobs/{job.id}/reviews", "appeal": f"/v1/jobs/{job.id}/appeal"}
    body["callback"] = callback_view(job)
    return body


def callback_view(job: Job) -> dict[str, Any] | None:
    """Where the job's webhook goes and how its delivery stands (None without ``callback_url``):
    ``pending`` until it is delivered or given up on (``failed``), and the attempts made so far.
    Not in the webhook body itself, which is sent while the state is still ``pending``."""
    if job.callback_url is None:
        return None
    return {"url": job.callback_url, "state": job.callback_state, "attempts": job.callback_attempts}


def appeal_view(appeal: Appeal, staff: bool) -> dict[str, Any]:
    body = appeal.public(staff)
    body["links"] = {"self": f"/v1/appeals/{appeal.id}", "job": f"/v1/jobs/{appeal.job_id}"}
    return body
