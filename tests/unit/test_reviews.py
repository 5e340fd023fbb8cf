"""The trust-and-safety workflow over the HTTP API, on SQLite and on PostgreSQL: reviews, appeals,
the queue, roles, webhook events, known-media matches of re-uploads, and erasure.

The app runs over the fake analyzer with real PDQ hashing (``fake_service(..., known=True)``): the
frames are really sampled and hashed, and the store's hash lists really searched.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from detector.report.schema import Report
from serving.auth.keys import create_key
from serving.jobs.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from tests.support import known_media as km
from tests.support.fake_analyzer import FakeAnalyzer
from tests.support.review_desk import Desk, open_desk
from tests.support.servicekit import (
    WebhookSink,
    error_of,
    fake_service,
    make_settings,
    open_store,
)

pytestmark = pytest.mark.usefixtures("database_url")  # SQLite, then PostgreSQL


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    with open_desk(tmp_path) as opened:
        yield opened


def test_a_jobs_events_reach_its_webhook_in_order_when_one_is_slow(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each event is sent in the background; a slow delivery must not let the next one overtake it."""
    import asyncio

    import serving.jobs.runner as runner_module

    real = runner_module.deliver

    async def slow_review(
        url: str, body: bytes, secret: str, serve: Any, job_id: str, event: str | None = None, **counting: Any
    ) -> bool:
        if event == "review.recorded":
            await asyncio.sleep(0.5)
        return await real(url, body, secret, serve, job_id, event, **counting)

    monkeypatch.setattr(runner_module, "deliver", slow_review)
    job_id = desk.upload(desk.submitter, km.reviewed_photo(), "press.jpg")
    opened = desk.call(desk.submitter, "POST", f"/v1/jobs/{job_id}/appeal", json={"statement": "doctored"})
    assert opened.status_code == 201, opened.text
    assert desk.review(job_id, "manipulated", "the sky was pasted in").status_code == 201
    events = _events(desk.sink, 3, desk.submitter.webhook_secret)
    assert [e["event"] for e in events] == ["appeal.opened", "review.recorded", "appeal.overturned"]


def test_a_submitter_cannot_review_nor_take_appeals(desk: Desk) -> None:
    job_id = desk.upload(desk.submitter, km.reviewed_photo())
    for key in (desk.submitter, desk.other):
        answer = desk.call(
            key, "POST", f"/v1/jobs/{job_id}/review", json={"verdict": "authentic", "reason": "x"}
        )
        assert answer.status_code == 403
        assert error_of(answer)["code"] == "forbidden"
    appeal = desk.call(desk.submitter, "POST", f"/v1/jobs/{job_id}/appeal", json={"statement": "it is mine"})
    assert appeal.status_code == 201, appeal.text
    start = desk.call(desk.submitter, "POST", f"/v1/appeals/{appeal.json()['appeal_id']}/start")
    assert start.status_code == 403
    assert desk.call(desk.other, "GET", f"/v1/appeals/{appeal.json()['appeal_id']}").status_code == 404
    assert (
        desk.call(desk.other, "POST", f"/v1/jobs/{job_id}/appeal", json={"statement": "x"}).status_code == 404
    )


def test_a_submitter_sees_only_its_own_queue(desk: Desk) -> None:
    mine = desk.upload(desk.submitter, km.reviewed_photo())
    theirs = desk.upload(desk.other, km.unrelated_photo())
    for key, job_id in ((desk.submitter, mine), (desk.other, theirs)):
        assert (
            desk.call(key, "POST", f"/v1/jobs/{job_id}/appeal", json={"statement": "wrong"}).status_code
            == 201
        )
    owner = f"key:{desk.other.key.id}"
    refused = desk.call(desk.submitter, "GET", "/v1/reviews/queue", params={"kind": "appeal", "owner": owner})
    assert refused.status_code == 403
    assert error_of(refused)["code"] == "forbidden"
    own = desk.call(desk.submitter, "GET", "/v1/reviews/queue", params={"kind": "appeal"}).json()["items"]
    assert [i["job_id"] for i in own] == [mine]
    assert "assigned_to" not in own[0]
    everyone = desk.call(desk.reviewer, "GET", "/v1/reviews/queue", params={"kind": "appeal"}).json()["items"]
    assert [i["job_id"] for i in everyone] == [mine, theirs]  # oldest first
    narrowed = desk.call(desk.reviewer, "GET", "/v1/reviews/queue", params={"kind": "appeal", "owner": owner})
    assert [i["job_id"] for i in narrowed.json()["items"]] == [theirs]


def _events(sink: WebhookSink, count: int, secret: str) -> list[dict[str, Any]]:
    deliveries = sink.wait_for(count, timeout=30)
    assert len(deliveries) == count, [d.headers.get("X-Trueframe-Event") for d in deliveries]
    for delivery in deliveries:
        headers = delivery.headers
        assert verify(secret, headers[TIMESTAMP_HEADER], delivery.body, headers[SIGNATURE_HEADER])
    return [{"header": d.headers["X-Trueframe-Event"], **json.loads(d.body)} for d in deliveries]


def test_deleting_a_job_withdraws_its_pending_appeal_and_keeps_decided_ones(desk: Desk) -> None:
    """Before: the appeal of a deleted job stayed open, left the queue, could still be taken, and
    could never be decided (reviewing answered 404)."""
    decided_job = desk.upload(desk.submitter, km.reviewed_photo(), "press.jpg")
    first = desk.call(desk.submitter, "POST", f"/v1/jobs/{decided_job}/appeal", json={"statement": "edited"})
    assert desk.review(decided_job, "manipulated", "pasted sky").status_code == 201
    pending_job = desk.upload(desk.submitter, km.unrelated_photo(), "mug.jpg")
    second = desk.call(desk.submitter, "POST", f"/v1/jobs/{pending_job}/appeal", json={"statement": "fake"})
    assert second.status_code == 201, second.text
    for job_id in (decided_job, pending_job):
        assert desk.call(desk.submitter, "DELETE", f"/v1/jobs/{job_id}").status_code == 204
    withdrawn = second.json()["appeal_id"]
    assert desk.call(desk.submitter, "GET", f"/v1/appeals/{withdrawn}").status_code == 404
    assert desk.call(desk.reviewer, "POST", f"/v1/appeals/{withdrawn}/start").status_code == 404
    kept = desk.call(desk.submitter, "GET", f"/v1/appeals/{first.json()['appeal_id']}")
    assert kept.json()["state"] == "overturned"  # a decided appeal is the record of a decision


def test_decisions_stay_readable_after_their_job_is_gone(desk: Desk) -> None:
    """Reviews are the record of what was decided: until 2026-12-03 they answered 404 once their job
    expired or was deleted. Still only for the job's owner and staff."""
    job_id = desk.upload(desk.submitter, km.reviewed_photo(), "press.jpg")
    assert desk.review(job_id, "manipulated", "pasted sky").status_code == 201
    assert desk.call(desk.submitter, "DELETE", f"/v1/jobs/{job_id}").status_code == 204
    url = f"/v1/jobs/{job_id}/reviews"
    mine = desk.call(desk.submitter, "GET", url)
    assert mine.status_code == 200, mine.text
    assert [(r["verdict"], r["reviewer"]) for r in mine.json()["reviews"]] == [("manipulated", None)]
    staff = desk.call(desk.reviewer, "GET", url).json()["reviews"]
    assert staff[0]["reviewer"] == f"key:{desk.reviewer.key.id}"
    assert desk.call(desk.other, "GET", url).status_code == 404  # never another submitter's
    assert desk.call(desk.submitter, "GET", "/v1/jobs/job_" + "a" * 22 + "/reviews").status_code == 404


def test_an_appeal_moves_through_its_states_and_fires_the_webhook(desk: Desk) -> None:
    job_id = desk.upload(desk.submitter, km.reviewed_photo(), "press.jpg")
    opened = desk.call(
        desk.submitter, "POST", f"/v1/jobs/{job_id}/appeal", json={"statement": "it is doctored"}
    )
    assert opened.status_code == 201, opened.text
    appeal = opened.json()
    assert (appeal["state"], appeal["contested_verdict"]) == ("open", "authentic")  # the model said authentic
    again = desk.call(desk.submitter, "POST", f"/v1/jobs/{job_id}/appeal", json={"statement": "again"})
    assert again.status_code == 409
    started = desk.call(desk.reviewer, "POST", f"/v1/appeals/{appeal['appeal_id']}/start")
    assert started.json()["state"] == "in_review"
    assert started.json()["assigned_to"] == f"key:{desk.reviewer.key.id}"
    assert desk.call(desk.reviewer, "POST", f"/v1/appeals/{appeal['appeal_id']}/start").status_code == 409
    body = {"verdict": "authentic", "reason": "looks fine to me"}
    refused = desk.call(desk.colleague, "POST", f"/v1/jobs/{job_id}/review", json=body)
    assert refused.status_code == 409  # another reviewer took it: theirs (until 2026-12-04 anyone's)
    assert error_of(refused)["code"] == "conflict"
    assert f"taken by key:{desk.reviewer.key.id}" in error_of(refused)["message"]
    assert desk.call(desk.reviewer, "GET", f"/v1/jobs/{job_id}/reviews").json()["reviews"] == []
    decided = desk.review(job_id, "manipulated", "the sky was pasted in")
    assert decided.status_code == 201, decided.text
    assert [a["state"] for a in decided.json()["appeals"]] == ["overturned"]
    seen = desk.call(desk.submitter, "GET", f"/v1/appeals/{appeal['appeal_id']}").json()
    assert (seen["state"], seen["assigned_to"]) == ("overturned", None)  # the owner does not see who
    events = _events(desk.sink, 4, desk.submitter.webhook_secret)
    assert [e["event"] for e in events] == [
        "appeal.opened",
        "appeal.in_review",
        "review.recorded",
        "appeal.overturned",
    ]
    assert all(e["header"] == e["event"] and e["job_id"] == job_id for e in events)
    assert events[-1]["appeal"]["state"] == "overturned"
    assert events[-1]["review"]["verdict"] == "manipulated"
    assert events[-1]["review"]["reviewer"] is None
    second = desk.call(
        desk.submitter, "POST", f"/v1/jobs/{job_id}/appeal", json={"statement": "no, it is real"}
    )
    assert second.json()["contested_verdict"] == "manipulated"  # now the human decision is contested
    kept = desk.review(job_id, "manipulated", "still pasted")
    assert [a["state"] for a in kept.json()["appeals"]] == ["upheld"]


def test_an_admin_may_decide_an_appeal_another_reviewer_took(desk: Desk) -> None:
    """The reviewer who took an appeal may be away: an admin's decision settles it (the override is
    recorded under the admin's key, as every decision is)."""
    job_id = desk.upload(desk.submitter, km.reviewed_photo(), "press.jpg")
    opened = desk.call(desk.submitter, "POST", f"/v1/jobs/{job_id}/appeal", json={"statement": "mine"})
    desk.call(desk.reviewer, "POST", f"/v1/appeals/{opened.json()['appeal_id']}/start")
    body = {"verdict": "authentic", "reason": "the photographer sent the raw file"}
    decided = desk.call(desk.admin, "POST", f"/v1/jobs/{job_id}/review", json=body)
    assert decided.status_code == 201, decided.text
    assert [a["state"] for a in decided.json()["appeals"]] == ["upheld"]
    assert decided.json()["review"]["reviewer"] == f"key:{desk.admin.key.id}"


def test_the_report_shows_the_human_decision_beside_the_models(desk: Desk) -> None:
    job_id = desk.upload(desk.submitter, km.reviewed_photo())
    assert desk.report(desk.submitter, job_id)["review"] is None
    assert desk.review(job_id, "ai_generated", "generator artefacts in the hair").status_code == 201
    assert desk.review(job_id, "manipulated", "second look: a composite").status_code == 201
    mine = desk.report(desk.submitter, job_id)
    Report.model_validate(mine)  # the decision is a typed section of the report
    assert mine["score"]["verdict"] == "likely_authentic"  # the model's, unchanged
    assert (mine["review"]["verdict"], mine["review"]["reason"]) == (
        "manipulated",
        "second look: a composite",
    )
    assert mine["review"]["reviewer"] is None
    assert mine["review"]["model_verdict"] == "likely_authentic"
    staff = desk.report(desk.reviewer, job_id)  # reviewers read any key's job, and see who decided
    assert staff["review"]["reviewer"] == f"key:{desk.reviewer.key.id}"
    history = desk.call(desk.submitter, "GET", f"/v1/jobs/{job_id}/reviews").json()["reviews"]
    assert [r["verdict"] for r in history] == ["ai_generated", "manipulated"]  # append-only
    assert desk.call(desk.other, "GET", f"/v1/jobs/{job_id}").status_code == 404
    bad = desk.call(
        desk.reviewer, "POST", f"/v1/jobs/{job_id}/review", json={"verdict": "fake", "reason": "x"}
    )
    assert bad.status_code == 400


def test_reviewed_images_come_back_as_known_matches(desk: Desk) -> None:
    original = km.reviewed_photo()
    job_id = desk.upload(desk.submitter, original)
    assert desk.report(desk.submitter, job_id)["known_match"] is None
    assert desk.review(job_id, "manipulated", "face swapped").status_code == 201
    copies = {
        "re-encoded": km.reencoded(original, quality=50),
        "resized": km.resized(original, side=181, fmt="PNG"),
    }
    for name, data in copies.items():
        answer = desk.call(desk.other, "POST", f"/v1/analyze?name={name}", content=data)
        assert answer.status_code == 200, answer.text
        match = answer.json()["known_match"]
        assert match is not None, name
        assert match["verdict"] == "manipulated"
        assert 0 <= match["distance"] <= 31
        assert match["list_name"] == "reviewed"
        assert answer.json()["score"]["verdict"] == "manipulated"  # the stated rule
    unrelated = desk.call(desk.other, "POST", "/v1/analyze", content=km.unrelated_photo())
    assert unrelated.json()["known_match"] is None
    again = desk.call(desk.submitter, "POST", "/v1/analyze", content=original)  # cached before the review
    assert again.headers["x-trueframe-cache"] == "miss", "a cached report without the match is not reused"
    assert again.json()["known_match"]["distance"] == 0


def test_a_reviewed_video_comes_back_as_a_known_match(desk: Desk, tmp_path: Path) -> None:
    clip = km.reviewed_clip(tmp_path)
    job_id = desk.upload(desk.submitter, clip, "clip.mp4")
    assert desk.review(job_id, "ai_generated", "synthetic video").status_code == 201
    copy_id = desk.upload(desk.other, km.reencoded_clip(tmp_path, clip), "copy.mp4")
    match = desk.report(desk.other, copy_id)["known_match"]
    assert match is not None
    assert match["verdict"] == "ai_generated"
    assert match["matched_share"] >= 0.5
    unrelated = desk.upload(desk.other, km.unrelated_photo())
    assert desk.report(desk.other, unrelated)["known_match"] is None


def test_the_flagged_queue_holds_model_flags_without_a_human_decision(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", tmp_path / "weights")
    store = open_store(settings)
    submitter, reviewer = create_key(store, "s"), create_key(store, "r", "reviewer")
    other = create_key(store, "o")
    store.close()
    with fake_service(settings, FakeAnalyzer(settings, manipulated=0.95), known=True) as service:
        client = service.client
        first = client.post(
            "/v1/analyze", content=km.reviewed_photo(), headers={"X-API-Key": submitter.token}
        )
        second = client.post(
            "/v1/analyze", content=km.unrelated_photo(), headers={"X-API-Key": submitter.token}
        )
        twin = client.post("/v1/analyze", content=km.reviewed_photo(), headers={"X-API-Key": other.token})
        ids = [r.headers["x-trueframe-job"] for r in (first, second, twin)]
        staff = {"X-API-Key": reviewer.token}
        appealed = client.post(
            f"/v1/jobs/{ids[1]}/appeal", json={"statement": "mine"}, headers={"X-API-Key": submitter.token}
        )
        assert appealed.status_code == 201
        queue = client.get("/v1/reviews/queue", params={"kind": "flagged"}, headers=staff).json()["items"]
        assert [i["job_id"] for i in queue] == ids
        assert queue[0]["verdict"] == "manipulated"
        assert [i["appeal_state"] for i in queue] == [None, "open", None]  # the desk says so
        client.post(f"/v1/appeals/{appealed.json()['appeal_id']}/start", headers=staff)
        queue = client.get("/v1/reviews/queue", params={"kind": "flagged"}, headers=staff).json()["items"]
        assert [i["appeal_state"] for i in queue] == [None, "in_review", None]
        client.post(
            f"/v1/jobs/{ids[0]}/review", json={"verdict": "manipulated", "reason": "x"}, headers=staff
        )
        copy = client.post(
            "/v1/analyze", content=km.reencoded(km.reviewed_photo()), headers={"X-API-Key": submitter.token}
        )
        assert copy.json()["known_match"]["verdict"] == "manipulated"
        queue = client.get("/v1/reviews/queue", params={"kind": "flagged"}, headers=staff).json()["items"]
        # the decided job, an identical upload made before the decision and a known re-upload leave it
        assert [i["job_id"] for i in queue] == [ids[1]]
        assert queue[0]["appeal_state"] == "in_review"


def test_hash_lists_export_and_import_as_csv_of_hashes(desk: Desk) -> None:
    job_id = desk.upload(desk.submitter, km.reviewed_photo())
    desk.review(job_id, "manipulated", "composite")
    exported = desk.call(desk.reviewer, "GET", "/v1/hash-lists/reviewed/export")
    assert exported.status_code == 200
    lines = exported.text.splitlines()
    assert lines[0] == "item,kind,verdict,reviewed_at,hash"
    assert len(lines) == 2
    assert job_id not in exported.text  # hashes and verdicts only: no job, no owner
    assert desk.submitter.key.id not in exported.text
    assert desk.call(desk.submitter, "GET", "/v1/hash-lists/reviewed/export").status_code == 403
    shared = exported.text.replace(",manipulated,", ",ai_generated,")
    refused = desk.call(desk.reviewer, "POST", "/v1/hash-lists/partner/import", content=shared)
    assert refused.status_code == 403  # importing changes every analysis: admins only
    imported = desk.call(desk.admin, "POST", "/v1/hash-lists/partner/import", content=shared)
    assert imported.json() == {"list": "partner", "items": 1, "hashes": 1, "replaced": False}
    lists = {x["name"]: x for x in desk.call(desk.reviewer, "GET", "/v1/hash-lists").json()["lists"]}
    assert (lists["partner"]["items"], lists["reviewed"]["items"]) == (1, 1)
    bad = desk.call(desk.admin, "POST", "/v1/hash-lists/partner/import", content="item,kind\nx,image\n")
    assert error_of(bad)["code"] == "invalid_request"
    binary = desk.call(
        desk.admin, "POST", "/v1/hash-lists/partner/import", content=km.reviewed_photo()[:2000]
    )
    assert (binary.status_code, error_of(binary)["code"]) == (400, "invalid_request")
    assert desk.call(desk.admin, "DELETE", "/v1/hash-lists/partner").status_code == 204
    assert desk.call(desk.reviewer, "GET", "/v1/hash-lists/partner/export").status_code == 404


def test_erasure_removes_a_keys_jobs_reviews_and_hashes(desk: Desk) -> None:
    job_id = desk.upload(desk.submitter, km.reviewed_photo())
    desk.call(desk.submitter, "POST", f"/v1/jobs/{job_id}/appeal", json={"statement": "mine"})
    desk.review(job_id, "manipulated", "composite")
    other_id = desk.upload(desk.other, km.unrelated_photo())
    desk.review(other_id, "authentic", "original")
    url = f"/v1/keys/{desk.submitter.key.id}/data"
    assert desk.call(desk.reviewer, "DELETE", url).status_code == 403
    erased = desk.call(desk.admin, "DELETE", url)
    assert erased.status_code == 200, erased.text
    counts = erased.json()["erased"]
    assert (counts["jobs"], counts["reviews"], counts["appeals"], counts["hash_list_items"]) == (1, 1, 1, 1)
    assert desk.call(desk.submitter, "GET", f"/v1/jobs/{job_id}").status_code == 404
    assert desk.call(desk.reviewer, "GET", f"/v1/jobs/{job_id}").status_code == 404
    export = desk.call(desk.reviewer, "GET", "/v1/hash-lists/reviewed/export").text
    assert len(export.splitlines()) == 2, "only the other key's reviewed item is left"
    copy = desk.call(desk.other, "POST", "/v1/analyze", content=km.reencoded(km.reviewed_photo()))
    assert copy.json()["known_match"] is None, "erased hashes no longer match"
    assert desk.call(desk.admin, "DELETE", "/v1/keys/ffffffff/data").status_code == 404
    long = desk.call(desk.admin, "DELETE", f"/v1/keys/{'f' * 5000}/data")  # not echoed back in full
    assert long.status_code == 404
    assert long.json()["error"]["message"] == f"no key {'f' * 64!r} (cut)"
    assert desk.call(desk.submitter, "POST", "/v1/analyze", content=km.unrelated_photo()).status_code == 200


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("review", {"verdict": "authentic", "reason": "   \n\t"}),
        ("review", {"verdict": "authentic", "reason": "seen \x00 it"}),
        ("review", {"verdict": "authentic", "reason": "ok", "notes": "a\x00b"}),
        ("appeal", {"statement": " \u3000 "}),
        ("appeal", {"statement": "it is \x00 real"}),
    ],
)
def test_a_blank_or_nul_reason_or_statement_is_refused(desk: Desk, route: str, body: dict[str, Any]) -> None:
    """A decision needs a reason and an appeal a statement: until 2026-12-04 one of blanks only was
    recorded (and decided the pending appeal with a reason of "   "), and a NUL character was stored
    on SQLite but answered 500 on PostgreSQL, whose text cannot hold it."""
    job_id = desk.upload(desk.submitter, km.reviewed_photo())
    key = desk.reviewer if route == "review" else desk.submitter
    answer = desk.call(key, "POST", f"/v1/jobs/{job_id}/{route}", json=body)
    assert answer.status_code == 400, answer.text
    assert error_of(answer)["code"] == "invalid_request"
    assert desk.call(desk.reviewer, "GET", f"/v1/jobs/{job_id}/reviews").json()["reviews"] == []
    assert desk.call(desk.reviewer, "GET", f"/v1/jobs/{job_id}").json()["appeal"] is None


def test_reason_and_statement_are_kept_without_surrounding_blanks(desk: Desk) -> None:
    job_id = desk.upload(desk.submitter, km.reviewed_photo())
    appeal = desk.call(desk.submitter, "POST", f"/v1/jobs/{job_id}/appeal", json={"statement": "  real \n"})
    assert appeal.json()["statement"] == "real"
    decided = desk.call(
        desk.reviewer,
        "POST",
        f"/v1/jobs/{job_id}/review",
        json={"verdict": "authentic", "reason": " camera original ", "notes": "  "},
    )
    assert (decided.json()["review"]["reason"], decided.json()["review"]["notes"]) == (
        "camera original",
        None,
    )


def test_staff_appealing_another_keys_job_is_told_why_not(desk: Desk) -> None:
    """Reviewers read every job (and the web form shows them its appeal form): until 2026-12-04 their
    appeal answered `404 job_not_found` for the job they had just read."""
    job_id = desk.upload(desk.submitter, km.reviewed_photo())
    assert desk.call(desk.reviewer, "GET", f"/v1/jobs/{job_id}").status_code == 200
    answer = desk.call(desk.reviewer, "POST", f"/v1/jobs/{job_id}/appeal", json={"statement": "x"})
    assert answer.status_code == 403, answer.text
    assert error_of(answer)["code"] == "forbidden"
    assert "owner" in error_of(answer)["message"]
    other = desk.call(desk.other, "POST", f"/v1/jobs/{job_id}/appeal", json={"statement": "x"})
    assert other.status_code == 404  # another submitter still cannot tell the job exists
    assert desk.call(desk.reviewer, "GET", f"/v1/jobs/{job_id}").json()["appeal"] is None


@pytest.mark.parametrize(
    ("role", "method", "url", "status", "code"),
    [
        ("reviewer", "GET", "/v1/appeals/apl_%00x", 404, "appeal_not_found"),
        ("reviewer", "POST", "/v1/appeals/apl_%00x/start", 404, "appeal_not_found"),
        ("reviewer", "GET", "/v1/jobs/job_%00/reviews", 404, "job_not_found"),
        ("reviewer", "GET", "/v1/hash-lists/a%00b/export", 404, "list_not_found"),
        ("admin", "DELETE", "/v1/hash-lists/a%00b", 404, "list_not_found"),
        ("reviewer", "GET", "/v1/reviews/queue?kind=flagged&owner=key:%00", 400, "invalid_request"),
    ],
)
def test_a_nul_in_an_id_name_or_owner_is_a_typed_error(
    desk: Desk, role: str, method: str, url: str, status: int, code: str
) -> None:
    """Until 2026-12-04 these reached the store, and PostgreSQL answered a NUL with 500."""
    answer = desk.call(desk.reviewer if role == "reviewer" else desk.admin, method, url)
    assert answer.status_code == status, answer.text
    assert error_of(answer)["code"] == code
