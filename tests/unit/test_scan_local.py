"""The scan's local executor: where ``auto`` runs a scan, and the worker threads' contract (every
item once, one step per thread, bounded work in flight, failures and early stops) on a fake step."""

from __future__ import annotations

import sys
import threading
import time
import types
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch

from detector.errors import ModelError
from detector.settings import Settings
from serving.scan import local
from serving.scan import steps as scan_steps
from serving.scan.local import LocalAnalyser, choose_executor, local_workers
from serving.scan.source import ScanItem
from serving.scan.steps import ItemState


def _settings(executor: str = "auto", device: str = "cpu", actors: int = 0, threads: int = 0) -> Settings:
    return Settings(
        scan={"executor": executor, "actors": actors},
        runtime={"device": device, "torch_threads": threads},
    )


@pytest.fixture
def two_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "machine_cpus", lambda: 2)


@pytest.fixture
def no_ray_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """This test process may run Ray for other tests: decide as a fresh driver would."""
    monkeypatch.delitem(sys.modules, "ray", raising=False)


def test_auto_scans_in_this_process_on_a_small_machine_alone(two_cpus: None, no_ray_here: None) -> None:
    assert choose_executor(_settings(), environ={}) == "local"


@pytest.mark.usefixtures("two_cpus", "no_ray_here")
def test_auto_uses_ray_for_a_cluster_a_running_ray_many_cpus_or_a_gpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert choose_executor(_settings(), environ={"RAY_ADDRESS": "auto"}) == "ray"
    running = types.SimpleNamespace(is_initialized=lambda: True)
    monkeypatch.setitem(sys.modules, "ray", running)
    assert choose_executor(_settings(), environ={}) == "ray"
    monkeypatch.delitem(sys.modules, "ray")
    monkeypatch.setattr(local, "machine_cpus", lambda: local.LOCAL_MAX_CPUS + 1)
    assert choose_executor(_settings(), environ={}) == "ray"
    monkeypatch.setattr(local, "machine_cpus", lambda: local.LOCAL_MAX_CPUS)
    assert choose_executor(_settings(), environ={}) == "local"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert choose_executor(_settings(device="auto"), environ={}) == "ray"
    assert choose_executor(_settings(device="cpu"), environ={}) == "local"  # told to use the CPU


def test_an_explicit_executor_is_taken_as_given(no_ray_here: None) -> None:
    assert choose_executor(_settings("ray"), environ={}) == "ray"
    assert choose_executor(_settings("local"), environ={"RAY_ADDRESS": "auto"}) == "local"


def test_workers_follow_the_setting_or_the_cpus_and_never_outnumber_the_items(two_cpus: None) -> None:
    assert local_workers(_settings(), 100) == 2
    assert local_workers(_settings(actors=3), 100) == 3
    assert local_workers(_settings(actors=3), 2) == 2
    assert local_workers(_settings(), 1) == 1


class FakeStep:
    """Stands in for FusedStep: records which thread built and used it, and torch's threads."""

    built: ClassVar[list[FakeStep]] = []
    lock = threading.Lock()
    fail_build = False
    pause: ClassVar[dict[str, float]] = {}

    def __init__(self, settings: Settings, frames: int | None) -> None:
        if FakeStep.fail_build:
            raise ModelError("weights unreadable")
        self.thread = threading.get_ident()
        self.analysed: list[str] = []
        self.torch_threads: set[int] = set()
        with FakeStep.lock:
            FakeStep.built.append(self)

    def analyse(self, state: ItemState) -> dict[str, object]:
        assert threading.get_ident() == self.thread, "a step is used only by the thread that built it"
        self.torch_threads.add(torch.get_num_threads())
        time.sleep(FakeStep.pause.get(state.path, 0.3 if FakeStep.pause else 0.01))
        self.analysed.append(state.path)
        return {"sha256": Path(state.path).name, "frames": None}


@pytest.fixture
def fake_step(monkeypatch: pytest.MonkeyPatch) -> type[FakeStep]:
    FakeStep.built = []
    FakeStep.fail_build = False
    FakeStep.pause = {}
    monkeypatch.setattr(scan_steps, "FusedStep", FakeStep)
    return FakeStep


def _items(n: int) -> tuple[list[int], list[ScanItem]]:
    return [100 + i for i in range(n)], [ScanItem(f"/in/item{i}.jpg") for i in range(n)]


def test_every_item_is_analysed_once_on_its_workers_with_torch_threads_split(
    fake_step: type[FakeStep], two_cpus: None
) -> None:
    ids, items = _items(30)
    before = torch.get_num_threads()
    results = list(LocalAnalyser(_settings(), 4, workers=2).analyse(ids, items))
    assert sorted(ident for ident, _ in results) == ids
    assert {ident: row["sha256"] for ident, row in results} == {i: f"item{i - 100}.jpg" for i in ids}
    assert len(fake_step.built) == 2  # one step per worker thread, each built where it runs
    assert Counter(p for step in fake_step.built for p in step.analysed) == Counter(it.path for it in items)
    assert {n for step in fake_step.built for n in step.torch_threads} == {1}  # 2 CPUs / 2 workers
    assert torch.get_num_threads() == before


def test_the_users_torch_threads_are_left_alone(fake_step: type[FakeStep], two_cpus: None) -> None:
    before = torch.get_num_threads()
    list(LocalAnalyser(_settings(threads=3), 4, workers=2).analyse(*_items(4)))
    assert {n for step in fake_step.built for n in step.torch_threads} == {before}


def test_a_step_that_cannot_be_built_stops_the_scan_with_its_error(fake_step: type[FakeStep]) -> None:
    fake_step.fail_build = True
    with pytest.raises(ModelError, match="weights unreadable"):
        list(LocalAnalyser(_settings(), 4, workers=2).analyse(*_items(50)))


def test_work_in_flight_is_bounded_and_stopping_early_cancels_what_has_not_started(
    fake_step: type[FakeStep], monkeypatch: pytest.MonkeyPatch
) -> None:
    """At most two items per worker are handed to the pool, so Ctrl-C or a failed write ends the
    scan after the running items, not after the whole folder."""
    submitted = []

    class CountingPool(ThreadPoolExecutor):
        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            submitted.append(args)
            return super().submit(fn, *args, **kwargs)

    monkeypatch.setattr(local, "ThreadPoolExecutor", CountingPool)
    fake_step.pause = {"/in/item0.jpg": 0.0}  # the first item is quick, the others 0.3 s
    results = LocalAnalyser(_settings(), 4, workers=2).analyse(*_items(200))
    assert next(results)[0] == 100
    assert len(submitted) == 4  # two per worker; none refilled before the row was taken
    results.close()  # what a KeyboardInterrupt or an exception in the consumer does
    analysed = sorted(p for step in fake_step.built for p in step.analysed)
    # item0 done, item1 running; item2 ran if a worker took it before the cancel; item3 was queued
    first = [f"/in/item{i}.jpg" for i in range(3)]
    assert analysed in (first[:2], first)
