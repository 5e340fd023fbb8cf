"""The web form on a video: "About the file" words its length as ``trueframe analyze`` does (a
one-frame clip of 40 ms read "Duration 0.0 s, 1 frames checked"; the command line: "40 ms"), and a
reopened result says why its face boxes are not drawn (it said "Boxes show where" above nothing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.e2e.test_browser import CHROMIUM, _browser, _upload_with_key
from tests.support import mediagen

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.is_file():
        pytest.skip("/usr/bin/chromium is not installed")
    return CHROMIUM


def test_a_short_clip_in_milliseconds_and_a_reopened_result_without_boxes(
    chromium: Path, tmp_path: Path
) -> None:
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
            page.wait_for_selector("#thumbs[data-ready=true]")
            drawn = len(page.query_selector_all("#thumbs canvas"))
            page.reload()  # "/?job=<id>": the report comes back, the file does not
            page.wait_for_selector("#thumbs[data-ready=true]", timeout=15_000)
            reopened = (len(page.query_selector_all("#thumbs canvas")), page.inner_text("#thumbs"))
        finally:
            context.close()
    store.close()
    assert problems == []
    assert "Duration\n40 ms, " in details  # the fake analyzer reports its own frame count
    assert "0.0 s" not in details
    assert drawn > 0
    assert reopened[0] == 0
    assert "choose the file again to see them" in reopened[1]
