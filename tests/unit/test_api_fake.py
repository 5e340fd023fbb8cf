"""The HTTP API and the job runner over the fake analyzer: no torch analysis, no model, no shared data.

Image answered then cached, video jobs with progress and partial results, ``?wait=true``, analyzer
errors as failed jobs, the queue limit, readiness, a restart. Access and webhooks: ``test_keys.py`` and
``test_webhooks.py``; the same API over the real pipeline: ``tests/integration/test_api.py``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from detector.errors import CorruptMedia, WeightsMissing
from detector.report.schema import Report
from detector.settings import Settings
from detector.stages import PROGRESS, Options
from tests.support import mediagen
from tests.support.fake_analyzer import FakeAnalyzer
from tests.support.hostile import jpeg
from tests.support.servicekit import (
    FakeService,
    error_of,
    fake_service,
    make_settings,
    poll_job,
    wait_job,
    wait_until,
)

pytestmark = pytest.mark.usefixtures("database_url")  # SQLite, then PostgreSQL


def settings_for(tmp_path: Path, **serve: Any) -> Settings:
    return make_settings(tmp_path / "data", tmp_path / "weights", **serve)


@pytest.fixture(scope="module")
def face_jpeg() -> bytes:
    return jpeg(mediagen.face_photo()[::4, ::4])


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("clip") / "c.mp4"
    return mediagen.write_face_clip(path, n_frames=12, size=(64, 48)).read_bytes()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[FakeService]:
    with fake_service(settings_for(tmp_path)) as running:
        yield running


def test_image_is_answered_with_its_report_then_from_cache(service: FakeService, face_jpeg: bytes) -> None:
    client = service.client
    first = client.post("/v1/analyze", files={"file": ("face.jpg", face_jpeg, "image/jpeg")})
    assert first.status_code == 200, first.text
    assert first.headers["x-trueframe-cache"] == "miss"
    report = Report.model_validate(first.json())
    assert (report.media.kind, report.media.name, len(report.tracks)) == ("image", "face.jpg", 1)
    again = client.post("/v1/analyze?name=other.jpg", content=face_jpeg)  # raw body, same bytes
    assert again.status_code == 200
    assert again.headers["x-trueframe-cache"] == "hit"
    renamed = {**first.json(), "media": {**first.json()["media"], "name": "other.jpg"}}
    assert again.json() == renamed, "a hit is the cached report under this upload's name"
    kept = client.get(f"/v1/jobs/{again.headers['x-trueframe-job']}").json()
    assert (kept["name"], kept["report"]["media"]["name"]) == ("other.jpg", "other.jpg")
    unnamed = client.post("/v1/analyze", content=face_jpeg)
    assert (unnamed.headers["x-trueframe-cache"], unnamed.json()["media"]["name"]) == ("hit", None)
    assert len(service.analyzer.calls) == 1, "a cache hit must not analyse again"
    assert "trueframe_cache_hits_total 2.0" in client.get("/metrics").text
    heat = client.post("/v1/analyze?heatmaps=true", content=face_jpeg)  # other options: another key
    assert heat.headers["x-trueframe-cache"] == "miss"
    assert [c.options for c in service.analyzer.calls] == [Options(), Options(heatmaps=True)]


def test_video_job_reports_progress_and_partial_results_then_its_report(tmp_path: Path, clip: bytes) -> None:
    settings = settings_for(tmp_path)
    hold = threading.Event()
    with fake_service(settings, FakeAnalyzer(settings, hold=hold)) as service:
        client = service.client
        posted = client.post("/v1/analyze?name=clip.mp4&frames=3", content=clip)
        assert posted.status_code == 202, posted.text
        body = posted.json()
        assert body["status"] in {"queued", "running"}
        assert posted.headers["location"] == body["links"]["self"] == f"/v1/jobs/{body['job_id']}"
        running = wait_job(client, body["job_id"], lambda j: j["progress"] == PROGRESS["report"])
        assert running["status"] == "running"
        assert running["report"] is None
        partial = running["partial"]
        assert partial == {"stage": "report", "frames_sampled": 3, "faces_found": 3, "face_tracks": 1}
        hold.set()
        job = poll_job(client, body["job_id"], timeout=30)
    assert job["status"] == "succeeded", job
    assert job["progress"] == 1.0
    assert job["error"] is None
    assert job["_progress_seen"] == sorted(job["_progress_seen"])
    report = Report.model_validate(job["report"])
    assert (report.media.kind, report.media.name, len(report.frames)) == ("video", "clip.mp4", 3)
    assert service.analyzer.calls[0].options == Options(frames=3)
    assert list(service.store.media_dir.iterdir()) == [], "media must go when the job ends"


def test_the_same_video_again_is_a_finished_job_from_the_cache(service: FakeService, clip: bytes) -> None:
    client = service.client
    first = poll_job(client, client.post("/v1/analyze?frames=2", content=clip).json()["job_id"], timeout=30)
    again = client.post("/v1/analyze?frames=2", content=clip)
    assert again.status_code == 202
    assert again.json()["status"] == "succeeded"
    assert again.json()["report"] == first["report"]
    assert len(service.analyzer.calls) == 1
    other = poll_job(client, client.post("/v1/analyze?frames=4", content=clip).json()["job_id"], timeout=30)
    assert len(other["report"]["frames"]) == 4
    assert len(service.analyzer.calls) == 2, "another frame count is another result"


def test_wait_true_returns_the_report_or_the_job_when_it_takes_too_long(tmp_path: Path, clip: bytes) -> None:
    settings = settings_for(tmp_path, wait_timeout_s=0.5)
    hold = threading.Event()
    with fake_service(settings, FakeAnalyzer(settings, hold=hold)) as service:
        client = service.client
        slow = client.post("/v1/analyze?wait=true&frames=2", content=clip)
        assert slow.status_code == 202, slow.text
        assert slow.json()["status"] in {"queued", "running"}
        hold.set()
        poll_job(client, slow.json()["job_id"], timeout=30)
        quick = client.post("/v1/analyze?wait=true&frames=5", content=clip)
        assert quick.status_code == 200, quick.text
        report = Report.model_validate(quick.json())
        assert (report.media.kind, len(report.frames)) == ("video", 5)
        assert quick.headers["x-trueframe-cache"] == "miss"
        assert quick.headers["link"] == f"</v1/jobs/{quick.headers['x-trueframe-job']}>; rel=job"
        again = client.post("/v1/analyze?wait=true&frames=5", content=clip)  # answered from the cache
        assert (again.status_code, again.headers["x-trueframe-cache"]) == (200, "hit")
        assert again.headers["x-trueframe-job"] != quick.headers["x-trueframe-job"]


@pytest.mark.parametrize(
    ("error", "code", "status"),
    [
        (WeightsMissing("weights not imported; run trueframe weights import"), "weights_missing", 503),
        (CorruptMedia("the stream broke at frame 3"), "corrupt_media", 422),
        (RuntimeError("a bug with a secret path /srv/x"), "internal_error", 500),
    ],
    ids=["weights_missing", "corrupt_media", "untyped"],
)
def test_analyzer_errors_fail_the_job_with_their_code(
    tmp_path: Path, clip: bytes, face_jpeg: bytes, error: Exception, code: str, status: int
) -> None:
    settings = settings_for(tmp_path)
    with fake_service(settings, FakeAnalyzer(settings, error=error)) as service:
        client = service.client
        job = poll_job(client, client.post("/v1/analyze", content=clip).json()["job_id"], timeout=30)
        assert job["status"] == "failed"
        assert job["report"] is None
        assert job["error"]["code"] == code
        if code == "internal_error":
            assert "/srv/x" not in job["error"]["message"], "an unexpected error's text stays in the log"
        else:
            assert job["error"]["message"] == str(error.args[0])
        assert list(service.store.media_dir.iterdir()) == []
        waited = client.post("/v1/analyze?wait=true&frames=3", content=clip)
        assert waited.status_code == status
        assert error_of(waited)["code"] == code
        image = client.post("/v1/analyze", content=face_jpeg)
        assert image.status_code == status
        assert error_of(image)["code"] == code
        service.analyzer.error = None
        recovered = client.post("/v1/analyze", content=face_jpeg)
        assert recovered.status_code == 200
        assert recovered.headers["x-trueframe-cache"] == "miss", "a failure is never cached"


def test_full_queue_answers_429_with_retry_after(tmp_path: Path, clip: bytes, face_jpeg: bytes) -> None:
    settings = settings_for(tmp_path, job_workers=0, max_queue=1, retry_after_s=7)
    with fake_service(settings) as service:
        client = service.client
        assert client.post("/v1/analyze?name=a.mp4", content=clip).status_code == 202
        for body in (clip, face_jpeg):
            full = client.post("/v1/analyze", content=body)
            assert full.status_code == 429
            assert full.headers["retry-after"] == "7"
            assert error_of(full)["code"] == "queue_full"
        assert service.analyzer.calls == []


def test_deleting_a_running_job_stops_its_analysis(tmp_path: Path, clip: bytes) -> None:
    """Before, DELETE removed the job but its analysis ran on to the end, holding the worker (a
    long video held the only one for minutes while later jobs waited)."""
    from tests.support.gated_analyzer import GatedAnalyzer

    class Finishing(GatedAnalyzer):
        completed = 0

        async def analyze(self, *args: Any, **kwargs: Any) -> Any:
            report = await super().analyze(*args, **kwargs)
            self.completed += 1
            return report

    settings = settings_for(tmp_path)
    gated = Finishing(settings)
    with fake_service(settings, gated) as service:
        client = service.client
        job_id = client.post("/v1/analyze", content=clip).json()["job_id"]
        assert gated.waiting.wait(10), "the job never started"
        assert client.delete(f"/v1/jobs/{job_id}").status_code == 204
        gated.gate.set()  # its first stage reports progress: the job is gone, so it stops there
        next_job = client.post("/v1/analyze?frames=2&wait=true", content=clip)
        assert next_job.status_code == 200, next_job.text
        assert gated.completed == 1, "the deleted job's analysis ran to its end"
        assert list(service.store.media_dir.iterdir()) == []


def test_a_waited_job_whose_upload_vanished_is_410_media_lost(tmp_path: Path, clip: bytes) -> None:
    """Before, ``?wait=true`` answered 500, the status of a bug, for a job that failed as media_lost."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.support.gated_analyzer import GatedAnalyzer

    settings = settings_for(tmp_path)
    gated = GatedAnalyzer(settings)
    with fake_service(settings, gated) as service, ThreadPoolExecutor(1) as pool:
        client = service.client
        assert client.post("/v1/analyze?frames=2", content=clip).status_code == 202
        assert gated.waiting.wait(10), "the first job never started"
        waited = pool.submit(client.post, "/v1/analyze?frames=3&wait=true", content=clip)
        assert wait_until(lambda: len(service.store.queued_ids()) == 1, timeout=10)
        second = service.store.get(service.store.queued_ids()[0])
        assert second is not None
        assert second.media_path is not None
        Path(second.media_path).unlink()  # the second upload is gone before its analysis starts
        gated.gate.set()
        answer = waited.result(timeout=30)
        assert answer.status_code == 410, answer.text
        assert error_of(answer)["code"] == "media_lost"


def test_a_cached_report_is_not_served_after_its_ttl(tmp_path: Path, face_jpeg: bytes) -> None:
    """Before, the copy stayed a hit until the next purge (every 10 minutes by default), though the
    job it came from had expired."""
    settings = settings_for(tmp_path, report_ttl_hours=1.0 / 3600)  # one second
    with fake_service(settings) as service:
        first = service.client.post("/v1/analyze", content=face_jpeg)
        assert first.headers["x-trueframe-cache"] == "miss"
        time.sleep(1.2)
        again = service.client.post("/v1/analyze", content=face_jpeg)
        assert again.headers["x-trueframe-cache"] == "miss", "an expired report was served"


def test_a_burst_of_uploads_never_overruns_the_queue(tmp_path: Path, clip: bytes) -> None:
    """Before, every upload of a burst passed the queue check before any was stored: 8 parallel
    uploads against ``max_queue=4`` were all accepted. (Once, reading the count of places held
    after the store's count let a fifth in: a place released meanwhile was in neither; and until
    2026-12-04 a check between a row's commit and its place's release refused a fourth, 3 accepted
    in a full run on a loaded machine: see the next test.)"""
    from concurrent.futures import ThreadPoolExecutor

    settings = settings_for(tmp_path, job_workers=0, max_queue=4)
    with fake_service(settings) as service:
        client = service.client
        with ThreadPoolExecutor(8) as pool:
            codes = list(
                pool.map(
                    lambda i: client.post(f"/v1/analyze?frames={i + 1}", content=clip).status_code, range(8)
                )
            )
        assert sorted(codes) == [202] * 4 + [429] * 4, f"{codes}"
        assert service.store.active_count() == 4


def test_a_job_stored_is_counted_once_not_as_a_row_and_a_place(tmp_path: Path, clip: bytes) -> None:
    """Until 2026-12-04 an upload's place was given up after its row's commit, once the write had
    returned to the event loop: a check in between counted the job twice and refused an upload the
    queue had room for (429 with one job queued against ``max_queue=2``). The window is held open
    here: the first upload's row is committed, its write has not returned."""
    from concurrent.futures import ThreadPoolExecutor

    settings = settings_for(tmp_path, job_workers=0, max_queue=2)
    with fake_service(settings) as service, ThreadPoolExecutor(1) as pool:
        store, committed, go_on = service.store, threading.Event(), threading.Event()
        create_job = store.create_job

        def slow_to_return(**kwargs: Any) -> Any:
            job = create_job(**kwargs)
            if not committed.is_set():
                committed.set()
                assert go_on.wait(30)
            return job

        store.create_job = slow_to_return  # type: ignore[method-assign]
        first = pool.submit(service.client.post, "/v1/analyze?frames=1", content=clip)
        try:
            assert committed.wait(30), "the first upload was never stored"
            assert store.active_count() == 1
            second = service.client.post("/v1/analyze?frames=2", content=clip)
            assert second.status_code == 202, second.text  # one job queued, one place free
            third = service.client.post("/v1/analyze?frames=3", content=clip)
            assert third.status_code == 429, "two jobs queued fill a queue of 2"
        finally:
            go_on.set()
        assert first.result(timeout=30).status_code == 202
        assert store.active_count() == 2


def test_an_image_being_analysed_counts_against_the_queue(tmp_path: Path, face_jpeg: bytes) -> None:
    settings = settings_for(tmp_path, max_queue=1)
    hold = threading.Event()
    fake = FakeAnalyzer(settings, hold=hold)
    with fake_service(settings, fake) as service:
        answers: list[int] = []
        first = threading.Thread(
            target=lambda: answers.append(service.client.post("/v1/analyze", content=face_jpeg).status_code)
        )
        first.start()
        try:
            assert fake.started.wait(30)
            other = service.client.post("/v1/analyze", content=jpeg(mediagen.face_photo()[::3, ::3]))
            assert other.status_code == 429
            assert error_of(other)["code"] == "queue_full"
        finally:
            hold.set()
            first.join(30)
        assert answers == [200]
        again = service.client.post("/v1/analyze", content=jpeg(mediagen.face_photo()[::3, ::3]))
        assert again.status_code == 200, "the slot is free once the first image is answered"


def test_readyz_follows_the_analyzer(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    with fake_service(settings, FakeAnalyzer(settings, ready=False)) as service:
        answer = service.client.get("/readyz")
        assert answer.status_code == 503
        assert error_of(answer)["code"] == "not_ready"
        assert service.client.get("/healthz").json() == {"status": "ok"}
        service.analyzer.is_ready = True
        assert service.client.get("/readyz").json() == {"status": "ready"}


def test_hostile_upload_never_reaches_the_analyzer(service: FakeService) -> None:
    answer = service.client.post("/v1/analyze?name=x.jpg", content=b"plain text, not a photo\n" * 10)
    assert answer.status_code == 415
    assert error_of(answer)["code"] == "unsupported_media_type"
    assert service.analyzer.calls == []


def test_a_queued_job_finishes_after_a_restart_and_a_deleted_one_never_runs(
    tmp_path: Path, clip: bytes
) -> None:
    paused = settings_for(tmp_path, job_workers=0)
    with fake_service(paused) as service:
        kept = service.client.post("/v1/analyze?name=r.mp4&frames=2", content=clip).json()["job_id"]
        gone = service.client.post("/v1/analyze?name=d.mp4&frames=3", content=clip).json()["job_id"]
        assert service.client.get(f"/v1/jobs/{kept}").json()["status"] == "queued"
        assert service.client.delete(f"/v1/jobs/{gone}").status_code == 204
    with fake_service(settings_for(tmp_path, job_workers=1)) as service:
        job = poll_job(service.client, kept, timeout=30)
        assert service.client.get(f"/v1/jobs/{gone}").status_code == 404
    assert job["status"] == "succeeded", job
    assert job["report"]["media"]["name"] == "r.mp4"
    assert [c.name for c in service.analyzer.calls] == ["r.mp4"]
    assert list(service.store.media_dir.iterdir()) == []
