"""The large-image bench reads a child's own peak RSS (scripts/bench/large.py)."""

from __future__ import annotations

import subprocess
import sys

from scripts.bench.large import high_water_mb

HOLD = "import sys, time; b = b'\\x01' * {size}; sys.stdout.write('x'); sys.stdout.flush(); time.sleep(0.5)"


def child_peak_mb(size: int) -> float | None:
    """Peak RSS of a fresh interpreter that holds ``size`` touched bytes, read while it runs."""
    child = subprocess.Popen([sys.executable, "-c", HOLD.format(size=size)], stdout=subprocess.PIPE)
    assert child.stdout is not None
    assert child.stdout.read(1) == b"x"
    peak = high_water_mb(child.pid)
    child.wait()
    child.stdout.close()
    assert high_water_mb(child.pid) is None  # gone: nothing to read
    return peak


def test_high_water_mark_is_the_child_own_peak_not_its_parent_size() -> None:
    """``wait4``'s ``ru_maxrss`` carried the bench process's size across fork and exec (a small PNG
    read 1,189 MB while the bench held a 100 M-pixel image); ``VmHWM`` is the child's own."""
    held = b"\x01" * 300_000_000  # the parent is big when it spawns
    bare, big = child_peak_mb(1), child_peak_mb(200_000_000)
    assert len(held) == 300_000_000
    assert bare is not None
    assert bare < 100.0
    assert big is not None
    assert 190.0 < big < 300.0
