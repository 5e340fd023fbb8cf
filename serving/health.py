"""Readiness of the service's dependencies beyond the models: the store answers, the workers run.

:class:`StoreProbe` runs ``SELECT 1`` (:meth:`serving.jobs.store.JobStore.ping`) at most once per
``max_age_s`` and waits at most ``timeout_s`` for it, so ``/readyz`` stays cheap under frequent
probes and answers promptly even when the database hangs instead of refusing connections.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from concurrent.futures import ThreadPoolExecutor

from detector.errors import StoreUnavailable
from serving.jobs.store import JobStore

PROBE_TIMEOUT_S = 2.0
PROBE_MAX_AGE_S = 2.0


class StoreProbe:
    """A cached, time-bounded reachability check of one store.

    Pings run on a worker thread of the probe's own, never on the shared pool: a pool busy with
    requests cannot delay them, and a ping stuck on a hung database is never started twice (while
    it is pending, checks answer "did not answer" at once, and the next check after it ends pings
    again)."""

    def __init__(
        self, store: JobStore, *, timeout_s: float = PROBE_TIMEOUT_S, max_age_s: float = PROBE_MAX_AGE_S
    ) -> None:
        self.store, self.timeout_s, self.max_age_s = store, timeout_s, max_age_s
        self._checked: tuple[float, str | None] | None = None
        self._pending: concurrent.futures.Future[None] | None = None
        self._executor: ThreadPoolExecutor | None = None  # created on the first check
        self._lock = asyncio.Lock()

    async def problem(self) -> str | None:
        """None when the store answered recently, else why it is not usable (one line)."""
        if (cached := self._fresh()) is not None:
            return cached[1]
        async with self._lock:
            if (cached := self._fresh()) is not None:
                return cached[1]
            problem = await self._check()
            self._checked = (time.monotonic(), problem)
            return problem

    def _fresh(self) -> tuple[float, str | None] | None:
        if self._checked is not None and time.monotonic() - self._checked[0] < self.max_age_s:
            return self._checked
        return None

    async def _check(self) -> str | None:
        if self._pending is None or self._pending.done():
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-probe")
            self._pending = self._executor.submit(self.store.ping)
        pending = self._pending
        done, _ = await asyncio.wait({asyncio.wrap_future(pending)}, timeout=self.timeout_s)
        if not done:
            return f"the database did not answer within {self.timeout_s:g} s"
        error = pending.exception()
        if isinstance(error, StoreUnavailable):
            return error.message
        if error is not None:
            raise error  # a bug in the ping: /readyz fails loudly instead of hiding it
        return None
