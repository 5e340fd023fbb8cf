"""What a soak run found, printed against its targets (and written as JSON on request)."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from scripts.soak.load import FINISHED, Tally

DELIBERATE = {"unsupported_media_type", "corrupt_media", "empty_media", "queue_full"}
LOST_CODES = {"media_lost", "internal_error"}
RSS_TOLERANCE = 0.10


@dataclass
class Findings:
    """Everything one run measured, filled in phase by phase."""

    tally: Tally = field(default_factory=Tally)
    startup: float = float("nan")
    elapsed: float = 0.0
    rss_start: dict[str, int] = field(default_factory=dict)
    rss_end: dict[str, int] = field(default_factory=dict)
    samples: list[dict[str, int]] = field(default_factory=list)
    killed: list[str] = field(default_factory=list)
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)
    stop_s: float = float("nan")
    restart_s: float = float("nan")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def mb(kb: int) -> str:
    return f"{kb / 1024:.0f} MB"


def lost_jobs(outcomes: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Accepted jobs that did not finish, or finished having lost their media or crashed."""
    return {
        job_id: body.get("status", "gone")
        for job_id, body in outcomes.items()
        if body.get("status") not in FINISHED or (body.get("error") or {}).get("code") in LOST_CODES
    }


def print_rss(found: Findings) -> bool:
    """The RSS table per process group; whether the total stayed within the tolerance."""
    rss_start, rss_end = found.rss_start, found.rss_end
    print("RSS per process group (start after warm-up -> end after the run):")
    for group in sorted(set(rss_start) | set(rss_end)):
        start, end = rss_start.get(group, 0), rss_end.get(group, 0)
        change = (end - start) / start if start else float("inf")
        peak = max((s.get(group, 0) for s in found.samples), default=end)
        flag = "" if abs(change) <= RSS_TOLERANCE else "  (outside 10%)"
        print(f"  {group:22s} {mb(start):>8s} -> {mb(end):>8s} ({change:+.1%}), peak {mb(peak)}{flag}")
    start_total, end_total = sum(rss_start.values()), sum(rss_end.values())
    total_change = (end_total - start_total) / start_total
    print(f"  {'total':22s} {mb(start_total):>8s} -> {mb(end_total):>8s} ({total_change:+.1%})")
    return abs(total_change) <= RSS_TOLERANCE


def report(args: argparse.Namespace, found: Findings) -> int:
    """Print the run against its targets; 0 when every target holds, 1 otherwise."""
    tally, elapsed, outcomes = found.tally, found.elapsed, found.outcomes
    lost = lost_jobs(outcomes)
    job_codes = Counter(
        (body.get("error") or {}).get("code") or body.get("status", "gone") for body in outcomes.values()
    )
    unexpected = {code: n for code, n in tally.errors.items() if code not in DELIBERATE}
    total = sum(tally.requests.values())
    print()
    print(f"== soak: {args.clients} clients, {elapsed:.0f} s measured after {args.warmup:.0f} s warm-up ==")
    print(f"requests: {total} ({', '.join(f'{k} {n}' for k, n in sorted(tally.requests.items()))}); "
          f"{total / elapsed:.2f}/s")  # fmt: skip
    print(f"errors by code: {dict(tally.errors) or 'none'} (unexpected: {unexpected or 'none'})")
    print(f"jobs: {len(outcomes)} accepted, outcomes {dict(job_codes)}, lost {len(lost)} {lost or ''}")
    for kind, values in sorted(tally.latency.items()):
        print(f"latency {kind:6s} n={len(values):4d} p50 {percentile(values, 0.5):6.2f} s "
              f"p95 {percentile(values, 0.95):6.2f} s")  # fmt: skip
    print(
        f"fault: {', '.join(found.killed) or 'none'}; SIGINT stop {found.stop_s:.1f} s; "
        f"restart {found.restart_s:.1f} s"
    )
    rss_ok = print_rss(found)
    targets = {"no unexpected errors": not unexpected, "no lost jobs": not lost, "RSS within 10%": rss_ok}
    print("targets: " + ", ".join(f"{name}: {'met' if ok else 'MISSED'}" for name, ok in targets.items()))
    if args.json_out is not None:
        args.json_out.write_text(
            json.dumps(
                {
                    "clients": args.clients, "seconds": elapsed, "requests": dict(tally.requests),
                    "errors": dict(tally.errors), "jobs": dict(job_codes), "lost": lost,
                    "latency": {k: {"p50": percentile(v, 0.5), "p95": percentile(v, 0.95), "n": len(v)}
                                for k, v in tally.latency.items()},
                    "rss_start_kb": found.rss_start, "rss_end_kb": found.rss_end, "fault": found.killed,
                    "startup_s": found.startup, "restart_s": found.restart_s, "targets": targets,
                },
                indent=2,
            )
        )  # fmt: skip
    return 0 if all(targets.values()) else 1
