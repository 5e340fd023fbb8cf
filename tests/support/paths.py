"""Where the repository and the shared test data are, independent of the test module's folder."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The repository root (the folder holding ``pyproject.toml``)."""

SHARED_DATA = ROOT.parent / "shared" / "data"
"""``../shared/data``: third-party fixtures, weights and clips (see the ``shared_data`` fixture)."""

ARTIFACTS = ROOT / "test-artifacts"
"""Screenshots and other files kept for a human to look at after a run (git-ignored)."""
