"""Reviews and appeals in the store: append-only decisions, appeal states, the review queue.

A **review** is a reviewer's decision on a finished job (verdict, reason, notes, who and when). It
is never changed or deleted (only a key's erasure removes the reviews of its jobs); the latest one
is the job's human decision, and it puts the job's PDQ hashes in the ``reviewed`` hash list.

An **appeal** is the job owner's request to look again: ``open`` -> ``in_review`` (a reviewer took
it) -> ``upheld`` (the new decision equals the contested one) or ``overturned``. The contested
decision is the job's latest human decision, else the model's verdict read as a review verdict.
While an appeal is open its job does not expire; once decided it is kept ``report_ttl_hours`` more.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any, Literal, cast

from sqlalchemy import Connection, RowMapping, and_, exists, insert, or_, select, update

from serving.http.errors import AppealNotFound, Conflict, JobNotFound
from serving.jobs.store import Job, JobStore
from serving.known.lists import bump, put_reviewed, usable_hashes
from serving.store.schema import PENDING_APPEALS, appeals, jobs, reviews

AppealState = Literal["open", "in_review", "upheld", "overturned"]
PENDING: tuple[AppealState, ...] = cast(tuple[AppealState, ...], PENDING_APPEALS)
FLAGGED = ("likely_manipulated", "manipulated", "ai_generated")
MODEL_AS_REVIEW = {
    "authentic": "authentic",
    "likely_authentic": "authentic",
    "uncertain": "inconclusive",
    "out_of_scope": "inconclusive",
    "likely_manipulated": "manipulated",
    "manipulated": "manipulated",
    "ai_generated": "ai_generated",
}
"""The model's seven verdicts read as the four a reviewer records (what an appeal contests)."""


@dataclass(frozen=True)
class Review:
    id: str
    job_id: str
    job_owner: str
    reviewer: str
    verdict: str
    reason: str
    notes: str | None
    created_at: float
    model_verdict: str | None
    model_score: float | None
    sha256: str | None
    kind: str | None
    appeal_id: str | None

    def public(self, staff: bool) -> dict[str, Any]:
        """The JSON view; only reviewers and admins see who decided."""
        return {
            "review_id": self.id, "job_id": self.job_id, "verdict": self.verdict, "reason": self.reason,
            "notes": self.notes, "reviewed_at": self.created_at, "reviewer": self.reviewer if staff else None,
            "model_verdict": self.model_verdict, "model_score": self.model_score, "appeal_id": self.appeal_id,
        }  # fmt: skip


@dataclass(frozen=True)
class Appeal:
    id: str
    job_id: str
    owner: str
    statement: str
    state: AppealState
    contested_verdict: str | None
    assigned_to: str | None
    review_id: str | None
    created_at: float
    updated_at: float

    def public(self, staff: bool) -> dict[str, Any]:
        body = asdict(self)
        body["appeal_id"] = body.pop("id")
        if not staff:
            body["assigned_to"] = None
        return body


def _review(row: RowMapping) -> Review:
    return Review(**dict(row))


def _appeal(row: RowMapping) -> Appeal:
    return Appeal(**dict(row))


def job_reviews(store: JobStore, job_id: str) -> list[Review]:
    """Every decision on the job, oldest first."""
    stmt = select(reviews).where(reviews.c.job_id == job_id).order_by(reviews.c.created_at, reviews.c.id)
    return [_review(r) for r in store.query(stmt)]


def latest_review(store: JobStore, job_id: str) -> Review | None:
    found = job_reviews(store, job_id)
    return found[-1] if found else None


def job_appeals(store: JobStore, job_id: str) -> list[Appeal]:
    stmt = select(appeals).where(appeals.c.job_id == job_id).order_by(appeals.c.created_at)
    return [_appeal(r) for r in store.query(stmt)]


APPEAL_ID = re.compile(r"apl_[A-Za-z0-9_-]{16}")
"""The shape of every appeal id (``apl_`` and 96 random bits); anything else never reaches SQL."""


def get_appeal(store: JobStore, appeal_id: str) -> Appeal | None:
    """The appeal, or None when unknown or malformed (a NUL, which PostgreSQL answered with 500)."""
    if APPEAL_ID.fullmatch(appeal_id) is None:
        return None
    rows = store.query(select(appeals).where(appeals.c.id == appeal_id))
    return _appeal(rows[0]) if rows else None


def _extend(db: Connection, job_id: str, until: float | None) -> None:
    """Keep the job at least until ``until`` (None: indefinitely, while an appeal is pending)."""
    current = db.execute(select(jobs.c.expires_at).where(jobs.c.id == job_id)).scalar()
    keep = None if until is None else max(until, current or 0.0)
    db.execute(update(jobs).where(jobs.c.id == job_id).values(expires_at=keep))


def _lock_job(db: Connection, job_id: str) -> None:
    """Hold the job's row until the transaction ends, so decisions and appeals on one job take turns
    (PostgreSQL ``SELECT ... FOR UPDATE``; SQLite's ``BEGIN IMMEDIATE`` already serialises writers).
    Without it, on PostgreSQL two appeals at once both stayed pending and two decisions at once both
    decided the same appeal. ``job_not_found`` when the job was deleted meanwhile."""
    if db.execute(select(jobs.c.id).where(jobs.c.id == job_id).with_for_update()).first() is None:
        raise JobNotFound(f"no job {job_id!r}")


def record_review(
    store: JobStore,
    job: Job,
    reviewer: str,
    verdict: str,
    reason: str,
    notes: str | None,
    ttl_s: float,
    *,
    override: bool = False,
) -> tuple[Review, list[Appeal]]:
    """Append a decision on a succeeded job; decide its pending appeals; update the ``reviewed`` list.

    An appeal another reviewer has taken is theirs to decide: ``conflict`` unless ``override`` (an
    admin's decision, e.g. when the reviewer who took it is away)."""
    if job.status != "succeeded" or job.report is None:
        raise Conflict(f"job {job.id} has no report to review (status {job.status})")
    with store.transaction() as db:
        bump(db)  # first, as every hash-list writer does: erasing a key bumps it, then deletes its jobs
        _lock_job(db, job.id)
        now = time.time()  # after the lock: decisions are dated in the order they are recorded
        review = Review(
            "rev_" + secrets.token_urlsafe(12), job.id, job.owner, reviewer, verdict, reason, notes, now,
            job.verdict, job.score, job.sha256, job.kind, None,
        )  # fmt: skip
        pending = [
            _appeal(r)
            for r in db.execute(
                select(appeals).where(appeals.c.job_id == job.id, appeals.c.state.in_(PENDING))
            ).mappings()
        ]
        taken = [a for a in pending if a.state == "in_review" and a.assigned_to not in (None, reviewer)]
        if taken and not override:
            who = taken[0].assigned_to
            raise Conflict(f"appeal {taken[0].id} was taken by {who}: only they or an admin may decide it")
        if pending:
            review = Review(**{**asdict(review), "appeal_id": pending[0].id})
        db.execute(insert(reviews).values(**asdict(review)))
        decided = [_decide(db, appeal, review) for appeal in pending]
        put_reviewed(
            db, job_id=job.id, owner=job.owner, kind=job.kind or "image", verdict=verdict, item=review.id,
            hashes=usable_hashes(job.report.get("perceptual_hash")), at=now,
        )  # fmt: skip
        _extend(db, job.id, now + ttl_s)
    return review, decided


def _decide(db: Connection, appeal: Appeal, review: Review) -> Appeal:
    state: AppealState = "upheld" if review.verdict == appeal.contested_verdict else "overturned"
    db.execute(
        update(appeals)
        .where(appeals.c.id == appeal.id, appeals.c.state.in_(PENDING))
        .values(state=state, review_id=review.id, updated_at=review.created_at)
    )
    return Appeal(
        **{**asdict(appeal), "state": state, "review_id": review.id, "updated_at": review.created_at}
    )


def open_appeal(store: JobStore, job: Job, statement: str) -> Appeal:
    """The job owner's appeal against the job's current decision; one pending appeal per job."""
    if job.status != "succeeded" or job.report is None:
        raise Conflict(f"only a finished analysis can be appealed (job {job.id} is {job.status})")
    with store.transaction() as db:
        _lock_job(db, job.id)
        busy = select(appeals.c.id).where(appeals.c.job_id == job.id, appeals.c.state.in_(PENDING))
        if db.execute(busy).first() is not None:
            raise Conflict(f"job {job.id} already has an appeal waiting for a decision")
        # read under the lock: a decision recorded just before is the one contested
        newest = select(reviews.c.verdict).where(reviews.c.job_id == job.id)
        newest = newest.order_by(reviews.c.created_at.desc(), reviews.c.id.desc()).limit(1)
        latest = db.execute(newest).scalar()
        contested = latest if latest is not None else MODEL_AS_REVIEW.get(job.verdict or "", "inconclusive")
        now = time.time()
        appeal = Appeal(
            "apl_" + secrets.token_urlsafe(12), job.id, job.owner, statement, "open", contested, None, None,
            now, now,
        )  # fmt: skip
        db.execute(insert(appeals).values(**asdict(appeal)))
        _extend(db, job.id, None)
    return appeal


def start_appeal(store: JobStore, appeal_id: str, reviewer: str) -> Appeal:
    """A reviewer takes an open appeal: ``in_review``, assigned to them. The appeal's job is locked
    first, as a decision locks it: on PostgreSQL a take landing between a decision's read of the
    pending appeals and its write was overwritten by that decision, after answering 200."""
    if APPEAL_ID.fullmatch(appeal_id) is None:
        raise AppealNotFound(f"no appeal {appeal_id}")
    with store.transaction() as db:
        job_id = db.execute(select(appeals.c.job_id).where(appeals.c.id == appeal_id)).scalar()
        if job_id is None:
            raise AppealNotFound(f"no appeal {appeal_id}")
        _lock_job(db, job_id)
        now = time.time()
        cur = db.execute(
            update(appeals)
            .where(appeals.c.id == appeal_id, appeals.c.state == "open")
            .values(state="in_review", assigned_to=reviewer, updated_at=now)
        )
    found = get_appeal(store, appeal_id)
    if found is None:
        raise AppealNotFound(f"no appeal {appeal_id}")
    if cur.rowcount != 1:
        raise Conflict(f"appeal {appeal_id} is {found.state}, not open")
    return found


def queue(store: JobStore, kind: str, owner: str | None, limit: int) -> list[dict[str, Any]]:
    """The review queue, oldest first and, at equal age, highest P(manipulated) first.

    ``appeal``: pending appeals. ``flagged``: succeeded jobs the models flagged (likely manipulated,
    manipulated, AI-generated) whose bytes no review judged (this job or an identical upload, also
    one made before the decision) and that had no reviewed near-duplicate when analysed, with the
    state of a pending appeal of the job (``appeal_state``, else None). ``owner`` limits it to one
    key's items.
    """
    j, a = jobs.c, appeals.c
    cols = (j.id.label("job_id"), j.owner, j.name, j.kind, j.verdict, j.score, j.known_verdict, j.created_at)
    if kind == "appeal":
        stmt = (
            select(*cols, a.id.label("appeal_id"), a.state, a.statement, a.contested_verdict, a.assigned_to,
                   a.created_at.label("appealed_at"))
            .select_from(appeals.join(jobs, j.id == a.job_id))
            .where(a.state.in_(PENDING))
            .order_by(a.created_at, j.score.desc())
        )  # fmt: skip
    else:
        reviewed = exists().where(reviews.c.sha256 == j.sha256)  # a decision names the bytes it judged
        live = or_(j.expires_at.is_(None), j.expires_at > time.time())
        pending = (  # a job holds at most one pending appeal
            select(a.state).where(a.job_id == j.id, a.state.in_(PENDING)).limit(1).scalar_subquery()
        )
        stmt = (
            select(*cols, pending.label("appeal_state"))
            .where(and_(j.status == "succeeded", j.verdict.in_(FLAGGED), j.known_verdict.is_(None), live))
            .where(~reviewed)
            .order_by(j.created_at, j.score.desc())
        )
    if owner is not None:
        stmt = stmt.where(j.owner == owner)
    return [dict(r) for r in store.query(stmt.limit(limit))]
