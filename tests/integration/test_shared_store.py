"""Several service processes on one PostgreSQL database (the store a cluster shares).

A second, real ``trueframe serve --no-ray`` process, with its own data folder, answers for jobs,
keys and decisions that the first service (in this process) wrote, and the first sees the review
recorded through the second.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from serving.auth.keys import create_key
from tests.support import known_media as km
from tests.support.fake_analyzer import FakeAnalyzer
from tests.support.postgres import PostgresServer
from tests.support.servicekit import fake_service, free_port, make_settings, open_store

pytestmark = pytest.mark.slow


@pytest.fixture
def database(postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> str:
    url = postgres_server.create_database()
    monkeypatch.setenv("TRUEFRAME_DATABASE_URL", url)
    return url


@pytest.fixture
def second_service(database: str, tmp_path: Path) -> Iterator[str]:
    """``trueframe serve --no-ray`` in another process, on the same database, another data folder."""
    port = free_port()
    env = {**os.environ, "TRUEFRAME_DATABASE_URL": database, "TRUEFRAME_SERVE__PURGE_INTERVAL_S": "3600"}
    argv = [sys.executable, "-m", "serving.cli", "serve", "--no-ray", "--port", str(port)]
    argv += ["--data-dir", str(tmp_path / "second")]
    log = (tmp_path / "second.log").open("w")
    process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    "the second service did not start:\n" + (tmp_path / "second.log").read_text()
                )
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_a_second_service_process_sees_the_jobs_and_decisions_of_the_first(
    database: str, second_service: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "first", tmp_path / "weights")
    assert settings.database_url == database
    store = open_store(settings)
    submitter, reviewer = create_key(store, "newsroom"), create_key(store, "desk", "reviewer")
    store.close()
    with fake_service(settings, FakeAnalyzer(settings), known=True) as first:
        answer = first.client.post(
            "/v1/analyze?name=a.jpg", content=km.reviewed_photo(), headers={"X-API-Key": submitter.token}
        )
        assert answer.status_code == 200, answer.text
        job_id = answer.headers["x-trueframe-job"]
        with httpx.Client(base_url=second_service, timeout=30) as second:
            seen = second.get(f"/v1/jobs/{job_id}", headers={"X-API-Key": submitter.token})
            assert seen.status_code == 200, seen.text
            assert seen.json()["status"] == "succeeded"
            assert seen.json()["report"]["media"]["sha256"] == answer.json()["media"]["sha256"]
            assert second.get(f"/v1/jobs/{job_id}").status_code == 401  # the first's keys are the second's
            review = {"verdict": "manipulated", "reason": "recorded on the second replica"}
            decided = second.post(
                f"/v1/jobs/{job_id}/review", json=review, headers={"X-API-Key": reviewer.token}
            )
            assert decided.status_code == 201, decided.text
        mine = first.client.get(f"/v1/jobs/{job_id}", headers={"X-API-Key": submitter.token}).json()
        assert mine["report"]["review"]["reason"] == "recorded on the second replica"
        copy = first.client.post(
            "/v1/analyze", content=km.reencoded(km.reviewed_photo()), headers={"X-API-Key": submitter.token}
        )
        assert copy.json()["known_match"]["verdict"] == "manipulated", (
            "the first's index follows the shared list"
        )
