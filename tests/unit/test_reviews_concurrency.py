"""Decisions and appeals on one job at the same time, on SQLite and on PostgreSQL: they take turns
(the job's row is locked while one is recorded), and a decision never deadlocks with the erasure of
its job's key."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from detector.errors import TrueframeError
from tests.support import known_media as km
from tests.support.review_desk import Desk, open_desk

pytestmark = pytest.mark.usefixtures("database_url")  # SQLite, then PostgreSQL


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    with open_desk(tmp_path) as opened:
        yield opened


def _at_once(monkeypatch: pytest.MonkeyPatch, calls: list[Any]) -> list[Any]:
    """Run ``calls`` in parallel threads, each held before its first insert until all reach one (or
    3 s pass: a caller waiting for a lock never reaches it), and return their results or errors."""
    from serving.reviews import records

    barrier = threading.Barrier(len(calls))
    real_insert = records.insert

    def held_insert(table: Any) -> Any:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=3)
        return real_insert(table)

    monkeypatch.setattr(records, "insert", held_insert)
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            results[i] = calls[i]()
        except TrueframeError as exc:  # the test reads the error (Conflict expected)
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_two_appeals_at_once_leave_one_pending(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    """One pending appeal per job: until 2026-12-04 two appeals sent at once on PostgreSQL (read
    committed) both passed the check and both stayed open."""
    from serving.http.errors import Conflict
    from serving.reviews import records

    job_id = desk.upload(desk.submitter, km.reviewed_photo())
    store = desk.service.store
    job = store.get(job_id)
    assert job is not None
    results = _at_once(
        monkeypatch,
        [lambda: records.open_appeal(store, job, "a"), lambda: records.open_appeal(store, job, "b")],
    )
    assert sorted(type(r).__name__ for r in results) == ["Appeal", "Conflict"], results
    assert any(isinstance(r, Conflict) for r in results)
    pending = [a for a in records.job_appeals(store, job_id) if a.state in records.PENDING]
    assert len(pending) == 1


def test_two_decisions_at_once_decide_the_appeal_once(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    """Until 2026-12-04, on PostgreSQL both decisions decided the same pending appeal (each answered
    it as decided by itself), and the ``reviewed`` list could keep two items for the job."""
    from serving.known.lists import REVIEWED
    from serving.reviews import records
    from serving.store.schema import known_media

    job_id = desk.upload(desk.submitter, km.reviewed_photo())
    assert (
        desk.call(desk.submitter, "POST", f"/v1/jobs/{job_id}/appeal", json={"statement": "x"}).status_code
        == 201
    )
    store = desk.service.store
    job = store.get(job_id)
    assert job is not None
    decide = [
        lambda: records.record_review(store, job, "key:r1", "manipulated", "one", None, 3600.0),
        lambda: records.record_review(store, job, "key:r2", "authentic", "two", None, 3600.0),
    ]
    results = _at_once(monkeypatch, decide)
    assert all(isinstance(r, tuple) for r in results), results
    assert sorted(len(decided) for _, decided in results) == [0, 1]  # one of them decided the appeal
    appeal = records.job_appeals(store, job_id)[-1]
    deciding = next(review for review, decided in results if decided)
    assert appeal.review_id == deciding.id
    assert deciding.appeal_id == appeal.id
    latest = records.latest_review(store, job_id)
    assert latest is not None
    assert latest.id != deciding.id  # the later decision is the latest

    items = store.query(
        select(known_media.c.item).where(known_media.c.list_name == REVIEWED, known_media.c.job_id == job_id)
    )
    assert [r["item"] for r in items] == [latest.id]  # the list carries the latest decision, once


def test_a_decision_and_the_erasure_of_its_jobs_key_take_turns(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A decision locked its job and then bumped the hash lists' counter, while erasing a key bumps
    that counter and then deletes the key's jobs: on PostgreSQL the two deadlocked and one failed
    with a 500. A decision now bumps first, as every hash-list writer does."""
    from serving.privacy import erase_owner
    from serving.reviews import records

    job_id = desk.upload(desk.submitter, km.reviewed_photo())
    store = desk.service.store
    job = store.get(job_id)
    assert job is not None
    locked = threading.Event()
    real_lock = records._lock_job

    def lock_then_pause(db: Any, ident: str) -> None:
        real_lock(db, ident)
        locked.set()
        time.sleep(1.5)  # the erasure starts while the decision holds its job

    monkeypatch.setattr(records, "_lock_job", lock_then_pause)
    outcome: dict[str, Any] = {}

    def run(name: str, call: Any) -> None:
        try:
            outcome[name] = call()
        except Exception as exc:  # noqa: BLE001  # the test reports whichever side failed
            outcome[name] = exc

    decide = threading.Thread(
        target=run,
        args=("decide", lambda: records.record_review(store, job, "key:r", "authentic", "ok", None, 60.0)),
    )
    decide.start()
    assert locked.wait(10)
    erase = threading.Thread(target=run, args=("erase", lambda: erase_owner(store, job.owner)))
    erase.start()
    decide.join(30)
    erase.join(30)
    assert not any(isinstance(v, Exception) for v in outcome.values()), outcome
    assert outcome["erase"]["jobs"] >= 1
    assert store.get(job_id) is None


def test_an_appeal_contests_a_decision_recorded_just_before_it(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The contested verdict was read before the appeal's transaction, so a decision landing in
    between left the appeal contesting the earlier verdict (and a later decision repeating the
    current one was recorded as overturned). It is now read under the job's lock."""
    from serving.reviews import records

    job_id = desk.upload(desk.submitter, km.reviewed_photo())
    store = desk.service.store
    job = store.get(job_id)
    assert job is not None
    real_transaction = store.transaction

    def decision_lands_first() -> Any:
        monkeypatch.setattr(store, "transaction", real_transaction)
        records.record_review(store, job, "key:r", "manipulated", "seen", None, 60.0)  # another reviewer
        return real_transaction()

    monkeypatch.setattr(store, "transaction", decision_lands_first)
    appeal = records.open_appeal(store, job, "it is real")
    assert appeal.contested_verdict == "manipulated"


def test_an_appeal_taken_during_a_decision_is_either_taken_or_decided(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Until 2026-12-04, on PostgreSQL a reviewer could take an appeal between a decision's read of
    the pending appeals and its write: the take answered 200 ("in review, yours"), and the decision
    then settled the appeal anyway. Taking now locks the job as a decision does."""
    from serving.http.errors import Conflict
    from serving.reviews import records

    job_id = desk.upload(desk.submitter, km.reviewed_photo())
    opened = desk.call(desk.submitter, "POST", f"/v1/jobs/{job_id}/appeal", json={"statement": "x"})
    appeal_id = opened.json()["appeal_id"]
    store = desk.service.store
    job = store.get(job_id)
    assert job is not None
    holding, taken = threading.Event(), threading.Event()
    real_insert = records.insert

    def held_insert(table: Any) -> Any:  # the decision has read the pending appeals: hold it there
        holding.set()
        taken.wait(timeout=2)  # a take that must wait for the job's lock never gets to set it
        return real_insert(table)

    monkeypatch.setattr(records, "insert", held_insert)
    decided: list[Any] = []
    decision = threading.Thread(
        target=lambda: decided.append(
            records.record_review(store, job, "key:r1", "manipulated", "r", None, 60.0)
        )
    )
    decision.start()
    assert holding.wait(timeout=10)
    try:
        take: Any = records.start_appeal(store, appeal_id, "key:r2")
    except Conflict as exc:
        take = exc
    taken.set()
    decision.join(30)
    (_, settled), appeal = decided[0], records.get_appeal(store, appeal_id)
    assert appeal is not None
    if isinstance(take, Conflict):  # the take waited for the decision, then found the appeal decided
        assert [a.id for a in settled] == [appeal_id]
        assert appeal.state in ("upheld", "overturned")
    else:  # impossible while the decision holds the job: it would have to be left in review
        assert (appeal.state, appeal.assigned_to, settled) == ("in_review", "key:r2", [])
