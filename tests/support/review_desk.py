"""The review desk the review tests share: a service over the fake analyzer with real PDQ hashing,
a submitter (webhook URL set), a second submitter, two reviewers and an admin."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from serving.auth.keys import NewKey, create_key
from tests.support.fake_analyzer import FakeAnalyzer
from tests.support.servicekit import (
    FakeService,
    WebhookSink,
    fake_service,
    make_settings,
    open_store,
    poll_job,
    webhook_sink,
)


@dataclass
class Desk:
    """A service with a submitter (webhook URL set), a second submitter, two reviewers and an admin."""

    service: FakeService
    submitter: NewKey
    other: NewKey
    reviewer: NewKey
    admin: NewKey
    colleague: NewKey
    sink: WebhookSink

    def call(self, key: NewKey, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.service.client.request(method, url, headers={"X-API-Key": key.token}, **kwargs)

    def upload(self, key: NewKey, data: bytes, name: str = "upload") -> str:
        """Analyse ``data`` (image: answered at once, video: polled) and return its job id."""
        answer = self.call(key, "POST", f"/v1/analyze?name={name}", content=data)
        assert answer.status_code in (200, 202), answer.text
        if answer.status_code == 200:
            return answer.headers["x-trueframe-job"]
        job_id: str = answer.json()["job_id"]
        done = poll_job(self.service.client, job_id, timeout=60, headers={"X-API-Key": key.token})
        assert done["status"] == "succeeded", done
        return job_id

    def report(self, key: NewKey, job_id: str) -> dict[str, Any]:
        answer = self.call(key, "GET", f"/v1/jobs/{job_id}")
        assert answer.status_code == 200, answer.text
        report: dict[str, Any] = answer.json()["report"]
        return report

    def review(self, job_id: str, verdict: str, reason: str = "checked the source") -> httpx.Response:
        return self.call(
            self.reviewer, "POST", f"/v1/jobs/{job_id}/review", json={"verdict": verdict, "reason": reason}
        )


@contextmanager
def open_desk(tmp_path: Path) -> Iterator[Desk]:
    """A running desk whose store and data live under ``tmp_path``."""
    with webhook_sink() as sink:
        settings = make_settings(tmp_path / "data", tmp_path / "weights", callback_allow_private=True)
        store = open_store(settings)
        keys = (
            create_key(store, "newsroom", "submitter", webhook_url=sink.url),
            create_key(store, "other", "submitter"),
            create_key(store, "desk", "reviewer"),
            create_key(store, "ops", "admin"),
            create_key(store, "desk-2", "reviewer"),
        )
        store.close()
        with fake_service(settings, FakeAnalyzer(settings, manipulated=0.2), known=True) as service:
            yield Desk(service, *keys, sink)
