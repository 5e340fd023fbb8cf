"""The journalists' web form in headless Debian chromium (Playwright, no downloaded browser).

A real face-swap video goes through the form of the real Serve app: the access key is asked once,
the upload and the analysis show progress, and the result page shows the verdict, the face boxes
drawn on frames the page takes from the uploaded file, the per-frame timeline, and a JSON download
of the report. A screenshot of the result page is kept in ``test-artifacts/``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.support.paths import ARTIFACTS
from tests.support.serve_helpers import Service

pytestmark = [pytest.mark.browser, pytest.mark.ray, pytest.mark.slow, pytest.mark.shared_data]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The first upload is refused (keys exist, no session yet): Chromium logs it, then the form asks for the key.
EXPECTED_401 = "status of 401 (Unauthorized)"
VERDICT_LABELS = {
    "authentic": "Authentic",
    "likely_authentic": "Probably authentic",
    "uncertain": "Uncertain: we cannot say",
    "likely_manipulated": "Probably manipulated",
    "manipulated": "Manipulated",
    "ai_generated": "AI-generated or AI-edited",
    "out_of_scope": "No verdict: our detectors do not apply",
}
# Pixels of the face box strokes (red: P >= 50 %, green: below) on the first thumbnail.
COUNT_BOX_PIXELS = """() => {
  const c = document.querySelector('#thumbs canvas');
  if (c === null) return {box: 0, lit: 0, total: 0};
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let box = 0, lit = 0;
  for (let i = 0; i < d.length; i += 4) {
    const [r, g, b] = [d[i], d[i + 1], d[i + 2]];
    if ((r === 209 && g === 26 && b === 42) || (r === 20 && g === 128 && b === 74)) box++;
    if (r + g + b > 90) lit++;
  }
  return {box, lit, total: d.length / 4};
}"""


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.is_file():
        if os.environ.get("CI"):
            pytest.fail("/usr/bin/chromium is missing under CI (apt-get install chromium chromium-driver)")
        pytest.skip("/usr/bin/chromium is not installed")
    return CHROMIUM


def test_journalist_checks_a_face_swap_video(
    service: Service, chromium: Path, shared_data: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import ConsoleMessage, sync_playwright

    video = shared_data / "deepfake" / "ffpp_c23" / "Deepfakes" / "519_515.mp4"
    problems: list[str] = []
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(chromium),
            headless=True,
            args=CHROMIUM_ARGS,
            accept_downloads=True,
            viewport={"width": 1100, "height": 900},
        )
        try:
            page = context.new_page()

            def on_console(message: ConsoleMessage) -> None:
                if message.type == "error" and EXPECTED_401 not in message.text:
                    problems.append(f"console: {message.text}")

            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            page.on("console", on_console)
            page.goto(service.url + "/")
            page.check("#heatmaps")
            page.set_input_files("#file-input", str(video))
            page.wait_for_selector("#key-panel:not([hidden])")  # keys exist: the form asks once
            page.fill("#key-input", service.key_a)
            page.click("#key-form button[type=submit]")
            page.wait_for_selector("#progress-panel:not([hidden])")
            page.wait_for_selector("#result:not([hidden])", timeout=240_000)
            page.wait_for_selector("#thumbs[data-ready=true]", timeout=60_000)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "browser-result.png"), full_page=True)
            with page.expect_download() as download_info:
                page.click("#download-json")
            download = download_info.value
            report: dict[str, Any] = json.loads(Path(download.path()).read_text(encoding="utf-8"))
            verdict = page.text_content("#verdict-title")
            summary = page.text_content("#verdict-summary")
            pixels = page.evaluate(COUNT_BOX_PIXELS)
            thumbs = page.locator("#thumbs canvas").count()
            dots = page.locator("#timeline svg circle.dot-face").count()
            heatmaps = page.locator("#heatmaps-list img").count()
        finally:
            context.close()

    assert problems == [], "the page logged errors (CSP violations show up here too)"
    assert download.suggested_filename == "trueframe-519_515.json"
    assert report["media"]["sha256"] == hashlib.sha256(video.read_bytes()).hexdigest()
    assert report["media"]["kind"] == "video"
    assert verdict == VERDICT_LABELS[report["score"]["verdict"]]
    assert summary == report["score"]["summary"]
    assert report["tracks"], "the face-swap video has a face"
    assert thumbs >= 1
    assert pixels["box"] > 100, "face boxes are drawn on the thumbnail"
    assert pixels["lit"] > pixels["total"] // 2, "the thumbnail shows a decoded frame, not a blank canvas"
    scored = [f for f in report["frames"] if f["max_face_logit"] is not None]
    assert dots == len(scored) > 1
    assert heatmaps == len(report["heatmaps"]) >= 1, "asked-for heatmaps are shown"
