"""Starting Ray the same way for the service and the batch scan, with bounded retries."""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

from detector.errors import TrueframeError

log = logging.getLogger(__name__)
START_ATTEMPTS = 3
START_BACKOFF_S = 2.0
CONNECT_TIMEOUT_S = 5.0
"""How long ``RAY_ADDRESS`` gets to accept a connection before ``trueframe`` gives up on it."""


class RayStartError(TrueframeError):
    """Ray could not be started or joined after the retries; the message says what Ray said."""

    code = "ray_start_failed"
    http_status = 503


def check_cluster_address(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """:class:`RayStartError` when ``RAY_ADDRESS`` names a ``host:port`` (or ``ray://host:port``) on
    which nothing accepts a connection: ``ray.init`` then retries on its own for ever (a
    walkthrough's ``trueframe serve`` still waited after 10 minutes). ``auto`` is left to Ray."""
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise RayStartError(f"no Ray cluster answers at RAY_ADDRESS={address}: {exc}") from None


def init_ray(num_cpus: int | None = None) -> bool:
    """Join ``RAY_ADDRESS`` when set, else start a local Ray without the dashboard.

    Returns True when this call started Ray (the caller then shuts it down), False when Ray was
    already running in this process. A start-up that fails (e.g. times out on a loaded machine)
    is retried with doubling backoff; after :data:`START_ATTEMPTS` it raises :class:`RayStartError`,
    which the command line prints as one line.
    """
    import ray

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "WARNING"}
    if os.environ.get("RAY_ADDRESS"):
        kwargs["address"] = os.environ["RAY_ADDRESS"]
        check_cluster_address(kwargs["address"])
    else:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        kwargs["num_cpus"] = num_cpus
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            ray.init(**kwargs)
            return True
        except (
            TimeoutError,
            ConnectionError,
            RuntimeError,
        ) as exc:  # what ray.init raises when it cannot start
            ray.shutdown()
            if attempt == START_ATTEMPTS:
                first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise RayStartError(f"Ray did not start after {attempt} attempts: {first_line}") from exc
            log.warning(
                "Ray did not start (%s); retrying in %.0f s", type(exc).__name__, START_BACKOFF_S * attempt
            )
            time.sleep(START_BACKOFF_S * 2 ** (attempt - 1))
    return True
