"""Known-media matching through the real in-process pipeline (MesoNet on CPU), on SQLite: the
service's own hash list makes re-encoded and resized copies of a reviewed photo, and a re-encoded
copy of a reviewed video, come back with ``known_match`` and the reviewer's verdict, and the stated
fusion rule applies (a human manipulated decision outweighs the models; authentic lowers the score
by the stated prior). An unrelated photo does not match."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from serving.analyzer import InProcessAnalyzer
from serving.auth.keys import create_key
from serving.http.app import create_app
from serving.known.lookup import StoreKnownMedia
from tests.support import known_media as km
from tests.support.servicekit import make_settings, mesonet_weights_dir, open_store, poll_job

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]


@dataclass
class Service:
    client: TestClient
    submitter: dict[str, str]
    reviewer: dict[str, str]

    def analyse(self, data: bytes, name: str) -> tuple[str, dict[str, Any]]:
        answer = self.client.post(f"/v1/analyze?name={name}", content=data, headers=self.submitter)
        assert answer.status_code in (200, 202), answer.text
        if answer.status_code == 200:
            return answer.headers["x-trueframe-job"], answer.json()
        job = poll_job(self.client, answer.json()["job_id"], timeout=300, headers=self.submitter)
        assert job["status"] == "succeeded", job
        return job["job_id"], job["report"]

    def review(self, job_id: str, verdict: str) -> None:
        body = {"verdict": verdict, "reason": "checked against the source"}
        assert (
            self.client.post(f"/v1/jobs/{job_id}/review", json=body, headers=self.reviewer).status_code == 201
        )


@pytest.fixture(scope="module")
def service(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    weights = mesonet_weights_dir(shared_data, tmp_path_factory.getbasetemp())
    settings = make_settings(tmp_path_factory.mktemp("known-data"), weights)
    settings = settings.model_copy(update={"database_url": None})
    store = open_store(settings)
    submitter, reviewer = create_key(store, "newsroom"), create_key(store, "desk", "reviewer")
    analyzer = InProcessAnalyzer(settings, known=StoreKnownMedia(store))
    with TestClient(create_app(settings, analyzer, store)) as client:
        yield Service(client, {"X-API-Key": submitter.token}, {"X-API-Key": reviewer.token})
    store.close()


def _signal(report: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in report["score"]["signals"] if s["name"] == "known_match")


def test_copies_of_a_reviewed_photo_carry_the_human_decision(service: Service) -> None:
    original = km.reviewed_photo()
    job_id, first = service.analyse(original, "original.jpg")
    assert first["perceptual_hash"]["hashes"]
    assert first["known_match"] is None
    assert _signal(first)["present"] is False
    service.review(job_id, "manipulated")
    for name, data in (("q50.jpg", km.reencoded(original, 50)), ("small.png", km.resized(original, 181))):
        _, report = service.analyse(data, name)
        match = report["known_match"]
        assert match is not None, name
        assert (match["verdict"], match["list_name"]) == ("manipulated", "reviewed")
        assert match["distance"] <= 31
        assert report["score"]["verdict"] == "manipulated"  # a human decision outweighs the detectors
        assert report["score"]["manipulated"] >= 0.5
        assert "outweighs the detectors" in _signal(report)["sentence"]
    _, unrelated = service.analyse(km.unrelated_photo(), "coffee.jpg")
    assert unrelated["known_match"] is None


def test_an_authentic_decision_lowers_the_score_by_the_stated_prior(service: Service) -> None:
    from detector.scoring.fusion.rules import load_parameters

    photo = km.encode(km.decode(km.unrelated_photo())[::-1], quality=88)  # upside-down: new content
    job_id, before = service.analyse(photo, "mug.jpg")
    service.review(job_id, "authentic")
    _, after = service.analyse(km.reencoded(photo, 60), "mug-copy.jpg")
    assert after["known_match"]["verdict"] == "authentic"
    prior = load_parameters(None).priors.known_authentic
    assert prior < 0
    assert _signal(after)["contribution"] == pytest.approx(prior)
    pixel = after["score"]["pixel_manipulated"]
    assert after["score"]["logit"] == pytest.approx(math.log(pixel / (1 - pixel)) + prior, abs=1e-3)
    assert after["score"]["manipulated"] < pixel
    assert before["known_match"] is None


def test_a_reencoded_copy_of_a_reviewed_video_carries_the_decision(service: Service, tmp_path: Path) -> None:
    clip = km.reviewed_clip(tmp_path)
    job_id, first = service.analyse(clip, "clip.mp4")
    assert len(first["perceptual_hash"]["hashes"]) == len(first["frames"])
    service.review(job_id, "ai_generated")
    _, copy = service.analyse(km.reencoded_clip(tmp_path, clip), "copy.mp4")
    match = copy["known_match"]
    assert match is not None
    assert match["verdict"] == "ai_generated"
    assert match["matched_share"] >= 0.5
    assert copy["score"]["verdict"] == "ai_generated"
