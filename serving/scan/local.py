"""The scan's analysis on threads of the driver's own process, for a machine that scans alone.

Each worker thread holds its own :class:`~serving.scan.steps.FusedStep` (the same stage classes a
Ray actor runs, built in the thread that uses them) and analyses one item after another; torch,
the decoders and the hashing release the GIL, so two threads keep two cores busy. Nothing is
pickled between stages and no process starts: on a 2-core machine Ray's own processes, its Data
helpers and one actor per core put the first row 10-15 s after launch (3 s here), which a scan of
a few hundred items never wins back (README, "The scan in its own process").

:func:`choose_executor` decides where a scan runs (setting ``scan.executor``).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from itertools import islice
from typing import Literal

from detector.settings import Settings
from serving.scan.output import Row
from serving.scan.source import ScanItem

LOCAL_MAX_CPUS = 4
"""``auto`` runs the scan in this process on machines of at most this many CPUs (threads share one
interpreter; measured on 2 cores, README "Performance"); beyond, Ray's actor processes scale without
Python's GIL."""

Executor = Literal["local", "ray"]


def machine_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the platform has one)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


def _has_cuda(settings: Settings) -> bool:
    if settings.runtime.device == "cpu":
        return False
    import torch

    return bool(torch.cuda.is_available())


def choose_executor(settings: Settings, environ: Mapping[str, str] | None = None) -> Executor:
    """``local`` or ``ray`` for ``scan.executor``; ``auto`` is ``local`` when this machine scans alone.

    Alone means: no ``RAY_ADDRESS`` (a cluster to use), Ray not already running in this process
    (a caller that set it up wants it used), no GPU (the staged Ray layout batches faces across
    items on GPU actors) and at most :data:`LOCAL_MAX_CPUS` CPUs.
    """
    chosen = settings.scan.executor
    if chosen != "auto":
        return chosen
    env = os.environ if environ is None else environ
    ray_mod = sys.modules.get("ray")  # not imported: certainly not running here
    if env.get("RAY_ADDRESS") or (ray_mod is not None and ray_mod.is_initialized()):
        return "ray"
    if machine_cpus() > LOCAL_MAX_CPUS or _has_cuda(settings):
        return "ray"
    return "local"


def local_workers(settings: Settings, items: int) -> int:
    """Worker threads: ``scan.actors``, or one per CPU, never more than there are items."""
    return max(1, min(settings.scan.actors or machine_cpus(), items))


class LocalAnalyser:
    """Analyse items on ``workers`` threads of this process; rows stream back as items complete."""

    def __init__(self, settings: Settings, frames: int | None, workers: int) -> None:
        self.settings = settings
        self.frames = frames
        self.workers = workers
        self._local = threading.local()

    def _analyse(self, path: str) -> Row:
        from serving.scan.steps import FusedStep, ItemState

        step = getattr(self._local, "step", None)
        if step is None:  # built in the thread that uses it: no model is shared between threads
            step = self._local.step = FusedStep(self.settings, self.frames)
        return step.analyse(ItemState(path=path))

    def analyse(self, ids: Sequence[int], items: Sequence[ScanItem]) -> Iterator[tuple[int, Row]]:
        """Yield ``(id, result columns)`` as items complete, at most two per worker in flight.

        A failure that is not an item's (a model that cannot load) propagates; the items not yet
        started are cancelled, the running ones finish (threads cannot be stopped), and their rows
        are not written: a rerun analyses them.
        """
        with (
            torch_threads_split(self.settings, self.workers),
            ThreadPoolExecutor(self.workers, thread_name_prefix="scan") as pool,
        ):
            queue = iter(zip(ids, items, strict=True))
            running: dict[Future[Row], int] = {}

            def submit(count: int) -> None:
                for ident, item in islice(queue, count):
                    running[pool.submit(self._analyse, item.path)] = ident

            submit(2 * self.workers)
            try:
                while running:
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        ident = running.pop(future)
                        yield ident, future.result()
                    submit(len(done))
            finally:
                for future in running:
                    future.cancel()


@contextmanager
def torch_threads_split(settings: Settings, workers: int) -> Iterator[None]:
    """torch's intra-op threads split between the workers while they run, restored after: each
    worker computes on its own cores, as a Ray actor does with ``num_cpus=1``. A
    ``runtime.torch_threads`` set by the user wins (the steps apply it)."""
    if settings.runtime.torch_threads:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, machine_cpus() // workers))
    try:
        yield
    finally:
        torch.set_num_threads(before)


__all__ = [
    "LOCAL_MAX_CPUS",
    "LocalAnalyser",
    "choose_executor",
    "local_workers",
    "machine_cpus",
    "torch_threads_split",
]
