"""The real Ray Serve app, started once per test session and shared by the tests in ``tests/e2e``.

The session fixture ``service`` of ``tests/e2e/conftest.py`` calls :func:`session_service`: it
starts local Ray (``RAY_TEST_CPUS`` logical CPUs, no dashboard) and Serve on a free port, and
shuts both down at the end of the session. Two API keys exist before the first request, so the
service runs with keys required (the browser test enters key A into the form once).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from detector.settings import Settings
from tests.support.servicekit import SMALL_TEST_FACE_PX

TEST_FUSION = """\
schema_version = 1
fitted_on = "tests: not fitted (equal weight on the calibrated face logit, round band thresholds)"
face_model = "meso4.df"

[submodels.face]
intercept = 0.0
face = 1.0

[thresholds]
authentic = { manipulated = 0.1, target_rate = 0.05, measured_rate = 0.05 }
likely_authentic = { manipulated = 0.3, target_rate = 0.1, measured_rate = 0.1 }
likely_manipulated = { manipulated = 0.7, target_rate = 0.1, measured_rate = 0.1 }
manipulated = { manipulated = 0.9, target_rate = 0.05, measured_rate = 0.05 }
"""


@dataclass(frozen=True)
class Service:
    """A running Serve app: its base URL, two API keys and the settings it was built with."""

    url: str
    key_a: str
    key_b: str
    settings: Settings
    startup_s: float

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120.0)


_running: Service | None = None


# Logical CPUs for the one test Ray: the Serve app reserves 1.5 and a batch scan's actor pools
# need more; whichever test module starts Ray first, both must fit or the later one waits forever.
RAY_TEST_CPUS = 6


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_settings(root: Path, weights_dir: Path) -> Settings:
    """Settings for the tests: MesoNet (imported) on faces, the shipped synthetic-image model on
    frames, a data folder under ``root``, few frames."""
    from detector.scoring.fusion.rules import default_fusion_path

    fusion_file = None
    if not default_fusion_path().is_file():  # until the calibrated fusion ships in weights/
        fusion_file = root / "fusion.toml"
        fusion_file.write_text(TEST_FUSION, encoding="utf-8")
    return Settings.model_validate(
        {
            "data_dir": root / "data",
            "models": {
                "weights_dir": weights_dir,
                "face_model": "meso4.df",
                "synthetic_model": "nprcnn.artefacts",
            },
            "fusion": {"fusion_file": fusion_file},
            "sampling": {"frames": 8},
            "faces": {"min_face_px": SMALL_TEST_FACE_PX},
            "serve": {"report_ttl_hours": 1.0, "callback_allow_private": True},
        }
    )


def session_service(root: Path, weights_dir: Path) -> Iterator[Service]:
    """Start (once) the real Serve app; stop it when the session ends."""
    global _running
    if _running is None:
        _running = _start(root, weights_dir)
    try:
        yield _running
    finally:
        if _running is not None:
            from serving.ray.app import stop_service

            stop_service()
            _running = None


def _start(root: Path, weights_dir: Path) -> Service:
    from serving.auth.keys import create_key
    from serving.jobs.store import open_store
    from serving.ray.app import load_config, run_service
    from serving.ray.runtime import init_ray

    settings = service_settings(root, weights_dir)
    store = open_store(settings)
    key_a, key_b = create_key(store, "a").token, create_key(store, "b").token
    store.close()
    started = time.perf_counter()
    init_ray(num_cpus=RAY_TEST_CPUS)
    # chosen after Ray's own processes started: picked before, one of them could take it first
    # ("Failed to bind to address" from Serve's proxy, once in a full run)
    port = free_port()
    run_service(settings, load_config(), "127.0.0.1", port)
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=url, timeout=120.0) as client:
        deadline = time.monotonic() + 180.0
        while client.get("/readyz").status_code != 200:
            if time.monotonic() > deadline:
                raise TimeoutError("the Serve app did not become ready in 180 s")
            time.sleep(0.5)
    return Service(url, key_a, key_b, settings, time.perf_counter() - started)
