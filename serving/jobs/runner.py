"""The job worker: runs queued jobs through the analyzer, records outcomes, sends webhooks, purges.

Started and stopped by the app's lifespan. On start it recovers the store (jobs that were running
go back in the queue, jobs whose media is gone fail with a reason), queues every waiting job in
arrival order and resumes undelivered webhooks. ``job_workers = 0`` accepts jobs without running
them (another process on the same store will).

On a shared database (PostgreSQL, several replicas) a worker touches the heartbeat of the jobs it
runs every :data:`HEARTBEAT_S`; a starting replica requeues only running jobs whose heartbeat is
older than :data:`STALE_S` (their worker died), never another live replica's. Review and appeal
events (:mod:`serving.reviews.events`) are delivered here too, and resumed on start.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from typing import Any

from fastapi.responses import JSONResponse

from detector.errors import TrueframeError
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
STALE_S = 90.0


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
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._done: dict[str, asyncio.Event] = {}
        self._running: set[str] = set()
        self._event_tails: dict[str, asyncio.Task[None]] = {}

    @property
    def ttl_s(self) -> float:
        return self.settings.serve.report_ttl_hours * 3600.0

    async def start(self) -> None:
        """Recover the store and start workers; with ``job_workers = 0`` nothing is touched or run."""
        if self.settings.serve.job_workers == 0:
            self._tasks.append(asyncio.create_task(self._purge_loop()))
            return
        stale_before = time.time() - STALE_S if self.store.shared else None
        requeued, failed = await off_loop(self.store.recover, self.ttl_s, stale_before)
        if requeued or failed:
            log.info("recovered jobs: %d back in the queue, %d failed", len(requeued), len(failed))
        for job_id in await off_loop(self.store.queued_ids):
            self.queue.put_nowait(job_id)
        for job in await off_loop(self.store.pending_callbacks):
            self._spawn(self._send_webhook(job))
        for event in await off_loop(pending_events, self.store):
            self.send_event(event)
        for _ in range(self.settings.serve.job_workers):
            self._tasks.append(asyncio.create_task(self._work()))
        self._tasks.append(asyncio.create_task(self._purge_loop()))
        self._tasks.append(asyncio.create_task(self._heartbeat_loop()))

    async def stop(self) -> None:
        """Cancel workers and webhooks; a job cut short stays ``running`` and is resumed on restart."""
        for task in [*self._tasks, *self._background]:
            task.cancel()
        for task in [*self._tasks, *self._background]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    def submit(self, job_id: str) -> None:
        self.queue.put_nowait(job_id)

    async def wait(self, job_id: str, timeout: float) -> None:
        """Return when the job finishes or ``timeout`` passes (the caller re-reads the store)."""
        event = self._done.setdefault(job_id, asyncio.Event())
        job = await off_loop(self.store.get, job_id)
        if job is None or job.finished:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    def forget(self, job_id: str) -> None:
        """Wake anyone waiting on a job that was deleted."""
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

    async def _work(self) -> None:
        while True:
            job_id = await self.queue.get()
            try:
                await self._run(job_id)
            finally:
                self.queue.task_done()

    async def _run(self, job_id: str) -> None:
        job = await off_loop(self.store.claim, job_id)
        if job is None:  # cancelled, deleted or taken by another replica while it waited
            return
        self._running.add(job_id)
        try:
            await self._analyse(job)
        finally:
            self._running.discard(job_id)

    async def _analyse(self, job: Job) -> None:
        data = await off_loop(self.store.read_media, job)
        if data is None:
            await self._finish(job.id, "failed", error=("media_lost", "the uploaded media is gone"))
            return
        options = Options(**job.options)

        async def progress(fraction: float, partial: dict[str, Any]) -> None:
            await off_loop(self.store.set_progress, job.id, fraction, partial)

        started = time.perf_counter()
        try:
            report = await self.analyzer.analyze(data, job.name, options, progress)
        except TrueframeError as exc:
            await self._finish(job.id, "failed", error=(exc.code, exc.message))
            return
        except Exception:
            log.exception("job %s failed unexpectedly", job.id)
            await self._finish(
                job.id,
                "failed",
                error=("internal_error", f"internal error; the service log has the details of job {job.id}"),
            )
            return
        self.metrics.analyses.labels(report.media.kind).observe(time.perf_counter() - started)
        body = json.loads(report.to_json())
        await off_loop(
            self.store.cache_report,
            job.sha256,
            result_key(self.settings, options, report.media.kind),
            job.owner,
            body,
        )
        await self._finish(job.id, "succeeded", report=body)

    async def _finish(
        self,
        job_id: str,
        status: JobStatus,
        *,
        report: dict[str, Any] | None = None,
        error: tuple[str, str] | None = None,
    ) -> None:
        job = await off_loop(self.store.finish, job_id, status, self.ttl_s, report=report, error=error)
        if job is not None:
            self.finished(job)

    async def _send_webhook(self, job: Job) -> None:
        assert job.callback_url is not None
        secret = (
            await off_loop(key_webhook_secret, self.store, job.owner) or self.settings.serve.webhook_secret
        )
        if secret is None:
            log.warning("job %s: no webhook secret for its owner; callback not sent", job.id)
            await off_loop(self.store.set_callback_state, job.id, "failed")
            self.metrics.webhooks.labels("no_secret").inc()
            return
        body = json.dumps(job_json(job)).encode()

        async def count(attempt: int) -> None:
            await off_loop(self.store.count_callback_attempt, job.id, attempt)

        serve = self.settings.serve
        ok = await deliver(
            job.callback_url, body, secret, serve, job.id, made=job.callback_attempts, count=count
        )
        await off_loop(self.store.set_callback_state, job.id, "delivered" if ok else "failed")
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
        secret = (
            await off_loop(key_webhook_secret, self.store, event.owner) or self.settings.serve.webhook_secret
        )
        ok = False
        if secret is not None:

            async def count(attempt: int) -> None:
                await off_loop(count_event_attempt, self.store, event.id, attempt)

            body, serve = event.body.encode(), self.settings.serve
            ok = await deliver(
                event.url, body, secret, serve, event.job_id, event.event, made=event.attempts, count=count
            )
        await off_loop(mark_event, self.store, event.id, "delivered" if ok else "failed")
        self.metrics.webhooks.labels("delivered" if ok else "failed").inc()

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            if self._running:
                await off_loop(self.store.heartbeat, sorted(self._running))

    async def _purge_loop(self) -> None:
        while True:
            purged = await off_loop(self.store.purge, cache_ttl_s=self.ttl_s)
            if purged:
                log.info("purged %d expired job(s)", purged)
            await asyncio.sleep(self.settings.serve.purge_interval_s)
