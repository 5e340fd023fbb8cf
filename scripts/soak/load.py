"""Load: client threads posting mixed media, polling their jobs and tallying what they saw."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx

from scripts.soak.media import KINDS, Media
from scripts.soak.service import ServiceProcess

FINISHED = {"succeeded", "failed", "cancelled"}


@dataclass
class Tally:
    """Everything the clients saw (thread-safe through ``lock``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    job_outcomes: Counter[str] = field(default_factory=Counter)
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    accepted: list[str] = field(default_factory=list)

    def error(self, code: str) -> None:
        with self.lock:
            self.errors[code] += 1


def error_code(response: httpx.Response) -> str:
    """The API error code of a failed response (``http_<status>`` when the body has none)."""
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return f"http_{response.status_code}"


def client_loop(url: str, key: str, media: Media, tally: Tally, stop: threading.Event, frames: int) -> None:
    rng = random.Random(threading.get_ident())
    kinds, weights = zip(*KINDS, strict=True)
    with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=300) as client:
        while not stop.is_set():
            kind = rng.choices(kinds, weights)[0]
            name, data = media.upload(kind)
            started = time.perf_counter()
            try:
                answer = client.post("/v1/analyze", params={"name": name, "frames": frames}, content=data)
            except httpx.HTTPError as exc:
                tally.error(f"connection:{type(exc).__name__}")
                continue
            with tally.lock:
                tally.requests[kind] += 1
            if answer.status_code == 202:
                job_id = answer.json()["job_id"]
                with tally.lock:
                    tally.accepted.append(job_id)
                job = poll(client, job_id)
                status = job.get("status", "lost") if job else "lost"
                code = (job.get("error") or {}).get("code") if job else None
                with tally.lock:
                    tally.job_outcomes[f"{status}:{code}" if code else status] += 1
            elif answer.status_code >= 400:
                tally.error(error_code(answer))
                if answer.status_code == 429:
                    time.sleep(float(answer.headers.get("retry-after", "1")) / 4)
                continue
            with tally.lock:
                tally.latency[kind].append(time.perf_counter() - started)


def poll(client: httpx.Client, job_id: str, timeout_s: float = 600) -> dict[str, Any]:
    """The job once finished; ``{}`` when it is gone (404), ``unfinished`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            answer = client.get(f"/v1/jobs/{job_id}")
        except httpx.HTTPError:
            time.sleep(1.0)
            continue
        if answer.status_code == 404:
            return {}
        body: dict[str, Any] = answer.json()
        if body.get("status") in FINISHED:
            return body
        time.sleep(0.5)
    return {"status": "unfinished"}


def run_load(
    service: ServiceProcess, key: str, media: Media, tally: Tally, clients: int, seconds: float, frames: int,
    on_half: Any = None,
) -> None:  # fmt: skip
    stop = threading.Event()
    threads = [
        threading.Thread(target=client_loop, args=(service.url, key, media, tally, stop, frames), daemon=True)
        for _ in range(clients)
    ]
    for thread in threads:
        thread.start()
    time.sleep(seconds / 2)
    if on_half is not None:
        on_half()
    time.sleep(seconds / 2)
    stop.set()
    for thread in threads:
        thread.join(timeout=600)
