"""The phases of a soak run: warm-up, measured load with a fault, and a stop/restart with queued jobs."""

from __future__ import annotations

import argparse
import threading
import time
from collections import Counter

import httpx

from scripts.soak.load import FINISHED, Tally, error_code, poll, run_load
from scripts.soak.media import Media
from scripts.soak.report import Findings, report
from scripts.soak.service import ServiceProcess, create_key, kill_replica, rss_by_group


def soak(args: argparse.Namespace, service: ServiceProcess) -> int:
    """The run itself (see :mod:`scripts.soak.__main__`); the caller stops the service whatever happens."""
    media = Media.build()
    key = create_key(service.data_dir)
    found = Findings(startup=service.start())
    assert service.proc is not None
    root = service.proc.pid
    print(f"service ready in {found.startup:.1f} s at {service.url} (pid {root})", flush=True)

    warm = Tally()
    run_load(service, key, media, warm, args.clients, args.warmup, args.frames)
    found.rss_start = rss_by_group(root)
    print(f"warm-up: {sum(warm.requests.values())} requests; RSS sampled", flush=True)

    measure(args, service, key, media, found, warm.accepted)
    stop_and_restart(args, service, key, media, found)
    return report(args, found)


def measure(
    args: argparse.Namespace,
    service: ServiceProcess,
    key: str,
    media: Media,
    found: Findings,
    earlier: list[str],
) -> None:
    """The measured load (RSS sampled every 2 s, a replica killed half way); then polls every job."""
    assert service.proc is not None
    root = service.proc.pid
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.wait(2.0):
            found.samples.append(rss_by_group(root))

    def kill() -> None:
        if args.no_ray or not args.kill:
            return
        pid = kill_replica(root, args.kill)
        found.killed.append(f"replica:{args.kill} pid {pid}" if pid else f"no replica:{args.kill} found")
        print(f"half way: SIGKILL {found.killed[-1]}", flush=True)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    run_load(service, key, media, found.tally, args.clients, args.seconds, args.frames, on_half=kill)
    found.elapsed = time.perf_counter() - started
    with httpx.Client(base_url=service.url, headers={"X-API-Key": key}, timeout=60) as client:
        found.outcomes = {job_id: poll(client, job_id) for job_id in earlier + found.tally.accepted}
    time.sleep(5)  # let replicas settle after the last request
    found.rss_end = rss_by_group(root)
    sampling.set()


def stop_and_restart(
    args: argparse.Namespace, service: ServiceProcess, key: str, media: Media, found: Findings
) -> None:
    """Stop with queued video jobs, restart on the same data, and check every accepted job finishes."""
    outcomes = found.outcomes
    queued: list[str] = []
    with httpx.Client(base_url=service.url, headers={"X-API-Key": key}, timeout=60) as client:
        for _ in range(args.restart_jobs):
            name, data = media.upload("video")
            answer = client.post("/v1/analyze", params={"name": name, "frames": args.frames}, content=data)
            if answer.status_code == 202:
                queued.append(answer.json()["job_id"])
            else:
                found.tally.error(error_code(answer))
        states = Counter(client.get(f"/v1/jobs/{j}").json().get("status") for j in queued)
    found.stop_s = service.stop()
    print(
        f"stopped with SIGINT in {found.stop_s:.1f} s holding {len(queued)} new jobs {dict(states)}",
        flush=True,
    )
    try:
        found.restart_s = service.start()
        print(f"restarted in {found.restart_s:.1f} s", flush=True)
    except (RuntimeError, TimeoutError) as exc:
        found.restart_s = float("nan")
        print(f"restart FAILED: {exc}", flush=True)
        outcomes.update({job_id: {"status": "restart_failed"} for job_id in queued})
    if service.running:
        with httpx.Client(base_url=service.url, headers={"X-API-Key": key}, timeout=60) as client:
            for job_id in queued:
                outcomes[job_id] = poll(client, job_id)
            for job_id, body in outcomes.items():  # earlier jobs must still be there after the restart
                if body.get("status") in FINISHED and client.get(f"/v1/jobs/{job_id}").status_code != 200:
                    outcomes[job_id] = {}
        service.stop()
