"""The job worker: runs queued jobs through the analyzer, records outcomes, sends webhooks, purges.

Started and stopped by the app's lifespan. On start it recovers the store (jobs that were running
go back in the queue, jobs whose media is gone fail with a reason), queues every waiting job in
arrival order and resumes undelivered webhooks. ``job_workers = 0`` accepts jobs without running
them (another process on the same store will).

A worker touches the heartbeat of the jobs it runs every :data:`HEARTBEAT_S` (at most a third of
``serve.job_stale_s``). On SQLite (one process) start-up requeues every running job: none can
still be running. On a shared database (PostgreSQL, several replicas) a running job may belong to
another live replica, so a starting replica requeues only running jobs whose heartbeat is older
than ``serve.job_stale_s`` (their worker died). Because a replica restarted sooner than that would
miss its own jobs, every started runner also sweeps the store every third of ``job_stale_s`` and
requeues the running jobs that went stale meanwhile (never its own), on both backends. Review and
appeal events (:mod:`serving.reviews.events`) are delivered here too, and resumed on start.

The worker outlives the store: while the database cannot be reached
(:class:`~detector.errors.StoreUnavailable`) a progress update is skipped, and claiming a job or
recording its outcome is retried with doubling backoff (:data:`STORE_RETRY_S`) until the store
answers again, so a short outage neither kills the worker nor leaves a job ``running`` for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from fastapi.responses import JSONResponse

from detector.errors import OPERATOR_ERRORS, StoreUnavailable, TrueframeError
from detector.settings import Settings
from detector.stages import Options
from serving.analyzer import Analyzer
from serving.auth.keys import key_webhook_secret
from serving.http.metrics import Metrics
from serving.jobs.cache import result_key
from serving.jobs.store import Job, JobStatus, JobStore
from serving.jobs.webhooks import deliver
from serving.offload import off_loop
from serving.reviews.events import Event, count_event_attempt, mark_event, pending_events

log = logging.getLogger(__name__)

HEARTBEAT_S = 15.0
STORE_RETRY_S = (0.5, 30.0)
"""While the store is unavailable: the first retry delay, doubled up to the second."""

P = ParamSpec("P")
R = TypeVar("R")


class JobGone(Exception):
    """Raised from a job's progress callback when its row no longer holds this worker's claim (the
    job was deleted, or another worker took it over): the analysis stops at the next stage."""


def job_json(job: Job) -> dict[str, Any]:
    """The public view of a job (``GET /v1/jobs/{id}`` and the webhook body)."""
    error = None if job.error_code is None else {"code": job.error_code, "message": job.error_message}
    return {
        "job_id": job.id,
        "status": job.status,
        "progress": job.progress,
        "partial": job.partial,
        "report": job.report,
        "error": error,
        "name": job.name,
        "sha256": job.sha256,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "expires_at": job.expires_at,
        "links": {"self": f"/v1/jobs/{job.id}"},
    }


def job_response(job: Job, status_code: int = 200) -> JSONResponse:
    """The job as an HTTP response (``Location`` header on 202)."""
    headers = {"Location": f"/v1/jobs/{job.id}"} if status_code == 202 else None
    return JSONResponse(job_json(job), status_code=status_code, headers=headers)


class JobRunner:
    """Worker tasks over an asyncio queue of job ids; the store is the source of truth."""

    def __init__(self, settings: Settings, analyzer: Analyzer, store: JobStore, metrics: Metrics) -> None:
        self.settings, self.analyzer, self.store, self.metrics = settings, analyzer, store, metrics
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()  # ids in ``queue``, not yet taken by a worker
        self._store_failed_at = -math.inf  # monotonic time this runner last saw StoreUnavailable
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._done: dict[str, asyncio.Event] = {}
        self._running: dict[str, int] = {}  # job id -> the claim this runner holds
        self._draining = False
        self._event_tails: dict[str, asyncio.Task[None]] = {}

    @property
    def ttl_s(self) -> float:
        return self.settings.serve.report_ttl_hours * 3600.0

    @property
    def stale_s(self) -> float:
        """How old a running job's heartbeat must be before another worker may take the job over."""
        return self.settings.serve.job_stale_s

    @property
    def heartbeat_s(self) -> float:
        """How often running jobs' heartbeats are touched: well within :attr:`stale_s`."""
        return min(HEARTBEAT_S, self.stale_s / 3.0)

    async def start(self) -> None:
        """Recover the store and start workers; with ``job_workers = 0`` nothing is touched or run."""
        if self.settings.serve.job_workers == 0:
            self._tasks.append(asyncio.create_task(self._purge_loop()))
            return
        stale_before = time.time() - self.stale_s if self.store.shared else None
        requeued, failed = await off_loop(self.store.recover, self.ttl_s, stale_before)
        if requeued or failed:
            log.info("recovered jobs: %d back in the queue, %d failed", len(requeued), len(failed))
        for job_id in await off_loop(self.store.queued_ids, local_media=True):
            self.submit(job_id)
        for job in await off_loop(self.store.pending_callbacks):
            self._spawn(self._send_webhook(job))
        for event in await off_loop(pending_events, self.store):
            self.send_event(event)
        for _ in range(self.settings.serve.job_workers):
            self._tasks.append(asyncio.create_task(self._work()))
        self._tasks.append(asyncio.create_task(self._purge_loop()))
        self._tasks.append(asyncio.create_task(self._heartbeat_loop()))
        self._tasks.append(asyncio.create_task(self._sweep_loop()))

    async def stop(self) -> None:
        """Cancel workers and webhooks; a job cut short stays ``running`` and is resumed on restart."""
        for task in [*self._tasks, *self._background]:
            task.cancel()
        for task in [*self._tasks, *self._background]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    def problem(self) -> str | None:
        """Why started workers can no longer take jobs (one of their tasks ended), else None."""
        if any(task.done() for task in self._tasks):
            return "a job worker task stopped; the service log has the details"
        return None

    def submit(self, job_id: str) -> None:
        """Queue a job for a worker (once: a job already waiting in this runner is not added again)."""
        if job_id not in self._queued:
            self._queued.add(job_id)
            self.queue.put_nowait(job_id)

    def _store_failed(self) -> None:
        """Note that the store just could not be reached: heartbeats were missed meanwhile, so the
        sweep holds off for one ``job_stale_s`` (it would take live jobs for dead ones)."""
        self._store_failed_at = time.monotonic()

    async def wait(self, job_id: str, timeout: float) -> None:
        """Return when the job finishes, ``timeout`` passes or the service starts to stop (the caller
        re-reads the store)."""
        event = self._done.setdefault(job_id, asyncio.Event())
        job = await off_loop(self.store.get, job_id)
        if job is None or job.finished:
            self.forget(job_id)  # nothing else would set it; any waiter on it re-reads the store too
            return
        if self._draining:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    def drain(self) -> None:
        """The service is stopping: claim no more jobs (they stay queued for the restart) and answer
        every ``?wait=true`` waiter now, with its job's 202 and ``Location``. Before, the server
        waited for those requests (up to ``serve.wait_timeout_s``) and kept starting queued jobs."""
        self._draining = True
        for event in self._done.values():
            event.set()

    def forget(self, job_id: str) -> None:
        """Wake anyone waiting on a job that was deleted, or that ended without this runner's
        outcome (taken over by another worker): they re-read the store."""
        if (event := self._done.pop(job_id, None)) is not None:
            event.set()

    def finished(self, job: Job) -> None:
        """Wake waiters and send the webhook of a job that just reached a final state."""
        self.metrics.jobs.labels(job.status).inc()
        if (event := self._done.pop(job.id, None)) is not None:
            event.set()
        if job.callback_url:
            self._spawn(self._send_webhook(job))

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _persist(self, what: str, func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """``func(*args, **kwargs)`` off the loop, retried with doubling backoff for as long as the
        store is unavailable (a warning is logged on the first failure and every tenth after)."""
        delay, failures = STORE_RETRY_S[0], 0
        while True:
            try:
                return await off_loop(func, *args, **kwargs)
            except StoreUnavailable as exc:
                self._store_failed()
                failures += 1
                if failures == 1 or failures % 10 == 0:
                    log.warning("%s: %s (attempt %d; retrying in %.1f s)", what, exc, failures, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2.0, STORE_RETRY_S[1])

    async def _work(self) -> None:
        while True:
            job_id = await self.queue.get()
            self._queued.discard(job_id)
            try:
                await self._run(job_id)
            except StoreUnavailable as exc:  # defensive: the sweep resumes the job later
                self._store_failed()
                log.warning("job %s left to recovery: %s", job_id, exc)
            finally:
                self.queue.task_done()

    async def _run(self, job_id: str) -> None:
        if self._draining:
            return  # stays queued: the restarted service runs it
        job = await self._persist(f"claiming job {job_id}", self.store.claim, job_id)
        if job is None:  # cancelled, deleted or taken by another replica while it waited
            return
        self._running[job_id] = job.claims
        try:
            await self._analyse(job)
        finally:
            self._running.pop(job_id, None)

    async def _analyse(self, job: Job) -> None:
        data = await off_loop(self.store.read_media, job)
        if data is None:
            await self._finish(job, "failed", error=("media_lost", "the uploaded media is gone"))
            return
        options = Options(**job.options)
        skipped = 0

        async def progress(fraction: float, partial: dict[str, Any]) -> None:
            nonlocal skipped
            try:
                held = await off_loop(self.store.set_progress, job.id, fraction, partial, job.claims)
            except StoreUnavailable as exc:  # progress is advisory: the analysis goes on
                self._store_failed()
                skipped += 1
                if skipped == 1:
                    log.warning("job %s: progress not recorded: %s", job.id, exc)
                return
            if not held:  # deleted (or taken over) while it ran: stop at this stage's start
                raise JobGone(job.id)

        started = time.perf_counter()
        try:
            report = await self.analyzer.analyze(data, job.name, options, progress)
        except StoreUnavailable as exc:  # the hash lists' database, not the media: analyse it again
            self._store_failed()
            log.warning("job %s: the store failed during its analysis (%s); queued again", job.id, exc)
            if await self._persist(f"requeuing job {job.id}", self.store.requeue, job.id, claim=job.claims):
                self._spawn(self._resubmit(job.id))
            return
        except JobGone:
            log.info("job %s: deleted or taken over while it ran; its analysis stopped", job.id)
            self.forget(job.id)  # a waiter here re-reads the store: 404, or the other worker's job
            return  # a deletion removed the media; a takeover's worker still needs it
        except TrueframeError as exc:
            if isinstance(exc, OPERATOR_ERRORS):  # weights, models, trust files: the operator's to fix
                log.error("job %s failed: %s", job.id, exc)
            await self._finish(job, "failed", error=(exc.code, exc.message))
            return
        except Exception:
            log.exception("job %s failed unexpectedly", job.id)
            await self._finish(
                job,
                "failed",
                error=("internal_error", f"internal error; the service log has the details of job {job.id}"),
            )
            return
        self.metrics.analyses.labels(report.media.kind).observe(time.perf_counter() - started)
        body = json.loads(report.to_json())
        key = result_key(self.settings, options, report.media.kind)
        await self._finish(job, "succeeded", report=body, cache_key=key)

    async def _resubmit(self, job_id: str) -> None:
        await asyncio.sleep(STORE_RETRY_S[1] / 6)  # not at once: the store has just failed
        self.submit(job_id)

    async def _finish(
        self,
        claimed: Job,
        status: JobStatus,
        *,
        report: dict[str, Any] | None = None,
        error: tuple[str, str] | None = None,
        cache_key: str | None = None,
    ) -> None:
        """Record the outcome of this worker's claim of a job, then wake waiters and send its webhook.

        Nothing is recorded or sent when the job was cancelled or deleted meanwhile, or claimed again
        by another worker (a sweep took it for dead while this one could not reach the store)."""
        job_id = claimed.id
        job = await self._persist(
            f"recording the outcome of job {job_id}",
            self.store.finish,
            job_id,
            status,
            self.ttl_s,
            report=report,
            error=error,
            cache_key=cache_key,
            claim=claimed.claims,
        )
        if job is None:  # maybe finished by an earlier try whose answer was lost in the outage
            job = await self._persist(f"reading job {job_id}", self.store.get, job_id)
            if job is None or job.status != status or job.claims != claimed.claims:
                self.forget(job_id)  # wake waiters here: they read what the store now holds
                return  # not this claim's outcome: the webhook is the other worker's to send
        self.finished(job)

    async def _send_webhook(self, job: Job) -> None:
        assert job.callback_url is not None
        what = f"webhook of job {job.id}"
        secret = (
            await self._persist(what, key_webhook_secret, self.store, job.owner)
            or self.settings.serve.webhook_secret
        )
        if secret is None:
            log.warning("job %s: no webhook secret for its owner; callback not sent", job.id)
            await self._persist(what, self.store.set_callback_state, job.id, "failed")
            self.metrics.webhooks.labels("no_secret").inc()
            return
        body = json.dumps(job_json(job)).encode()

        async def count(attempt: int) -> None:
            await self._persist(what, self.store.count_callback_attempt, job.id, attempt)

        serve = self.settings.serve
        ok = await deliver(
            job.callback_url, body, secret, serve, job.id, made=job.callback_attempts, count=count
        )
        await self._persist(what, self.store.set_callback_state, job.id, "delivered" if ok else "failed")
        self.metrics.webhooks.labels("delivered" if ok else "failed").inc()

    def send_event(self, event: Event | None) -> None:
        """Deliver a review or appeal event in the background, after the job's earlier events have
        been delivered or given up on, so a webhook sees each job's events in the order they
        happened (a review that overturns an appeal: ``review.recorded``, then ``appeal.overturned``).
        None: the owner has no webhook."""
        if event is None:
            return
        task = self._spawn(self._send_event(event, self._event_tails.get(event.job_id)))
        self._event_tails[event.job_id] = task
        task.add_done_callback(functools.partial(self._event_sent, event.job_id))

    def _event_sent(self, job_id: str, task: asyncio.Task[None]) -> None:
        if self._event_tails.get(job_id) is task:
            del self._event_tails[job_id]

    async def _send_event(self, event: Event, after: asyncio.Task[None] | None = None) -> None:
        if after is not None:
            await asyncio.wait([after])  # its outcome is its own: delivered, failed or cancelled
        what = f"event {event.id} of job {event.job_id}"
        secret = (
            await self._persist(what, key_webhook_secret, self.store, event.owner)
            or self.settings.serve.webhook_secret
        )
        ok = False
        if secret is not None:

            async def count(attempt: int) -> None:
                await self._persist(what, count_event_attempt, self.store, event.id, attempt)

            body, serve = event.body.encode(), self.settings.serve
            ok = await deliver(
                event.url, body, secret, serve, event.job_id, event.event, made=event.attempts, count=count
            )
        await self._persist(what, mark_event, self.store, event.id, "delivered" if ok else "failed")
        self.metrics.webhooks.labels("delivered" if ok else "failed").inc()

    async def _sweep_loop(self) -> None:
        """Requeue running jobs whose worker stopped touching their heartbeat (not this runner's),
        and take up queued jobs no worker holds (requeued by an interrupted sweep, or left by a
        replica that is gone). Held off for one ``job_stale_s`` after the store failed."""
        while True:
            await asyncio.sleep(self.stale_s / 3.0)
            if time.monotonic() - self._store_failed_at < self.stale_s:
                continue  # heartbeats were missed during the outage: stale-looking jobs may be alive
            try:
                requeued, _ = await off_loop(
                    self.store.recover,
                    self.ttl_s,
                    time.time() - self.stale_s,
                    keep=set(self._running),
                    fail_lost=False,
                )
                queued = await off_loop(self.store.queued_ids, local_media=True)
            except StoreUnavailable as exc:  # the next sweep tries again
                self._store_failed()
                log.warning("stale-job sweep skipped: %s", exc)
                continue
            if requeued:
                log.info("stale running jobs: %d back in the queue", len(requeued))
            for job_id in [*requeued, *queued]:
                if job_id not in self._running:
                    self.submit(job_id)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            if self._running:
                try:
                    await off_loop(self.store.heartbeat, dict(self._running))
                except StoreUnavailable as exc:  # the next beat tries again
                    self._store_failed()
                    log.warning("heartbeat not recorded: %s", exc)

    async def _purge_loop(self) -> None:
        while True:
            try:
                purged = await off_loop(self.store.purge, cache_ttl_s=self.ttl_s)
            except StoreUnavailable as exc:  # the next round purges what this one missed
                log.warning("purge skipped: %s", exc)
                purged = 0
            if purged:
                log.info("purged %d expired job(s)", purged)
            await asyncio.sleep(self.settings.serve.purge_interval_s)
