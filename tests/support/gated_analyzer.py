"""A fake analyzer that holds each analysis at a gate, so a test can act while a job is running."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from detector.settings import Settings
from detector.stages import Options
from serving.analyzer import ProgressCallback
from tests.support.fake_analyzer import FakeAnalyzer


class GatedAnalyzer(FakeAnalyzer):
    """Waits for ``gate`` after the job was claimed, before its first progress call."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.gate = threading.Event()
        self.waiting = threading.Event()

    async def analyze(
        self, data: bytes, name: str | None, options: Options, progress: ProgressCallback | None = None
    ) -> Any:
        self.waiting.set()
        while not self.gate.is_set():
            await asyncio.sleep(0.01)
        return await super().analyze(data, name, options, progress)
