"""A stop signal drains the Ray Serve ingress before Serve shuts down (``trueframe serve`` on Ray).

Regression of a user walkthrough: after SIGTERM a request waiting on a job (``?wait=true``) was cut
without an answer within 0.4 s (``serve.shutdown`` stopped the proxy under it); its job ran after the
restart, but the client never learnt its id. ``--no-ray`` answered it with the job's 202 and
``Location`` (``tests/unit/test_shutdown_drain.py``); the Ray ingress now does the same.

A second application of the session's Serve instance, under its own route prefix and data folder,
with ``serve.job_workers = 0`` so that its one job stays queued and its waiter waits for it until
drained, deterministically; draining it leaves the shared application untouched.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.hold import small_clip
from tests.support.serve_helpers import Service
from tests.support.servicekit import wait_until

pytestmark = [pytest.mark.ray, pytest.mark.slow]

PREFIX = "/drain-test"


def test_draining_answers_a_request_waiting_on_a_job_with_its_202(service: Service, tmp_path: Path) -> None:
    from ray import serve

    from serving.jobs.store import open_store
    from serving.ray.app import build_app, drain_service, load_config, running_ingress_replicas

    config = load_config()
    serve_settings = service.settings.serve.model_copy(update={"job_workers": 0, "wait_timeout_s": 120.0})
    settings = service.settings.model_copy(update={"data_dir": tmp_path / "data", "serve": serve_settings})
    handle = serve.run(build_app(settings, config), name="drain-test", route_prefix=PREFIX)
    store = open_store(settings)
    url = service.url + PREFIX
    try:
        with httpx.Client(base_url=url, timeout=60.0) as client, ThreadPoolExecutor(1) as pool:
            assert wait_until(lambda: client.get("/readyz").status_code == 200, timeout=180)
            clip = small_clip(tmp_path)
            waiting = pool.submit(client.post, "/v1/analyze?frames=2&wait=true", content=clip)
            assert wait_until(lambda: len(store.queued_ids()) == 1, timeout=30), "the job was not stored"
            queued = store.queued_ids()[0]
            time.sleep(0.5)  # the waiter is asleep on its job, which no worker will claim
            assert not waiting.done()
            stopped = time.monotonic()
            assert running_ingress_replicas("drain-test") == 1
            assert drain_service(handle, running_ingress_replicas("drain-test")) == 1
            answer = waiting.result(timeout=10)
            assert time.monotonic() - stopped < 5, "the waiting request held the shutdown"
        assert answer.status_code == 202, answer.text
        assert answer.json()["job_id"] == queued
        assert answer.headers["location"] == f"/v1/jobs/{queued}"
        job = store.get(queued)
        assert job is not None
        assert job.status == "queued", "the job stays queued for the restart"
    finally:
        store.close()
        serve.delete("drain-test")
    with service.client(service.key_a) as shared:  # its runner still runs jobs: it was not drained
        done = shared.post("/v1/analyze?frames=2&wait=true", content=small_clip(tmp_path))
        assert done.status_code == 200, done.text
