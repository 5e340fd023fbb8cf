"""Places in ``serve.max_queue``: uploads let in that the store's count of active jobs cannot see yet.

An upload takes a place once its body is read and gives it up when it becomes a stored job (whose
row counts from then on) or, for an image analysed at once, when it is answered. Taking a place
(with its check) and a job row's commit with the giving up of its place happen under one thread
lock, so the store's count and the places held are always read in one consistent state:

* before 2026-12-03 every upload of a burst passed the check before any was stored (16 parallel
  uploads got in past a limit of 4);
* until 2026-12-04 a place was given up by a callback on the event loop after its row's commit, so
  a check in between counted that job twice and refused an upload one place early (a spurious 429).

That lock is held across the count (one ``SELECT``) and a row's insert and commit, never across the
media write or the analysis, and only in worker threads, so a slow database never stalls the event
loop. A place given up without a row (an image answered, a request that failed) changes nothing the
store counts, so it needs only the small lock that guards the tally, held for an addition.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from serving.http.errors import QueueFull


class Admission:
    """The places held, and the lock that keeps them consistent with the store's count."""

    def __init__(self, limit: int, retry_after_s: int, active: Callable[[], int]) -> None:
        self.limit, self.retry_after_s, self.active = limit, retry_after_s, active
        self.held = 0
        self._serial = threading.Lock()  # the count with the check; a row's commit with its place's end
        self._tally = threading.Lock()  # ``held`` and each place's own flag

    def check(self) -> None:
        """Raise :class:`QueueFull` when the queue is full: the early check, before a body is read.
        Without the lock (a commit in flight may make it err by one either way): :meth:`take` checks
        again exactly, and an upload waiting here holds no worker thread behind a slow commit."""
        self._refuse_when_full()

    def place(self) -> Place:
        """A place not yet taken: made on the event loop before :meth:`take`, so that a request
        cancelled while its place is being taken still gives it up (:meth:`Place.release`)."""
        return Place(self)

    def take(self, place: Place) -> None:
        """Take ``place`` for an upload whose body has been read, or raise :class:`QueueFull`;
        blocking: call it off the event loop. A place released meanwhile is not taken."""
        with self._serial:
            self._refuse_when_full()
            with self._tally:
                if not place.ended:
                    place.held = True
                    self.held += 1

    def _refuse_when_full(self) -> None:
        if self.active() + self.held >= self.limit:
            raise QueueFull(
                f"{self.limit} analyses are queued or running; retry later", retry_after=self.retry_after_s
            )

    def _give_up(self, place: Place) -> None:
        """The place stops counting, once, and can no longer be taken."""
        with self._tally:
            place.ended = True
            if place.held:
                place.held = False
                self.held -= 1


class Place:
    """One upload's place, given up exactly once: at its job row's commit (:meth:`committing`) or by
    :meth:`release` when the request ends without a stored job."""

    def __init__(self, admission: Admission) -> None:
        self.admission, self.held, self.ended = admission, False, False

    def release(self) -> None:
        """Give the place up (again: nothing); safe on the event loop, it never waits on the database."""
        self.admission._give_up(self)

    @contextmanager
    def committing(self) -> Iterator[None]:
        """Entered around the job row's transaction: the row starts counting in the same instant as
        the place stops (the place is given up whether or not the commit succeeds: a failed write
        ends the request)."""
        with self.admission._serial:
            try:
                yield
            finally:
                self.admission._give_up(self)
