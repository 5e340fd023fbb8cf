"""The HTTP API against the REAL Ray Serve app (one per session): every stage in its own deployment.

The backend's in-process tests cover the API in depth; these check what only the Serve path can
break: the deployments, their batching and handles, typed errors crossing Ray, job progress
reported from the stages, and that a report is the same as the in-process pipeline's.
"""

from __future__ import annotations

import io
import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from PIL import Image

from tests.support import mediagen
from tests.support.hostile import HOSTILE
from tests.support.serve_helpers import Service
from tests.support.servicekit import webhook_sink

if TYPE_CHECKING:
    from detector.pipeline import Pipeline

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.shared_data]

VERDICTS = {"authentic", "likely_authentic", "uncertain", "likely_manipulated", "manipulated", "ai_generated"}


@pytest.fixture(scope="module")
def local_pipeline(service: Service) -> Pipeline:
    """The in-process pipeline with the service's settings: the reference the Serve path must match."""
    from detector.pipeline import Pipeline

    return Pipeline(service.settings)


@pytest.fixture(scope="module")
def face_jpeg(face_photo: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(face_photo).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def _poll(client: Any, job_id: str, timeout_s: float = 180.0) -> tuple[dict[str, Any], list[float]]:
    """Poll a job until it is finished; returns its last state and every progress value seen."""
    seen: list[float] = []
    deadline = time.monotonic() + timeout_s
    while True:
        r = client.get(f"/v1/jobs/{job_id}")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        seen.append(body["progress"])
        if body["status"] in ("succeeded", "failed", "cancelled"):
            return body, seen
        assert time.monotonic() < deadline, f"job still {body['status']} after {timeout_s} s"
        time.sleep(0.2)


def test_image_is_answered_synchronously_like_the_in_process_pipeline(
    service: Service, local_pipeline: Pipeline, face_jpeg: bytes
) -> None:
    with service.client(service.key_a) as client:
        r = client.post("/v1/analyze", files={"file": ("astronaut.jpg", face_jpeg, "image/jpeg")})
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["media"]["kind"] == "image"
    assert report["media"]["name"] == "astronaut.jpg"
    assert report["score"]["verdict"] in VERDICTS
    assert 0.0 <= report["score"]["manipulated"] <= 1.0
    assert len(report["tracks"]) == 1
    assert report["tracks"][0]["faces"][0]["logit"] is not None
    assert [m["name"] for m in report["models"]] == ["meso4.df", "nprcnn.artefacts"]
    local = local_pipeline.analyze(face_jpeg, name="astronaut.jpg")
    served_box = report["tracks"][0]["faces"][0]
    local_box = local.tracks[0].faces[0]
    assert served_box["box"] == pytest.approx(list(local_box.box), abs=1e-3)
    assert served_box["logit"] == pytest.approx(local_box.logit, abs=1e-4)
    assert report["frames"][0]["synthetic_logit"] == pytest.approx(local.frames[0].synthetic_logit, abs=1e-4)
    assert report["score"]["manipulated"] == pytest.approx(local.score.manipulated, abs=1e-5)
    assert report["score"]["verdict"] == local.score.verdict


def test_video_becomes_a_job_that_reports_progress_and_finishes(
    service: Service, local_pipeline: Pipeline, tmp_path: Path
) -> None:
    clip = tmp_path / "walk.mp4"
    mediagen.write_face_clip(clip, n_frames=40, fps=20, size=(320, 240))
    with service.client(service.key_a) as client:
        r = client.post("/v1/analyze", params={"frames": 6}, files={"file": ("walk.mp4", clip.read_bytes())})
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        assert r.headers["Location"] == f"/v1/jobs/{job_id}"
        job, progress = _poll(client, job_id)
    assert job["status"] == "succeeded", job["error"]
    assert progress == sorted(progress)
    assert progress[-1] == 1.0
    report = job["report"]
    assert report["media"]["kind"] == "video"
    assert len(report["frames"]) == 6
    assert [f["timestamp"] for f in report["frames"]] == sorted(f["timestamp"] for f in report["frames"])
    assert report["tracks"]
    assert all(face["logit"] is not None for face in report["tracks"][0]["faces"])
    local = local_pipeline.analyze(clip, frames=6)
    assert [f["faces"] for f in report["frames"]] == [f.faces for f in local.frames]
    assert all(f["synthetic_score"] is not None for f in report["frames"])
    assert [t["length"] for t in report["tracks"]] == [t.length for t in local.tracks]
    assert report["score"]["manipulated"] == pytest.approx(local.score.manipulated, abs=1e-5)


def test_a_borderline_face_gets_the_same_report_in_process_and_through_serve(
    service: Service, local_pipeline: Pipeline
) -> None:
    """A face MTCNN finds with probability in (0.9, 0.95): kept or dropped alike on both paths, so
    no threshold may differ between the Serve deployments and the settings."""
    from detector.faces.extract import FaceExtractor
    from detector.settings import FaceSettings

    image = mediagen.borderline_face()
    (loose,) = FaceExtractor(FaceSettings(min_probability=0.5)).detect([image])
    assert [0.9 < d.probability < 0.95 for d in loose] == [True], "not a borderline face any more"
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "PNG")
    with service.client(service.key_a) as client:
        r = client.post("/v1/analyze", files={"file": ("borderline.png", buf.getvalue(), "image/png")})
    assert r.status_code == 200, r.text
    served = r.json()
    local = local_pipeline.analyze(buf.getvalue(), name="borderline.png")
    kept = int(loose[0].probability >= service.settings.faces.min_probability)
    assert [f["faces"] for f in served["frames"]] == [f.faces for f in local.frames] == [kept]
    boxes = [[face["box"] for face in t["faces"]] for t in served["tracks"]]
    assert boxes == [[pytest.approx(list(face.box), abs=1e-3) for face in t.faces] for t in local.tracks]
    assert served["score"]["verdict"] == local.score.verdict
    if local.score.manipulated is None:
        assert served["score"]["manipulated"] is None
    else:
        assert served["score"]["manipulated"] == pytest.approx(local.score.manipulated, abs=1e-5)
    signals = {s["name"]: s["present"] for s in served["score"]["signals"]}
    assert signals == {s.name: s.present for s in local.score.signals}


@pytest.mark.parametrize(("name", "status", "code", "make"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_input_gets_its_typed_4xx(
    service: Service, name: str, status: int, code: str, make: Callable[[Path], bytes], tmp_path: Path
) -> None:
    with service.client(service.key_a) as client:
        r = client.post("/v1/analyze", params={"name": name}, content=make(tmp_path))
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code


def test_a_declared_oversize_upload_is_refused_with_413(service: Service) -> None:
    host, port = service.url.removeprefix("http://").split(":")
    too_big = service.settings.limits.max_video_bytes + 1
    head = (
        f"POST /v1/analyze HTTP/1.1\r\nHost: test\r\nContent-Length: {too_big}\r\n"
        f"Content-Type: video/mp4\r\nAuthorization: Bearer {service.key_a}\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(head.encode())  # the body never comes: the header alone must be refused
        answer = b""
        while b'"payload_too_large"' not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b'"payload_too_large"' in answer


def test_a_callback_gets_the_signed_final_job(service: Service, face_jpeg: bytes) -> None:
    from serving.auth.keys import authenticate_key
    from serving.jobs.store import open_store
    from serving.jobs.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify

    store = open_store(service.settings)
    principal = authenticate_key(store, service.key_a)
    store.close()
    assert principal is not None
    assert principal.webhook_secret is not None
    with webhook_sink() as sink, service.client(service.key_a) as client:
        posted = client.post(
            "/v1/analyze", params={"name": "a.jpg", "callback_url": sink.url}, content=face_jpeg
        )
        assert posted.status_code == 202, posted.text
        job, _ = _poll(client, posted.json()["job_id"])
        assert job["status"] == "succeeded", job
        (delivery,) = sink.wait_for(1)
    assert verify(
        principal.webhook_secret,
        delivery.headers[TIMESTAMP_HEADER],
        delivery.body,
        delivery.headers[SIGNATURE_HEADER],
    )
    assert json.loads(delivery.body)["job_id"] == job["job_id"]


def test_a_job_is_visible_only_to_the_key_that_made_it(service: Service, tmp_path: Path) -> None:
    clip = tmp_path / "short.mp4"
    mediagen.write_face_clip(clip, n_frames=10, fps=10, size=(160, 120))
    with service.client(service.key_a) as owner:
        r = owner.post("/v1/analyze", params={"frames": 2}, files={"file": ("short.mp4", clip.read_bytes())})
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        with service.client(service.key_b) as other:
            r_other = other.get(f"/v1/jobs/{job_id}")
            assert r_other.status_code == 404
            assert r_other.json()["error"]["code"] == "job_not_found"
            assert other.delete(f"/v1/jobs/{job_id}").status_code == 404
        with service.client() as anonymous:
            assert anonymous.get(f"/v1/jobs/{job_id}").status_code == 401
        job, _ = _poll(owner, job_id)
        assert job["status"] == "succeeded", job["error"]
        assert owner.delete(f"/v1/jobs/{job_id}").status_code == 204


def test_typed_errors_raised_in_a_replica_arrive_as_themselves(service: Service) -> None:
    from ray import serve

    from detector.errors import UnsupportedMediaType
    from serving.ray.analyzer import unwrap
    from serving.ray.app import APP_NAME

    media = serve.get_deployment_handle("media", app_name=APP_NAME)
    with pytest.raises(UnsupportedMediaType) as caught:  # unwrap takes the call (it may send it again)
        unwrap(lambda: media.prepare.remote(b"plain text, not media", "note.txt", None))
    assert type(caught.value) is UnsupportedMediaType
    assert caught.value.code == "unsupported_media_type"


def test_stage_replicas_export_how_full_their_batches_are(service: Service, tmp_path: Path) -> None:
    """Whether ``@serve.batch`` fills its batches under load is read from Ray's metrics: every
    batched pass of faces, face_model and synthetic_model is counted, with the images it held (this
    clip's passes: the counters are cumulative over the module's service)."""
    from serving.ray.deployments import node_batch_totals

    clip = tmp_path / "batched.mp4"  # a clip no other test analyses: a cached report runs no stage
    mediagen.write_face_clip(clip, n_frames=36, fps=20, size=(352, 240))
    time.sleep(12)  # what earlier tests ran is exported by now (Ray exports every few seconds)
    before = node_batch_totals()
    with service.client(service.key_a) as client:
        r = client.post(
            "/v1/analyze", params={"frames": 6, "wait": "true"}, files={"file": ("b.mp4", clip.read_bytes())}
        )
        assert r.status_code == 200, r.text
    frames = len(r.json()["frames"])
    deadline = time.monotonic() + 90

    def grown() -> dict[str, tuple[float, float]]:
        now = node_batch_totals()
        return {k: (now[k][0] - before[k][0], now[k][1] - before[k][1]) for k in now}

    while (delta := grown())["synthetic_model"][1] < frames or min(b for b, _ in delta.values()) == 0:
        assert time.monotonic() < deadline, f"this clip's passes, exported so far: {delta}"
        time.sleep(2)
    for stage, (batches, images) in delta.items():
        assert images >= batches >= 1, (stage, delta)
    assert delta["synthetic_model"][1] == frames  # one synthetic-image input per sampled frame
