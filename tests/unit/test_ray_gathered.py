"""The Ray runner's calls of one stage (:class:`serving.ray.analyzer.Gathered`, one deployment call per
frame or crop, all sent at once): when the analysis is no longer wanted, or one call fails, the calls
not collected yet are cancelled, so the replicas drop them instead of working for nobody."""

from __future__ import annotations

from typing import Any

import pytest

from detector.errors import UnsupportedMediaType


class Response:
    """A deployment response stand-in: its value, or the typed error its replica raised."""

    def __init__(self, value: Any, log: list[str]) -> None:
        self.value, self.log = value, log

    def result(self) -> Any:
        self.log.append(f"result {self.value}")
        if isinstance(self.value, Exception):
            from ray.exceptions import RayTaskError

            raise RayTaskError("predict", "traceback", self.value)
        return self.value

    def cancel(self) -> None:
        self.log.append(f"cancel {self.value}")


def gathered(values: list[Any], log: list[str]) -> Any:
    from serving.ray.analyzer import Gathered

    def send(value: Any) -> Any:
        return lambda: Response(value, log)

    return Gathered([send(v) for v in values])


class Gone(Exception):
    pass


def test_a_poll_that_raises_cancels_the_calls_not_collected_yet() -> None:
    log: list[str] = []
    calls = gathered([0, 1, 2, 3, 4], log)
    polls = 0

    def poll() -> None:
        nonlocal polls
        polls += 1
        if polls == 3:  # the job is deleted after two frames came back
            raise Gone

    with pytest.raises(Gone):
        calls.result(poll)
    assert log == ["result 0", "result 1", "cancel 2", "cancel 3", "cancel 4"]
    calls.cancel()  # once cancelled, nothing is cancelled twice
    assert len(log) == 5


def test_a_failed_call_cancels_the_rest_and_arrives_as_its_typed_error() -> None:
    log: list[str] = []
    bad = UnsupportedMediaType("not an image")
    calls = gathered([0, bad, 2], log)
    with pytest.raises(UnsupportedMediaType):
        calls.result()
    assert log == ["result 0", f"result {bad}", f"cancel {bad}", "cancel 2"]


def test_every_call_is_collected_in_order_while_the_poll_lets_it_go_on() -> None:
    log: list[str] = []
    calls = gathered([5, 6, 7], log)
    polled: list[int] = []
    assert calls.result(lambda: polled.append(len(polled))) == [5, 6, 7]
    assert polled == [0, 1, 2]  # before each call is collected
    calls.cancel()  # all collected: nothing left to cancel
    assert not [e for e in log if e.startswith("cancel")]
