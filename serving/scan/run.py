"""The batch scan: fingerprint, skip what is done, analyse each new content once.

It runs where ``scan.executor`` says (:func:`~serving.scan.local.choose_executor`): on threads of
this process when the machine scans alone (:mod:`serving.scan.local`, no Ray), else on Ray Data
(``map_batches`` on ``ray.data.from_items``). Two passes over the items:

1. **fingerprint**: sha256 and sniffed type of every file, read in chunks: as Ray tasks on a
   cluster of several nodes, else by a few threads of this process (while the local Ray starts,
   when it starts here), so no Ray pass runs before the analysis (a Ray Data pass costs seconds
   of worker start-up on its own). The driver then
   writes at once the rows it already knows: items already in RESULTS are skipped, unreadable
   and non-media files get their error row, and a file whose content (and model versions) was
   analysed before gets a copy of that result (``duplicate_of`` names the analysed path). These
   decisions are the pure functions of :mod:`serving.scan.plan`.
2. **analyse** (worker threads, or actor pools): load + sample -> provenance -> faces ->
   classifiers -> report assembly, each content once; rows for every path sharing it are written,
   flushed and fsynced as results stream back, so memory stays bounded and a crash loses nothing
   written. The last step PDQ-hashes the sampled frames and looks them up in the service's hash
   lists (``TRUEFRAME_DATABASE_URL``, or the SQLite store of the data folder when it exists).

The driver puts every row written in its near-duplicate cluster (``cluster_id``,
:mod:`serving.scan.clusters`).

On Ray, locally Ray starts in this process (no dashboard, auth off); with ``RAY_ADDRESS`` set the
same code runs on that cluster (files must then be reachable from every node: a shared folder or
object storage). Face extraction and classifiers are GPU actors when the cluster has GPUs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import pyarrow as pa

from detector.errors import TrueframeError
from detector.settings import Settings
from detector.stages import Options
from serving.preflight import check_models, check_provenance
from serving.ray.runtime import init_ray
from serving.scan.clusters import Clusters
from serving.scan.local import Executor, LocalAnalyser, choose_executor, local_workers
from serving.scan.output import ResultStore, Row, latest_per_path
from serving.scan.plan import Plan, plan_scan, shared_rows
from serving.scan.source import ScanItem, fingerprint


class ScanObserver(Protocol):
    """Told what the fingerprint pass decided, where the analysis runs (only when there is some),
    then every batch of rows as it is written."""

    def started(self, where: str) -> None: ...

    def planned(self, plan: Plan) -> None: ...

    def written(self, rows: list[Row]) -> None: ...


def model_versions(settings: Settings, frames: int | None) -> str:
    """What a row depends on besides the content: the service's one result key (weights, calibration,
    fusion file, thresholds, settings, frames), so a rescan after recalibrating analyses again."""
    from serving.jobs.cache import result_key

    return result_key(settings, Options(frames=frames))


FINGERPRINT_KEYS = ("id", "sha256", "size_bytes", "kind", "format", "error")
LOCAL_FINGERPRINT_THREADS = 4


def fingerprint_row(ident: int, path: str) -> dict[str, Any]:
    """sha256 / size / kind of one path, or the typed error that stopped it (one planning row)."""
    values: tuple[Any, ...]
    try:
        fp = fingerprint(path)
    except TrueframeError as exc:
        found = exc.details
        values = (
            ident,
            found.get("sha256"),
            found.get("size_bytes"),
            None,
            None,
            f"{exc.code}\t{exc.message}",
        )
    else:
        values = (ident, fp.sha256, fp.size_bytes, fp.kind, fp.format, None)
    return dict(zip(FINGERPRINT_KEYS, values, strict=True))


def _fingerprint_batch(batch: pa.Table) -> pa.Table:
    """The rows of :func:`fingerprint_row` for one batch of ``id`` / ``path``."""
    ids, paths = batch.column("id").to_pylist(), batch.column("path").to_pylist()
    rows = [fingerprint_row(i, p) for i, p in zip(ids, paths, strict=True)]
    return pa.table({key: [row[key] for row in rows] for key in FINGERPRINT_KEYS})


def local_fingerprints(items: list[ScanItem]) -> list[dict[str, Any]]:
    """Every item's planning row, read by a few threads of this process (hashing releases the GIL)."""
    with ThreadPoolExecutor(LOCAL_FINGERPRINT_THREADS, thread_name_prefix="fingerprint") as pool:
        return list(pool.map(fingerprint_row, range(len(items)), [item.path for item in items]))


def driver_alone(ray_mod: Any) -> bool:
    """Whether the cluster is this machine only: one live node, the driver's own, and no Ray Client
    (whose driver runs elsewhere). Then the driver's threads read the files as fast as Ray tasks
    could, without the seconds a Ray Data pass costs to start (a local ``ray start`` cluster)."""
    if ray_mod.util.client.ray.is_connected():
        return False
    alive = [node["NodeID"] for node in ray_mod.nodes() if node.get("Alive")]
    return alive == [ray_mod.get_runtime_context().get_node_id()]


def _resources(ray_mod: Any) -> tuple[float, float]:
    res = ray_mod.cluster_resources()
    return float(res.get("CPU", 1.0)), float(res.get("GPU", 0.0))


class Scanner:
    """Runs one scan of ``items`` into ``store``; the ``observer`` sees the plan and every row written."""

    def __init__(
        self,
        settings: Settings,
        store: ResultStore,
        frames: int | None = None,
        observer: ScanObserver | None = None,
        executor: Executor = "ray",
    ) -> None:
        self.settings = settings
        self.store = store
        self.frames = frames
        self.observer = observer
        self.executor = executor
        self.versions = model_versions(settings, frames)
        self.clusters = Clusters()

    def _write(self, rows: list[Row]) -> None:
        for row in rows:
            row["cluster_id"] = self.clusters.add(row)
        if rows:
            self.store.append(rows)
            if self.observer is not None:
                self.observer.written(rows)

    def run(self, items: list[ScanItem], prints: Iterable[dict[str, Any]] | None = None) -> Plan:
        """Fingerprint (unless ``prints`` are given), write what is known, analyse the rest; returns
        the plan it followed."""
        for row in latest_per_path(self.store.existing()):  # earlier rows seed the clusters
            self.clusters.add(row)
        plan = self.plan(items, self._fingerprints(items) if prints is None else prints)
        if self.observer is not None:
            self.observer.planned(plan)
        self._write(plan.ready)
        if plan.analyse:
            ids = list(plan.analyse.values())
            chosen = [items[i] for i in ids]
            results: Iterable[tuple[int, Row]]
            if self.executor == "local":
                workers = local_workers(self.settings, len(ids))
                self._started(f"this process, {workers} worker thread(s), no Ray")
                results = LocalAnalyser(self.settings, self.frames, workers).analyse(ids, chosen)
            else:
                results = self._analyse(chosen, plan)
            for ident, result in results:
                self._write(shared_rows(items, plan, ident, result, self.versions))
        return plan

    def _started(self, where: str) -> None:
        if self.observer is not None:
            self.observer.started(where)

    def _fingerprints(self, items: list[ScanItem]) -> Iterable[dict[str, Any]]:
        import ray.data

        quiet_ray_data()
        rows = [{"id": i, "path": item.path} for i, item in enumerate(items)]
        ds = ray.data.from_items(rows).map_batches(
            _fingerprint_batch, batch_format="pyarrow", batch_size=8, num_cpus=0.25
        )
        return ds.iter_rows()

    def plan(self, items: list[ScanItem], prints: Iterable[dict[str, Any]]) -> Plan:
        """Decide per item: skip, write now (error or known content), or analyse (see :func:`plan_scan`)."""
        return plan_scan(items, prints, self.store.existing(), self.versions)

    def layout(
        self, cpus: float, gpus: float, items: int
    ) -> list[tuple[type, dict[str, Any], int, dict[str, Any]]]:
        """The ``map_batches`` steps (class, constructor kwargs, batch size, resources) for a cluster.

        ``fused`` (the default without GPUs): one pool of :class:`FusedStep` actors, one per CPU
        (``scan.actors``) but never more than ``items``, all started at once, each running every
        stage on one item after another. ``staged`` (the default with GPUs): one pool per stage,
        faces and classifiers on GPU actors that share each GPU, decoding and provenance on CPU
        actors beside them.
        """
        import ray.data

        from serving.scan import steps as st

        def pool(size: float, least: int = 1) -> ray.data.ActorPoolStrategy:
            return ray.data.ActorPoolStrategy(min_size=least, max_size=max(least, int(size)))

        cfg = self.settings.scan
        if cfg.layout == "fused" or (cfg.layout == "auto" and gpus < 1):
            actors = max(1, min(cfg.actors or int(cpus), items))
            fused: dict[str, Any] = {"num_cpus": 1, "compute": pool(actors, actors)}
            return [(st.FusedStep, {"frames": self.frames}, 1, fused)]
        models: dict[str, Any] = {"num_cpus": 0.5, "compute": pool(cpus)}
        if gpus >= 1:  # face extraction and classifiers share each GPU
            models = {"num_gpus": 0.5, "compute": pool(gpus)}
        cheap: dict[str, Any] = {"num_cpus": 0.25, "compute": pool(cpus)}
        return [
            (st.LoadStep, {"frames": self.frames}, 1, cheap),
            (st.ProvenanceStep, {}, 4, cheap),
            (st.FaceStep, {}, 1, models),
            (st.ClassifierStep, {}, 8, models),
            (st.AssembleStep, {}, 8, cheap),
        ]

    def _analyse(self, items: list[ScanItem], plan: Plan) -> Iterable[tuple[int, Row]]:
        """Stream ``(item id, result columns)`` from the actor-pool pipeline, as they complete."""
        import pickle

        import ray
        import ray.data

        from serving.scan import steps as st

        quiet_ray_data()

        steps = self.layout(*_resources(ray), len(items))
        cluster = "the cluster at RAY_ADDRESS" if os.environ.get("RAY_ADDRESS") else "a local Ray"
        if len(steps) == 1:
            self._started(f"Ray Data on {cluster}, {steps[0][3]['compute'].max_size} fused actor(s)")
        else:
            self._started(f"Ray Data on {cluster}, one actor pool per stage")
        ids = list(plan.analyse.values())
        start = [
            {"id": i, "state": pickle.dumps(st.ItemState(path=it.path))}
            for i, it in zip(ids, items, strict=True)
        ]
        ds: ray.data.Dataset = ray.data.from_items(start)
        for step, kwargs, batch_size, resources in steps:
            ds = ds.map_batches(
                step,
                fn_constructor_kwargs={"settings": self.settings, **kwargs},
                batch_format="pyarrow",
                batch_size=batch_size,
                **resources,
            )
        for row in ds.iter_rows():
            yield int(row["id"]), pickle.loads(row["result"])  # our own AssembleStep's output


def quiet_ray_data() -> None:
    """Ray Data without progress bars or plan printing, errors only in its log: the scan's own
    observer reports progress."""
    import logging

    import ray.data

    logging.getLogger("ray.data").setLevel(logging.ERROR)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False


def scan_items(
    items: list[ScanItem],
    store: ResultStore,
    settings: Settings,
    frames: int | None = None,
    observer: ScanObserver | None = None,
) -> Plan:
    """Scan ``items`` into ``store`` in this process or on Ray (``scan.executor``, see
    :func:`~serving.scan.local.choose_executor`; Ray started here unless already running); closes
    the store."""
    from serving.known.lookup import check_hash_lists

    check_models(settings)
    check_provenance(settings)
    check_hash_lists(settings)
    executor = choose_executor(settings)
    scanner = Scanner(settings, store, frames, observer, executor)
    if not items:
        store.open()
        store.close()
        return Plan()
    if executor == "local":
        prints = local_fingerprints(items)
        store.open()
        try:
            return scanner.run(items, prints)
        finally:
            store.close()
    return _scan_on_ray(scanner, items)


def _scan_on_ray(scanner: Scanner, items: list[ScanItem]) -> Plan:
    import ray

    store = scanner.store
    # Ray starting here: read the items meanwhile; Ray already up on this machine alone: read them
    # here too; on a cluster of several nodes the fingerprint pass runs there
    here = not (os.environ.get("RAY_ADDRESS") or ray.is_initialized())
    with ThreadPoolExecutor(1, thread_name_prefix="fingerprints") as pool:
        reading = pool.submit(local_fingerprints, items) if here else None
        started = init_ray()
    store.open()
    try:
        prints = reading.result() if reading is not None else None
        if prints is None and driver_alone(ray):
            prints = local_fingerprints(items)
        return scanner.run(items, prints)
    finally:
        store.close()
        if started:
            ray.shutdown()


__all__ = ["Plan", "ScanObserver", "Scanner", "model_versions", "scan_items"]
