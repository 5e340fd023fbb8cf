"""Soak and fault run of ``trueframe serve`` (not part of ``make test``).

``python -m scripts.soak [--clients 4] [--seconds 60] [--no-ray] [--keep]``

1. Starts ``trueframe serve`` (Ray Serve by default, ``--no-ray`` for one process) on a free port
   with a temporary data folder and one admin API key (``trueframe keys create``).
2. Warms up, then runs N clients for T seconds of mixed media generated here: JPEG and PNG photos
   (each upload made unique, so the result cache does not answer them), short H.264 clips (jobs,
   polled to the end) and deliberately bad uploads (text: 415, a cut JPEG: 422).
3. Samples the resident memory of every process of the service (its own process and every
   descendant: Ray's GCS and raylet, the Serve controller, proxy and each replica) from ``/proc``,
   grouped by role.
4. Half way, SIGKILLs one Serve replica (``--kill faces``: the process titled
   ``ray::ServeReplica:trueframe:faces``; only processes of this service are ever touched).
5. After the run, submits a burst of video jobs, stops the service with SIGINT while they are
   queued, starts it again on the same data folder, and checks that every job accepted during the
   whole run finishes.

Prints requests, errors by code (deliberate 4xx and 429 apart), p50/p95 latency per kind, RSS at
the start (after warm-up) and at the end per process group, and lost jobs, against the targets:
no error but deliberate 4xx/429, no lost job, RSS at the end within 10% of the start. Exit code 0
when every target holds, 1 otherwise. Does not import ``tests/``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

from scripts.soak.run import soak
from scripts.soak.service import ServiceProcess


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60.0, help="measured load (after warm-up)")
    parser.add_argument("--warmup", type=float, default=20.0, help="load before the start RSS sample")
    parser.add_argument("--frames", type=int, default=4, help="frames sampled per clip")
    parser.add_argument("--no-ray", action="store_true", help="serve in one process (no replica to kill)")
    parser.add_argument("--kill", default="faces", help="replica killed half way ('' for none)")
    parser.add_argument("--restart-jobs", type=int, default=8, help="video jobs queued at the stop")
    parser.add_argument("--keep", action="store_true", help="keep the temp data folder and service log")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="trueframe-soak-"))
    data_dir = work / "data"
    data_dir.mkdir()
    mode = "in process (--no-ray)" if args.no_ray else "Ray Serve"
    load = os.getloadavg()[0]
    print(f"machine: {platform.node()}, {os.cpu_count()} CPUs, load average {load:.1f}; mode: {mode}; {work}")
    service = ServiceProcess(data_dir, args.no_ray, work / "service.log")
    try:
        return soak(args, service)
    finally:
        if service.running:
            service.stop()
        if args.keep:
            print(f"kept {work}")
        else:
            import shutil

            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
