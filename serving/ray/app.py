"""The Ray Serve application: stage deployments composed under one FastAPI ingress.

``build_app(settings, config)`` returns ``Ingress.bind(media, provenance, faces, face_model, ...)``;
nothing happens at import. Per-deployment options (replicas, ``ray_actor_options``, ``user_config``
with batch sizes and batch waits; thresholds come from the settings only) come from
``serving/serve_config.yaml``, which is
also a valid ``serve run`` config (its ``import_path`` is :func:`app_builder`). When the Ray cluster
has GPUs, face detection and the classifiers get a fraction of one each (``GPU_SHARES``) unless the
config names ``num_gpus`` itself.

:func:`serving.ray.runtime.init_ray`, :func:`run_service` and :func:`stop_service` are what
``trueframe serve`` and the tests use: a local Ray (no dashboard) unless ``RAY_ADDRESS`` names a
cluster to join.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import yaml
from ray import serve

from detector.errors import InvalidRequest
from detector.settings import Settings, load_settings
from serving.ray.analyzer import RayAnalyzer, StageHandles
from serving.ray.deployments import (
    FaceDeployment,
    FaceModelDeployment,
    MediaDeployment,
    ProvenanceDeployment,
    SyntheticModelDeployment,
)

if TYPE_CHECKING:
    from fastapi import FastAPI
    from ray.serve import Application, Deployment
    from ray.serve.handle import DeploymentHandle

APP_NAME = "trueframe"
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "serve_config.yaml"
GPU_SHARES = {"faces": 0.3, "face_model": 0.3, "synthetic_model": 0.3}
DEPLOYMENT_OPTION_KEYS = frozenset(
    {
        "num_replicas",
        "max_ongoing_requests",
        "ray_actor_options",
        "user_config",
        "autoscaling_config",
        "graceful_shutdown_timeout_s",
        "graceful_shutdown_wait_loop_s",
        "health_check_period_s",
        "health_check_timeout_s",
    }
)
DRAIN_DEADLINE_S = 5.0
"""How long ``trueframe serve`` tries to drain the ingress replicas after a stop signal."""
DRAIN_FLUSH_S = 1.0
"""How long the drained replicas' answers get to leave through Serve's proxy before it stops."""
log = logging.getLogger(__name__)
PROXY_OPTIONS = frozenset({"keep_alive_timeout_s", "request_timeout_s"})
"""Limits of Serve's HTTP proxy taken from the config's ``http_options`` (the proxy has no head timeout)."""
DEPLOYMENTS = ("ingress", "media", "provenance", "faces", "face_model", "synthetic_model")


@serve.deployment(
    name="ingress", num_replicas=1, max_ongoing_requests=64, ray_actor_options={"num_cpus": 0.2}
)
@serve.ingress()
class Ingress:
    """The HTTP API (``serving.api.create_app``) over a :class:`RayAnalyzer` holding the stage handles.

    One replica over the embedded SQLite store in the data folder; with ``TRUEFRAME_DATABASE_URL``
    (PostgreSQL) several replicas, or several services, share jobs, keys and decisions (uploads
    then need the data folder on shared storage). Analyses consult the store's hash lists.
    """

    def __init__(
        self,
        settings: Settings,
        media: DeploymentHandle,
        provenance: DeploymentHandle,
        faces: DeploymentHandle,
        face_model: DeploymentHandle,
        synthetic_model: DeploymentHandle | None = None,
    ) -> None:
        from serving.jobs.store import open_store
        from serving.known.lookup import StoreKnownMedia
        from serving.logsetup import configure_logging

        configure_logging(settings.serve.log_level)  # in this replica's process: Ray keeps its stderr
        self.settings = settings
        self.store = open_store(settings)
        self.analyzer = RayAnalyzer(
            settings,
            StageHandles(media, provenance, faces, face_model, synthetic_model),
            known=StoreKnownMedia(self.store),
        )

    def __serve_build_asgi_app__(self) -> FastAPI:
        """Called by Serve in the replica after ``__init__``: the app with its store and analyzer."""
        from serving.http.app import create_app

        self.http_app = create_app(self.settings, self.analyzer, self.store)
        return self.http_app

    async def drain(self) -> str:
        """The service is stopping: this replica claims no more jobs (they stay queued for the
        restart) and answers its ``?wait=true`` requests now with their job's 202 and ``Location``,
        as ``serve --no-ray`` does; returns the replica's id. On the replica's event loop, like the
        requests it wakes."""
        self.http_app.state.trueframe.runner.drain()
        return str(serve.get_replica_context().replica_id.unique_id)


@dataclass(frozen=True)
class ServeConfig:
    """Per-deployment options read from the serve config YAML, and its HTTP options."""

    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)
    http: dict[str, Any] = field(default_factory=dict)


def load_config(path: Path | None = None) -> ServeConfig:
    """The first application of a Serve config YAML (default: the one shipped with the package)."""
    target = path or DEFAULT_CONFIG
    try:
        doc = yaml.safe_load(target.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidRequest(f"cannot read serve config {target}: {exc}") from exc
    apps = doc.get("applications") if isinstance(doc, dict) else None
    if not isinstance(apps, list) or not apps or not isinstance(apps[0], dict):
        raise InvalidRequest(f"serve config {target}: expected an 'applications' list")
    deployments: dict[str, dict[str, Any]] = {}
    for entry in apps[0].get("deployments") or []:
        name = entry.get("name") if isinstance(entry, dict) else None
        if name not in DEPLOYMENTS:
            raise InvalidRequest(
                f"serve config {target}: unknown deployment {name!r}; known: {', '.join(DEPLOYMENTS)}"
            )
        unknown = set(entry) - DEPLOYMENT_OPTION_KEYS - {"name"}
        if unknown:
            raise InvalidRequest(f"serve config {target}: deployment {name}: unknown keys {sorted(unknown)}")
        deployments[name] = {k: v for k, v in entry.items() if k != "name"}
    http = doc.get("http_options") or {}
    return ServeConfig(deployments=deployments, http=dict(http))


def _cluster_gpus() -> float:
    """GPUs of the Ray cluster this driver is connected to (0 when Ray is not initialised)."""
    import ray

    if not ray.is_initialized():
        return 0.0
    return float(ray.cluster_resources().get("GPU", 0.0))


def _deployment(decorated: object, name: str, config: ServeConfig, gpus: float) -> Deployment:
    """The deployment with the config's options for ``name`` (and a GPU share when there are GPUs).

    ``ray_actor_options`` are merged over the decorator's (Ray would otherwise replace them and
    fall back to one whole CPU per replica).
    """
    deployment = cast("Deployment", decorated)
    opts = dict(config.deployments.get(name, {}))
    actor = dict(deployment.ray_actor_options or {}) | dict(opts.get("ray_actor_options") or {})
    if gpus > 0 and name in GPU_SHARES:
        actor.setdefault("num_gpus", GPU_SHARES[name])
    opts["ray_actor_options"] = actor
    return deployment.options(**opts)


def build_app(settings: Settings, config: ServeConfig | None = None) -> Application:
    """``Ingress.bind(...)`` over every stage deployment, with the config's options applied."""
    cfg = config or load_config()
    gpus = 0.0 if settings.runtime.device == "cpu" else _cluster_gpus()
    media = _deployment(MediaDeployment, "media", cfg, gpus).bind(settings)
    provenance = _deployment(ProvenanceDeployment, "provenance", cfg, gpus).bind(settings)
    faces = _deployment(FaceDeployment, "faces", cfg, gpus).bind(settings)
    models = settings.models
    face_model = _deployment(FaceModelDeployment, "face_model", cfg, gpus).bind(settings, models.face_model)
    synthetic = None
    if models.synthetic_model:
        synthetic = _deployment(SyntheticModelDeployment, "synthetic_model", cfg, gpus).bind(
            settings, models.synthetic_model
        )
    ingress = _deployment(Ingress, "ingress", cfg, gpus)
    return ingress.bind(settings, media, provenance, faces, face_model, synthetic)


def app_builder(args: dict[str, Any]) -> Application:
    """``import_path`` target for ``serve run serving/serve_config.yaml``: settings from the environment."""
    config_path = args.get("config")
    return build_app(load_settings(), load_config(Path(config_path)) if config_path else None)


def run_service(settings: Settings, config: ServeConfig | None, host: str, port: int) -> DeploymentHandle:
    """Start Serve's HTTP proxy on ``host:port`` and deploy the app; returns once it is running."""
    proxy = {k: v for k, v in config.http.items() if k in PROXY_OPTIONS} if config is not None else {}
    serve.start(http_options={**proxy, "host": host, "port": port})
    return serve.run(build_app(settings, config), name=APP_NAME, route_prefix="/")


def running_ingress_replicas(app: str = APP_NAME) -> int:
    """How many ingress replicas of application ``app`` are running now (Serve's status), so that a
    drain waits for those and not for a configured or autoscaling count."""
    overview = serve.status().applications.get(app)
    ingress = overview.deployments.get("ingress") if overview is not None else None
    # keys are Serve's ReplicaState, a str enum from a private module: compared by their values
    states = {} if ingress is None else ingress.replica_states
    return sum(int(count) for state, count in states.items() if state == "RUNNING")


def drain_service(handle: DeploymentHandle, replicas: int, deadline_s: float = DRAIN_DEADLINE_S) -> int:
    """Drain every ingress replica before Serve shuts down (:meth:`Ingress.drain`), so that a request
    waiting on a job gets its 202 and ``Location`` instead of a cut connection; then give those answers
    :data:`DRAIN_FLUSH_S` to leave through the proxy. A handle call reaches one replica chosen by
    Serve, so calls repeat until ``replicas`` distinct ones answered or ``deadline_s`` (for all of
    them) passed; returns how many did. Those not reached (a replica already at
    ``max_ongoing_requests`` queues the call behind its requests) are cut as before; their jobs still
    run after the restart."""
    import ray
    from ray.serve.exceptions import RayServeException

    seen: set[str] = set()
    end = time.monotonic() + deadline_s
    while len(seen) < replicas and (left := end - time.monotonic()) > 0:
        try:
            seen.add(handle.drain.remote().result(timeout_s=left))
        except (TimeoutError, ray.exceptions.RayError, RayServeException) as exc:
            log.warning("draining the ingress before shutdown: %s", exc)
            break
    if seen:
        time.sleep(DRAIN_FLUSH_S)
    return len(seen)


def stop_service() -> None:
    """Shut Serve and Ray down (deployments use short graceful timeouts, see the config)."""
    import ray

    if ray.is_initialized():
        serve.shutdown()
        ray.shutdown()
