"""The web form's "About the file" words a video's length and frames as ``trueframe analyze`` does:
a one-frame clip of 40 ms read "Duration 0.0 s, 1 frames checked" (the command line: "40 ms")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.e2e.test_browser import _browser, _upload_with_key, chromium  # noqa: F401 (fixture)
from tests.support import mediagen

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_one_frame_clip_reads_its_length_in_milliseconds(chromium: Path, tmp_path: Path) -> None:  # noqa: F811
    from playwright.sync_api import sync_playwright

    from serving.auth.keys import create_key
    from tests.support.fake_analyzer import FakeAnalyzer
    from tests.support.servicekit import live_server, make_settings, open_store

    clip = mediagen.write_video(tmp_path / "one.mp4", [np.full((64, 96, 3), 120, np.uint8)])
    settings = make_settings(tmp_path / "data", tmp_path / "weights")
    store = open_store(settings)
    key = create_key(store, "newsroom").token
    problems: list[str] = []
    with live_server(settings, FakeAnalyzer(settings), store) as url, sync_playwright() as pw:
        context = _browser(pw, tmp_path / "profile")
        try:
            page = _upload_with_key(context, url, clip, key, problems)
            page.wait_for_selector("#result:not([hidden])", timeout=60_000)
            details = page.inner_text("#media-details")
        finally:
            context.close()
    store.close()
    assert problems == []
    assert "Duration\n40 ms, " in details  # the fake analyzer reports its own frame count
    assert "0.0 s" not in details
