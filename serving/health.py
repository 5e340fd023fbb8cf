"""Readiness of the service's dependencies beyond the models: the store answers, the workers run.

:class:`StoreProbe` runs ``SELECT 1`` (:meth:`serving.jobs.store.JobStore.ping`) at most once per
``max_age_s`` and waits at most ``timeout_s`` for it, so ``/readyz`` stays cheap under frequent
probes and answers promptly even when the database hangs instead of refusing connections.
"""

from __future__ import annotations

import asyncio
import time

import anyio
import anyio.to_thread

from detector.errors import StoreUnavailable
from serving.jobs.store import JobStore

PROBE_TIMEOUT_S = 2.0
PROBE_MAX_AGE_S = 2.0


class StoreProbe:
    """A cached, time-bounded reachability check of one store."""

    def __init__(
        self, store: JobStore, *, timeout_s: float = PROBE_TIMEOUT_S, max_age_s: float = PROBE_MAX_AGE_S
    ) -> None:
        self.store, self.timeout_s, self.max_age_s = store, timeout_s, max_age_s
        self._checked: tuple[float, str | None] | None = None
        self._inflight = False  # a ping thread still blocked (abandoned by a timed-out check)
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
        late = f"the database did not answer within {self.timeout_s:g} s"
        if self._inflight:  # never pile up blocked threads on a hung database
            return late
        self._inflight = True
        with anyio.move_on_after(self.timeout_s):
            try:
                await anyio.to_thread.run_sync(self._ping, abandon_on_cancel=True)
            except StoreUnavailable as exc:
                return exc.message
            return None
        return late

    def _ping(self) -> None:
        try:
            self.store.ping()
        finally:
            self._inflight = False
