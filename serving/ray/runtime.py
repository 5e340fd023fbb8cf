"""Starting Ray the same way for the service and the batch scan."""

from __future__ import annotations

import os
from typing import Any


def init_ray(num_cpus: int | None = None) -> bool:
    """Join ``RAY_ADDRESS`` when set, else start a local Ray without the dashboard.

    Returns True when this call started Ray (the caller then shuts it down), False when Ray was
    already running in this process.
    """
    import ray

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "WARNING"}
    if os.environ.get("RAY_ADDRESS"):
        kwargs["address"] = os.environ["RAY_ADDRESS"]
    else:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        kwargs["num_cpus"] = num_cpus
    ray.init(**kwargs)
    return True
