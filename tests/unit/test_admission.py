"""Places in ``serve.max_queue`` (:mod:`serving.http.admission`), without HTTP: each place counts
once, until its row's commit or its release, whichever comes first."""

from __future__ import annotations

import pytest

from serving.http.admission import Admission, Place
from serving.http.errors import QueueFull


def _taken(admission: Admission) -> Place:
    place = admission.place()
    admission.take(place)
    return place


def test_a_place_counts_until_its_commit_and_once_only() -> None:
    rows: list[str] = []
    admission = Admission(limit=2, retry_after_s=7, active=lambda: len(rows))
    first = _taken(admission)
    with first.committing():
        rows.append("first")  # the row's commit: from here the store counts it
    assert admission.held == 0
    first.release()  # the request's end after the commit: nothing more to give up
    assert admission.held == 0
    _taken(admission)
    with pytest.raises(QueueFull) as refused:
        admission.check()  # one row and one place fill a queue of 2
    assert refused.value.retry_after == 7


def test_a_failed_commit_still_gives_the_place_up() -> None:
    admission = Admission(limit=1, retry_after_s=1, active=lambda: 0)
    place = _taken(admission)
    with pytest.raises(RuntimeError), place.committing():
        raise RuntimeError("the database went away")
    assert admission.held == 0
    _taken(admission)  # the place is free again


def test_places_released_twice_free_one_place() -> None:
    admission = Admission(limit=2, retry_after_s=1, active=lambda: 0)
    first, _second = _taken(admission), _taken(admission)
    first.release()
    first.release()
    assert admission.held == 1
    _taken(admission)
    with pytest.raises(QueueFull):
        _taken(admission)


def test_a_place_released_before_it_is_taken_is_never_taken() -> None:
    """Review finding: a request cancelled while its place was being taken in a worker thread lost
    the place it was given, and the queue shrank for good (held stayed 1 with nobody holding it)."""
    admission = Admission(limit=1, retry_after_s=1, active=lambda: 0)
    place = admission.place()
    place.release()  # the request's end (its cancellation) comes first
    admission.take(place)  # the worker thread's call, still running
    assert admission.held == 0
    assert not place.held
    _taken(admission)  # the one place is free
