"""``trueframe scan SOURCE --out RESULTS``: a resumable batch scan (this process, or Ray Data).

Per-item failures never stop the scan (each gets a row with its error code); the exit code is 0
when every item has a row, 130 on Ctrl-C (rows written so far are kept; rerun to finish).

Review queue: ``--review-out FILE`` writes one representative per near-duplicate cluster of
RESULTS (this run and earlier ones; ``cluster_id``, with ``cluster_size``): the cluster's most
suspicious member, when it passes *all* given filters, most suspicious first. ``--min-score P``
keeps clusters whose representative's calibrated P(manipulated or synthetic) is at least P;
``--verdict V`` (repeatable or comma-separated) keeps those verdicts. Clusters with a member that
matches a reviewed item of the service's hash lists (``known_match_verdict``) were already judged
by people and are left out. Failed items are never in the queue; the summary lists them by error
code, and counts the known matches and clusters.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, get_args

from detector.errors import InvalidRequest
from detector.evaluation.checks import count
from detector.report.schema import Verdict
from serving.cli import model_name, with_face_model
from serving.scan.clusters import assign_clusters, representatives
from serving.scan.output import ResultStore, Row, latest_per_path, write_rows

VERDICTS = get_args(Verdict)


INTERRUPTED = "interrupted: rows written so far are kept; run the same command again to finish"


def register(sub: Any) -> None:
    """Add the ``scan`` sub-command."""
    p = sub.add_parser(
        "scan", help="batch-scan a folder, list or manifest of files (resumable; Ray Data on a cluster)"
    )
    add_arguments(p)
    p.set_defaults(func=run_scan)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "source", metavar="SOURCE", help="folder, list of paths, CSV/JSONL manifest; local or s3://"
    )
    p.add_argument(
        "--out", type=Path, required=True, metavar="RESULTS", help=".jsonl (default), .csv or .parquet"
    )
    p.add_argument("--frames", type=int, default=None, help="frames sampled per video (default 32)")
    p.add_argument("--model", type=model_name, default=None, help="face model name (see `trueframe models`)")
    p.add_argument("--limit", type=count, default=None, help="scan only the first N items of SOURCE")
    p.add_argument(
        "--review-out", type=Path, default=None, metavar="FILE",
        help="write the review queue here: one representative per near-duplicate cluster",
    )  # fmt: skip
    p.add_argument("--min-score", type=float, default=None, metavar="P", help="queue: P(manipulated) >= P")
    p.add_argument("--verdict", action="append", default=None, help="queue: these verdicts (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no live progress bar")


def _verdicts(values: list[str] | None) -> set[str] | None:
    if values is None:
        return None
    chosen = {v.strip() for value in values for v in value.split(",") if v.strip()}
    if not chosen:  # `--verdict ''` kept nothing and emptied the queue without a word
        raise InvalidRequest(f"--verdict needs at least one verdict of: {', '.join(VERDICTS)}")
    unknown = chosen - set(VERDICTS)
    if unknown:
        raise InvalidRequest(f"unknown verdict(s) {sorted(unknown)}; known: {', '.join(VERDICTS)}")
    return chosen


def _check_queue_file(queue: Path, store: ResultStore) -> None:
    """Refuse a review-queue file the queue cannot be written to, before any analysis (it was found
    after the scan), and one that is RESULTS itself or its journal (writing the queue there
    replaced the results: their rows were analysed again by the next run)."""
    from detector.evaluation.checks import writable_dir
    from serving.scan.output import output_format

    output_format(queue, "--review-out")
    if queue.is_dir():
        raise InvalidRequest(f"--review-out {queue} is a folder: give a file name")
    if queue.resolve() in {store.out.resolve(), store.journal_path.resolve()}:
        message = "--review-out must differ from --out and its journal: it would replace the results"
        raise InvalidRequest(message)
    writable_dir(queue.resolve().parent, "--review-out's folder")


def _check(args: argparse.Namespace) -> set[str] | None:
    from detector.settings import check_frames

    check_frames(args.frames, "--frames")
    if args.min_score is not None and not 0.0 <= args.min_score <= 1.0:
        raise InvalidRequest("--min-score is a probability between 0 and 1")
    verdicts = _verdicts(args.verdict)
    filtered = args.min_score is not None or verdicts is not None
    if filtered and args.review_out is None:
        raise InvalidRequest("--min-score / --verdict filter the review queue: give --review-out FILE too")
    return verdicts


class Progress:
    """Live tqdm bar (items done, items/s, ETA, failures) and the counts for the closing summary."""

    def __init__(self, total: int, enabled: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="item", disable=not enabled, dynamic_ncols=True, file=sys.stderr)
        self.verdicts: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.known: Counter[str] = Counter()
        self.clusters: set[str] = set()
        self.all_clusters: int | None = None  # over every row of RESULTS, set when the scan ends
        self.skipped = 0
        self.written = 0
        self.where = ""
        self.start = time.perf_counter()

    def planned(self, plan: Any) -> None:
        self.skipped = plan.skipped
        self.bar.update(plan.skipped)

    def written_rows(self, rows: list[Row]) -> None:
        for row in rows:
            if row.get("error_code"):
                self.failures[str(row["error_code"])] += 1
            else:
                self.verdicts[str(row.get("verdict"))] += 1
            if row.get("known_match_verdict"):
                self.known[str(row["known_match_verdict"])] += 1
            if row.get("cluster_id"):
                self.clusters.add(str(row["cluster_id"]))
        self.written += len(rows)
        self.bar.update(len(rows))
        self.bar.set_postfix(failures=sum(self.failures.values()), refresh=False)

    def close(self) -> None:
        self.bar.close()

    def summary(self) -> str:
        """A small table: rows per verdict, failures per code, throughput."""
        seconds = time.perf_counter() - self.start
        lines = [f"{'result':<36}{'items':>8}", "-" * 44]
        lines += [f"{v:<36}{n:>8}" for v, n in sorted(self.verdicts.items())]
        lines += [f"{'failed: ' + c:<36}{n:>8}" for c, n in sorted(self.failures.items())]
        lines += [f"{'known match: ' + v:<36}{n:>8}" for v, n in sorted(self.known.items())]
        if self.all_clusters is None:
            lines += [f"{'near-duplicate clusters (written now)':<36}{len(self.clusters):>8}"]
        else:
            lines += [f"{'near-duplicate clusters (all)':<36}{self.all_clusters:>8}"]
        lines += [f"{'already in results':<36}{self.skipped:>8}", "-" * 44]
        if self.where:
            lines.append(f"analysed on: {self.where}")
        rate = self.written / seconds if seconds > 0 else 0.0
        lines.append(f"{self.written} row(s) written in {seconds:.1f} s ({rate:.2f} items/s)")
        return "\n".join(lines)


class CtrlC:
    """Ctrl-C during a scan, never lost. SIGINT raises KeyboardInterrupt wherever the main thread is,
    and CPython drops one raised inside a callback whose exceptions it ignores (an import lock's
    weakref callback, printed as "Exception ignored in ..."): the scan then ran on to its end and
    exited 0 (2026-12-05, a full test run). The handler raises it as usual and remembers the press;
    :meth:`check` raises it again once the source is listed, at the next row written and when the
    scan returns."""

    def __init__(self) -> None:
        self.pressed = False

    def handler(self, signum: int, frame: FrameType | None) -> None:
        self.pressed = True
        raise KeyboardInterrupt

    def check(self) -> None:
        """Raise KeyboardInterrupt if Ctrl-C was pressed (its first raise may have been dropped)."""
        if self.pressed:
            raise KeyboardInterrupt

    @contextmanager
    def installed(self) -> Iterator[CtrlC]:
        """This handler for SIGINT while the block runs (in the main thread only: elsewhere Python
        delivers no signal), the previous one restored after."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.signal(signal.SIGINT, self.handler)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)


class _Observer:
    def __init__(self, progress: Progress, ctrl_c: CtrlC) -> None:
        self.progress = progress
        self.ctrl_c = ctrl_c

    def started(self, where: str) -> None:
        self.progress.where = where

    def planned(self, plan: Any) -> None:
        self.progress.planned(plan)

    def written(self, rows: list[Row]) -> None:
        self.progress.written_rows(rows)
        self.ctrl_c.check()  # after the rows are counted: they are in RESULTS


def review_queue(rows: list[Row], min_score: float | None, verdicts: set[str] | None) -> list[Row]:
    """One representative per cluster passing every given filter, highest P(manipulated) first.

    Failed items never pass; clusters already judged (a member with a known match) are left out.
    """
    queue = []
    for row in representatives(latest_per_path(rows)):
        if row.get("cluster_known_verdict"):
            continue
        p = row.get("manipulated")
        if min_score is not None and (p is None or float(p) < min_score):
            continue
        if verdicts is not None and row.get("verdict") not in verdicts:
            continue
        queue.append(row)
    return sorted(
        queue, key=lambda r: -(float(r["manipulated"]) if r.get("manipulated") is not None else -1.0)
    )


def run_scan(args: argparse.Namespace) -> int:
    """List SOURCE, scan what is not yet in RESULTS, print the summary, write the review queue."""
    from detector.settings import get_settings
    from serving.scan.run import scan_items
    from serving.scan.source import is_uri, list_source

    verdicts = _check(args)
    settings = with_face_model(get_settings(), args.model)
    store = ResultStore(args.out)
    if args.review_out is not None:
        _check_queue_file(args.review_out, store)
    own = {p.resolve() for p in (store.out, store.journal_path)}
    ctrl_c = CtrlC()
    with ctrl_c.installed():
        items = [
            it
            for it in list_source(args.source, args.limit)
            if is_uri(it.path) or Path(it.path).resolve() not in own
        ]
        ctrl_c.check()  # pressed while listing, and dropped: nothing is analysed
        progress = Progress(len(items), enabled=not args.no_progress)
        try:
            scan_items(items, store, settings, frames=args.frames, observer=_Observer(progress, ctrl_c))
            ctrl_c.check()  # pressed during the last item, and dropped: interrupted all the same
        except KeyboardInterrupt:  # from `trueframe scan` too, not only `python -m serving.cli.scan`
            progress.close()
            print(progress.summary())
            print(INTERRUPTED, file=sys.stderr)
            return 130
        finally:
            progress.close()  # setup errors (missing weights, bad fusion file) print no summary
    existing = store.existing()  # every row of RESULTS, earlier runs' too, read once
    final = assign_clusters(latest_per_path(existing))  # merges included
    progress.all_clusters = len({row["cluster_id"] for row in final if row.get("cluster_id")})
    print(progress.summary())
    if args.review_out is not None:
        queue = review_queue(existing, args.min_score, verdicts)
        write_rows(args.review_out, queue)
        print(f"review queue: {len(queue)} cluster representative(s) in {args.review_out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``scan`` alone (``python -m serving.cli.scan SOURCE --out RESULTS``), errors as in the CLI."""
    from detector.errors import TrueframeError

    parser = argparse.ArgumentParser(prog="trueframe scan", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_scan(args)
    except TrueframeError as exc:
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
