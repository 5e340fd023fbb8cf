"""Where torch runs: device choice and thread count, decided when a stage is built (never at import)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING

from detector.errors import InvalidRequest
from detector.settings import DEVICE_CHOICES, DEVICE_FORM

if TYPE_CHECKING:
    import torch


def select_device(setting: str = "auto", what: str = "TRUEFRAME_RUNTIME__DEVICE") -> torch.device:
    """``auto`` picks CUDA when present, else CPU; ``cpu`` / ``cuda`` / ``cuda:N`` are taken as given.

    Anything else (torch's ``mps``, ``xpu``, ``meta``), CUDA without a GPU and a ``cuda:N`` beyond
    the GPUs present are :class:`InvalidRequest` naming ``what`` (the setting or option).
    """
    import torch

    if not DEVICE_FORM.fullmatch(setting):
        raise InvalidRequest(f"{what}: unknown device {setting!r}; use {DEVICE_CHOICES}")
    if setting == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(setting)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidRequest(f"{what}: device {setting!r} requested but CUDA is not available")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise InvalidRequest(f"{what}: device {setting!r} requested but only {count} CUDA device(s) present")
    if device.type == "cuda":
        ieee_float32()
    return device


def ieee_float32() -> None:
    """Make CUDA's float32 convolutions and matrix products IEEE float32, not TF32 (torch's
    default for convolutions, with a 10-bit mantissa): reports must not depend on the device by
    more than the 1e-2 a float16 model is validated to. With TF32 on an H200 the default face
    model's probabilities moved by up to 0.012 from the CPU's (README, "On a lent GPU").
    Process-wide, as torch's flags are.
    """
    import torch

    torch.backends.cudnn.conv.fp32_precision = "ieee"  # type: ignore[attr-defined]  # set at run time
    torch.backends.cuda.matmul.fp32_precision = "ieee"


def model_dtype(precision: str, device: torch.device, half_precision: bool) -> torch.dtype:
    """The dtype a classifier runs in: float16 when ``precision`` is ``auto``, ``device`` is CUDA
    and the model was validated in float16 (its manifest's ``half_precision``), else float32.

    A CPU never gets float16 from ``auto``: without native half arithmetic it is slower there, not
    faster. A model not validated keeps float32 everywhere: on real face crops the default face
    model moved by up to 0.02 in probability in float16, over the 1e-2 a validated model keeps.
    """
    import torch

    if precision not in ("auto", "fp32"):
        raise InvalidRequest(f"unknown precision {precision!r}; use 'auto' or 'fp32'")
    if precision == "auto" and device.type == "cuda" and half_precision:
        return torch.float16
    return torch.float32


def configure_threads(threads: int) -> None:
    """Set torch's intra-op thread count; 0 keeps torch's default."""
    import torch

    if threads > 0 and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


@contextmanager
def timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    """Add the seconds spent in the ``with`` block to ``timings[stage]`` (rounded to 0.1 ms)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = round(timings.get(stage, 0.0) + time.perf_counter() - start, 4)


@lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, looked up once (``find_library`` runs ``ldconfig``); None elsewhere."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc: nothing to trim
        return None


def release_memory(collect: bool = False) -> None:
    """Give freed heap memory back to the system (glibc ``malloc_trim``) after a large decode.

    ``collect`` first runs the cyclic garbage collector: after an error a traceback's frames can
    hold a large decode in a reference cycle. It costs tens of milliseconds in a large process
    (the ingress, the in-process service), so it is not run after every success.
    """
    if collect:
        import gc

        gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
