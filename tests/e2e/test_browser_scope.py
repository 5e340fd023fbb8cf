"""The web form on a file no detector applies to (verdict ``out_of_scope``), and on one whose pixels are
degraded (rule ``degraded_media``), in headless Debian chromium.

The report still carries the face tracks the face model rated, but no score counts them: the form drew
their boxes red or green with "the percentage is that face's estimated chance of manipulation" and a
"Score over time" of the uncounted ratings, under a summary saying the face model does not apply. On
degraded pixels the ratings count in the probability but cannot accuse: the form drew a 70% face red
under an "uncertain" verdict whose summary says the pixels cannot make it an accusation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_browser import COUNT_BOX_COLOURS, _browser, _upload_with_key, chromium
from tests.support.paths import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

__all__ = ["chromium"]  # the fixture, shared with the other browser tests


def _faces_seen(tmp_path: Path, shot: str, **fake: bool) -> dict[str, Any]:
    """What the form shows of a 25-frame face clip's faces, rated 70% by a fake analyzer with ``fake``."""
    from playwright.sync_api import sync_playwright

    from serving.auth.keys import create_key
    from tests.support import mediagen
    from tests.support.fake_analyzer import FakeAnalyzer
    from tests.support.servicekit import live_server, make_settings, open_store

    clip = mediagen.write_face_clip(tmp_path / "screen-recording.mp4", n_frames=25)
    settings = make_settings(tmp_path / "data", tmp_path / "weights")
    store = open_store(settings)
    key = create_key(store, "newsroom").token
    analyzer = FakeAnalyzer(settings, manipulated=0.7, **fake)
    problems: list[str] = []
    seen: dict[str, Any] = {}
    try:
        with live_server(settings, analyzer, store) as url, sync_playwright() as pw:
            context = _browser(pw, tmp_path / "profile")
            try:
                page = _upload_with_key(context, url, clip, key, problems)
                page.wait_for_selector("#result:not([hidden])", timeout=60_000)
                page.wait_for_selector("#thumbs[data-ready=true]", timeout=60_000)
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / shot), full_page=True)
                seen = {
                    "verdict": page.text_content("#verdict-title"),
                    "colours": page.evaluate(COUNT_BOX_COLOURS),
                    "note": page.text_content("#faces-note") or "",
                    "caption": page.text_content("#thumbs figcaption") or "",
                    "timeline": page.is_visible("#timeline-card"),
                }
            finally:
                context.close()
    finally:
        store.close()
    assert problems == []
    return seen


def test_faces_of_an_out_of_scope_clip_are_drawn_grey_and_not_plotted_as_a_score(
    chromium: Path, tmp_path: Path
) -> None:
    seen = _faces_seen(tmp_path, "browser-out-of-scope-faces.png", out_of_scope=True)
    assert seen["verdict"] == "No verdict: our detectors do not apply"
    assert seen["colours"]["red"] == seen["colours"]["green"] == 0, (
        "an uncounted rating is never red or green"
    )
    assert seen["colours"]["grey"] > 100
    assert "our detectors do not apply to this file and give no verdict" in seen["note"]
    assert seen["caption"].endswith(
        "70% likely manipulated by the face model alone, not counted in the score"
    )
    assert seen["timeline"] is False, "no score over time where no score is given"


def test_faces_on_degraded_pixels_are_drawn_grey_and_say_they_cannot_accuse(
    chromium: Path, tmp_path: Path
) -> None:
    seen = _faces_seen(tmp_path, "browser-degraded-faces.png", degraded=True)
    assert seen["colours"]["red"] == seen["colours"]["green"] == 0, "a rating that cannot accuse is not red"
    assert seen["colours"]["grey"] > 100
    assert "pixels are degraded (heavily compressed video (0.004 bits per pixel))" in seen["note"]
    assert "so no rating can make it an accusation" in seen["note"]
    cannot = "70% likely manipulated on degraded pixels, which cannot make it an accusation"
    assert seen["caption"].endswith(cannot)
