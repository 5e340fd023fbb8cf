"""The journalists' web form and the review desk in headless Debian chromium (Playwright, no
downloaded browser), and what the other browser tests share (the browser, the key form, the page's
problems). A real face-swap video through the form is ``test_browser_video.py``.

The trust-and-safety pages run on a live server over the fake analyzer with real PDQ matching: a
reviewer signs in to the review desk, opens the appealed item, takes the appeal and records a
decision; the submitter then sees the human decision beside the model's on the job's page, and a
re-encoded copy of the reviewed photo comes back with its known match. Screenshots of each step go
to ``test-artifacts/``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from detector.scoring.fusion.text import range_words
from serving.known.lookup import StoreKnownMedia
from tests.support.paths import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

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
    "likely_authentic": "Likely authentic",
    "uncertain": "Uncertain: we cannot say",
    "likely_manipulated": "Likely manipulated",
    "manipulated": "Manipulated",
    "ai_generated": "AI-generated or AI-edited",
    "out_of_scope": "No verdict: our detectors do not apply",
}
METER_RANGE = """() => {
  const band = document.getElementById("meter-range");
  const shown = getComputedStyle(band).display !== "none" && band.offsetWidth > 0;
  return shown ? band.style.left + " " + band.style.width + " visible" : "hidden";
}"""

COUNT_BOX_COLOURS = """() => {
  const c = document.querySelector('#thumbs canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const seen = {red: 0, green: 0, grey: 0};
  for (let i = 0; i < d.length; i += 4) {
    const rgb = d[i] + "," + d[i + 1] + "," + d[i + 2];
    if (rgb === "209,26,42") seen.red++;
    if (rgb === "20,128,74") seen.green++;
    if (rgb === "87,96,106") seen.grey++;
  }
  return seen;
}"""


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.is_file():
        if os.environ.get("CI"):
            pytest.fail("/usr/bin/chromium is missing under CI (apt-get install chromium chromium-driver)")
        pytest.skip("/usr/bin/chromium is not installed")
    return CHROMIUM


def _browser(pw: Any, profile: Path, **options: Any) -> Any:
    """A persistent headless chromium context (``options`` go to Playwright as given)."""
    return pw.chromium.launch_persistent_context(
        str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
        viewport={"width": 1100, "height": 900}, **options,
    )  # fmt: skip


def _open_desk(page: Any, url: str, key: str) -> None:
    """Open the review desk and sign in with ``key`` (a reviewer's), until the queues show."""
    page.goto(url + "/review")
    page.wait_for_selector("#key-panel:not([hidden])")
    page.fill("#key-input", key)
    page.click("#key-form button[type=submit]")
    page.wait_for_selector("#desk:not([hidden])")


def _watch(page: Any, problems: list[str]) -> None:
    """Collect page errors and console errors (but the expected first 401) into ``problems``."""
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on(
        "console",
        lambda m: (
            problems.append(f"console: {m.text}")
            if m.type == "error" and EXPECTED_401 not in m.text
            else None
        ),
    )


def _upload_with_key(context: Any, url: str, photo: Path, key: str, problems: list[str]) -> Any:
    """A new page of the form that uploads ``photo`` and, asked for a key, gives ``key``."""
    page = context.new_page()
    _watch(page, problems)
    page.goto(url + "/")
    page.set_input_files("#file-input", str(photo))
    page.wait_for_selector("#key-panel:not([hidden])")
    page.fill("#key-input", key)
    page.click("#key-form button[type=submit]")
    return page


@pytest.mark.parametrize("stored_before_2_3", [False, True])
def test_a_face_rating_the_score_does_not_count_is_drawn_grey_not_as_an_accusation(
    chromium: Path, tmp_path: Path, stored_before_2_3: bool
) -> None:
    """On a still image the fused score gives the face model weight 0: a face it rates 70% must not
    be boxed in red on a photo the page calls probably authentic. A report stored before schema 2.3
    has no ``counted``: the page reads a contribution of exactly 0 as not counted."""
    from playwright.sync_api import sync_playwright

    from serving.auth.keys import create_key
    from tests.support import known_media as km
    from tests.support.fake_analyzer import FakeAnalyzer
    from tests.support.servicekit import live_server, make_settings, open_store

    photo = tmp_path / "portrait.jpg"
    photo.write_bytes(km.reviewed_photo())
    problems: list[str] = []
    seen: dict[str, Any] = {}
    for counted in (False, True):  # a store each: the second would be the first's cached report
        settings = make_settings(tmp_path / f"data-{counted}", tmp_path / "weights")
        store = open_store(settings)
        key = create_key(store, "newsroom").token
        analyzer = FakeAnalyzer(
            settings, manipulated=0.7, face_counted=counted, before_counted=stored_before_2_3
        )
        with live_server(settings, analyzer, store) as url, sync_playwright() as pw:
            context = _browser(pw, tmp_path / f"profile-{counted}")
            try:
                page = _upload_with_key(context, url, photo, key, problems)
                page.wait_for_selector("#thumbs[data-ready=true]", timeout=60_000)
                shot = f"browser-face-counted-{counted}{'-before-2.3' if stored_before_2_3 else ''}.png"
                page.screenshot(path=str(ARTIFACTS / shot), full_page=True)
                job = page.url.split("job=", 1)[1]
                stored = httpx.get(f"{url}/v1/jobs/{job}", headers={"Authorization": f"Bearer {key}"})
                signals = stored.json()["report"]["score"]["signals"]
                assert all(("counted" in signal) != stored_before_2_3 for signal in signals)
                seen[str(counted)] = {
                    "colours": page.evaluate(COUNT_BOX_COLOURS),
                    "note": page.text_content("#faces-note") or "",
                    "caption": page.text_content("#thumbs figcaption") or "",
                }
            finally:
                context.close()
        store.close()
    assert problems == []
    grey, red = seen["False"], seen["True"]
    assert grey["colours"] == {"red": 0, "green": 0, "grey": grey["colours"]["grey"]}
    assert grey["colours"]["grey"] > 100
    assert "not counted in this score" in grey["note"]
    uncounted = "by the face model alone, not counted in the score"
    assert grey["caption"] == f"Face 1, 70% likely manipulated {uncounted}"
    assert red["colours"]["red"] > 100  # a counted rating keeps its colour
    assert red["colours"]["grey"] == 0
    assert "not counted" not in red["note"] + red["caption"]


def test_the_signal_a_rule_decided_by_reads_decides_not_no_effect(chromium: Path, tmp_path: Path) -> None:
    """Signed credentials declaring AI set the verdict without adding log-odds; the page marked their
    line "no effect" and listed it after the base rate, which pushes towards authentic."""
    from playwright.sync_api import sync_playwright

    from serving.auth.keys import create_key
    from tests.support import known_media as km
    from tests.support.fake_analyzer import FakeAnalyzer
    from tests.support.servicekit import live_server, make_settings, open_store

    photo = tmp_path / "declared.jpg"
    photo.write_bytes(km.reviewed_photo())
    settings = make_settings(tmp_path / "data", tmp_path / "weights")
    store = open_store(settings)
    key = create_key(store, "newsroom").token
    problems: list[str] = []
    analyzer = FakeAnalyzer(settings, ai_declared=True)
    with live_server(settings, analyzer, store) as url, sync_playwright() as pw:
        context = _browser(pw, tmp_path / "profile")
        try:
            page = _upload_with_key(context, url, photo, key, problems)
            page.wait_for_selector("#signals li")
            page.screenshot(path=str(ARTIFACTS / "browser-rule-decides.png"), full_page=True)
            lines = page.eval_on_selector_all(
                "#signals li", "items => items.map(i => [i.className, i.innerText.replace(/\\s+/g, ' ')])"
            )
        finally:
            context.close()
    store.close()
    assert problems == []
    (first_class, first_text), (second_class, second_text) = lines
    assert first_class == "signal decides"
    assert first_text.startswith("■ decides Signed Content Credentials declare")
    assert (second_class, second_text.split(" base rate")[0]) == ("signal down", "▼ lowers")


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    """A live service over the fake analyzer with known-media matching, a submitter and a reviewer,
    and one analysed photo whose submitter appealed the result."""
    from serving.auth.keys import create_key
    from tests.support import known_media as km
    from tests.support.fake_analyzer import FakeAnalyzer
    from tests.support.servicekit import live_server, make_settings, open_store

    settings = make_settings(tmp_path / "data", tmp_path / "weights")
    store = open_store(settings)
    submitter = create_key(store, "newsroom").token
    reviewer = create_key(store, "desk", "reviewer").token
    analyzer = FakeAnalyzer(settings, manipulated=0.2, known=StoreKnownMedia(store))
    with live_server(settings, analyzer, store) as url, httpx.Client(base_url=url, timeout=30) as client:
        headers = {"X-API-Key": submitter}
        answer = client.post("/v1/analyze?name=press-photo.jpg", content=km.reviewed_photo(), headers=headers)
        job_id = answer.headers["x-trueframe-job"]
        statement = {"statement": "This photo was doctored: the flag was added later."}
        assert client.post(f"/v1/jobs/{job_id}/appeal", json=statement, headers=headers).status_code == 201
        copy = tmp_path / "press-photo-copy.jpg"
        copy.write_bytes(km.reencoded(km.reviewed_photo(), quality=50))
        yield Desk(url, submitter, reviewer, job_id, copy)
    store.close()


@dataclass
class Desk:
    url: str
    submitter: str
    reviewer: str
    job_id: str
    copy: Path


# Pixels between the "Take this appeal" button and the heading under it (the button sat against it).
APPEAL_BUTTON_GAP = """() => {
  const button = document.getElementById("take-appeal").getBoundingClientRect();
  const next = document.getElementById("item-appeal").nextElementSibling.getBoundingClientRect();
  return Math.round(next.top - button.bottom);
}"""


def _reviewer_decides(pw: Any, desk: Desk, profile: Path, problems: list[str]) -> dict[str, Any]:
    context = _browser(pw, profile)
    try:
        page = context.new_page()
        _watch(page, problems)
        page.goto(desk.url + "/review")
        page.wait_for_selector("#key-panel:not([hidden])")
        page.fill("#key-input", desk.reviewer)
        page.click("#key-form button[type=submit]")
        page.wait_for_selector("#queue-body tr")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "review-queue.png"), full_page=True)
        seen: dict[str, Any] = {"queue": page.text_content("#queue-body") or ""}
        page.click("#queue-body button")
        page.wait_for_selector("#item:not([hidden])")
        seen["statement"] = page.text_content("#appeal-statement") or ""
        seen["details"] = page.text_content("#item-details") or ""
        seen["gap"] = page.evaluate(APPEAL_BUTTON_GAP)
        page.click("#take-appeal")
        page.locator("#appeal-meta", has_text="In review").wait_for()
        page.check("input[name=verdict][value=manipulated]")
        page.fill("#decision-reason", "The flag was pasted in; the agency original has none.")
        page.fill("#decision-notes", "Compared with the agency's original frame.")
        page.screenshot(path=str(ARTIFACTS / "review-item.png"), full_page=True)
        page.click("#decision-submit")
        page.wait_for_selector("#decision-done:not([hidden])")
        seen["done"] = page.text_content("#decision-done") or ""
        page.wait_for_selector("#queue-empty:not([hidden])")
        page.screenshot(path=str(ARTIFACTS / "review-decided.png"), full_page=True)
        return seen
    finally:
        context.close()


def _submitter_sees(pw: Any, desk: Desk, profile: Path, problems: list[str]) -> dict[str, str]:
    context = _browser(pw, profile)
    try:
        page = context.new_page()
        _watch(page, problems)
        page.goto(f"{desk.url}/?job={desk.job_id}")
        page.wait_for_selector("#key-panel:not([hidden])")
        page.fill("#key-input", desk.submitter)
        page.click("#key-form button[type=submit]")
        page.wait_for_selector("#review-block:not([hidden])")
        page.screenshot(path=str(ARTIFACTS / "browser-human-decision.png"), full_page=True)
        seen = {
            "model": page.text_content("#verdict-title") or "",
            "human": page.text_content("#review-verdict") or "",
            "reason": page.text_content("#review-reason") or "",
            "appeal": page.text_content("#appeal-state") or "",
            "score_line": page.text_content("#verdict-score") or "",
            "meter_range": page.evaluate(METER_RANGE),
        }
        page.click("#verdict-card .again")
        page.set_input_files("#file-input", str(desk.copy))
        page.wait_for_selector("#known-block:not([hidden])")
        page.wait_for_selector("#thumbs[data-ready=true]")
        page.screenshot(path=str(ARTIFACTS / "browser-known-match.png"), full_page=True)
        seen["known"] = page.text_content("#known-verdict") or ""
        seen["known_detail"] = page.text_content("#known-detail") or ""
        seen["copy_verdict"] = page.text_content("#verdict-title") or ""
        return seen
    finally:
        context.close()


def test_a_reviewer_decides_an_appeal_and_the_submitter_sees_it_and_its_known_match(
    desk: Desk, chromium: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as pw:
        reviewer = _reviewer_decides(pw, desk, tmp_path / "reviewer", problems)
        submitter = _submitter_sees(pw, desk, tmp_path / "submitter", problems)
    assert problems == [], "the pages logged errors (CSP violations show up here too)"
    assert "press-photo.jpg" in reviewer["queue"]
    assert reviewer["statement"].startswith("This photo was doctored")
    assert reviewer["gap"] >= 16, "the appeal's button stands clear of the next heading"
    assert "Calibration range (95%)8% to 40%" in reviewer["details"]  # the fake's 0.2 +- 1 log-odds
    assert reviewer["done"] == "Recorded: Manipulated. The appeal is overturned."
    assert submitter["model"] == VERDICT_LABELS["likely_authentic"]  # the model's verdict stays
    assert submitter["meter_range"] == "8% 32% visible"  # bracketed on the meter: 8% from the left, 32% wide
    assert submitter["score_line"] == (
        "Estimated chance that it was manipulated or AI-generated: 20%. Calibrated on another draw of as "
        f"many examples, it could read {range_words((0.0842, 0.4046))} (95% range)."
    )
    assert submitter["human"] == "Manipulated"  # beside the human decision
    assert submitter["reason"] == "Reason: The flag was pasted in; the agency original has none."
    assert submitter["appeal"] == "A reviewer looked again and changed the decision."
    assert submitter["known"] == "Manipulated"
    assert "of 256 fingerprint bits differ" in submitter["known_detail"]
    assert submitter["copy_verdict"] == VERDICT_LABELS["manipulated"]


def test_the_api_reference_renders_from_this_service_alone_under_the_pages_csp(
    chromium: Path, tmp_path: Path
) -> None:
    """``/docs`` draws every operation of ``/openapi.json`` with nothing fetched from another origin
    (the service runs offline) and no CSP violation (the page's scripts are files, not inline)."""
    from playwright.sync_api import sync_playwright

    from tests.support.fake_analyzer import FakeAnalyzer
    from tests.support.servicekit import live_server, make_settings, open_store

    settings = make_settings(tmp_path / "data", tmp_path / "weights")
    store = open_store(settings)
    problems: list[str] = []
    requested: list[str] = []
    with live_server(settings, FakeAnalyzer(settings), store) as url, sync_playwright() as pw:
        headers = httpx.get(f"{url}/docs").headers
        assert "default-src 'self'" in headers["content-security-policy"]
        assert httpx.get(f"{url}/docs/assets/index.html").status_code == 404, "only the two assets"
        context = _browser(pw, tmp_path / "docs")
        try:
            page = context.new_page()
            _watch(page, problems)
            page.on("request", lambda r: requested.append(r.url))
            page.goto(f"{url}/docs")
            page.wait_for_selector("#operations-analysis-analyze_v1_analyze_post", timeout=30_000)
            paths = page.locator(".opblock-summary-path").all_inner_texts()
            page.screenshot(path=str(ARTIFACTS / "api-docs.png"), full_page=False)
        finally:
            context.close()
    store.close()
    assert problems == [], "the page logged errors (CSP violations show up here too)"
    assert [u for u in requested if not u.startswith(url) and not u.startswith("data:")] == []
    assert {"/v1/analyze", "/v1/jobs/{job_id}"} <= {p.replace("\u200b", "") for p in paths}


def test_reviewer_takes_an_appeal_from_the_flagged_queue(chromium: Path, tmp_path: Path) -> None:
    """A flagged job its submitter appealed shows "Take this appeal" in the flagged tab too: until
    2026-12-04 the button did nothing there (it looked for the appeal id in the queue row, which only
    the appeal queue's rows carry), and its row read "Not reviewed" with no word of the appeal. An
    item deleted after the queue was read opens as an error with no decision form: until 2026-12-04
    the previous item's details and form stayed, and a decision went to the unread item."""
    from playwright.sync_api import sync_playwright

    from serving.auth.keys import create_key
    from tests.support import known_media as km
    from tests.support.fake_analyzer import FakeAnalyzer
    from tests.support.servicekit import live_server, make_settings, open_store

    settings = make_settings(tmp_path / "data", tmp_path / "weights")
    store = open_store(settings)
    submitter = create_key(store, "newsroom").token
    reviewer = create_key(store, "desk", "reviewer").token
    analyzer = FakeAnalyzer(settings, manipulated=0.95)
    problems: list[str] = []
    with live_server(settings, analyzer, store) as url, httpx.Client(base_url=url, timeout=30) as client:
        headers = {"X-API-Key": submitter}
        answer = client.post("/v1/analyze?name=flagged.jpg", content=km.reviewed_photo(), headers=headers)
        job_id = answer.headers["x-trueframe-job"]
        opened = client.post(f"/v1/jobs/{job_id}/appeal", json={"statement": "my own photo"}, headers=headers)
        assert opened.status_code == 201, opened.text
        answer = client.post("/v1/analyze?name=gone.jpg", content=km.unrelated_photo(), headers=headers)
        gone = answer.headers["x-trueframe-job"]
        with sync_playwright() as pw:
            context = _browser(pw, tmp_path / "profile")
            try:
                page = context.new_page()
                _watch(page, problems)
                _open_desk(page, url, reviewer)
                page.click("#tab-flagged")
                row = page.locator("#queue-body tr", has_text="flagged.jpg")
                row.locator("td", has_text="Not reviewed; appeal waiting").wait_for()
                row.locator("button").click()
                page.wait_for_selector("#take-appeal:not([hidden])")
                page.click("#take-appeal")
                page.locator("#appeal-meta", has_text="In review").wait_for(timeout=10_000)
                row.locator("td", has_text="Not reviewed; appeal in review").wait_for()
                assert client.delete(f"/v1/jobs/{gone}", headers=headers).status_code == 204
                page.locator("#queue-body tr", has_text="gone.jpg").locator("button").click()
                page.locator("#decision-error", has_text="could not be opened").wait_for(timeout=10_000)
                assert page.locator("#item-title").inner_text() == "gone.jpg"
                assert page.locator("#decision-form").is_hidden()
                assert page.locator("#item-appeal").is_hidden()
            finally:
                context.close()
        state = client.get(f"/v1/appeals/{opened.json()['appeal_id']}", headers={"X-API-Key": reviewer})
    store.close()
    assert state.json()["state"] == "in_review"
    # the browser logs the deleted job's two 404s itself; nothing else may be logged
    assert all("404 (Not Found)" in p for p in problems), problems
    assert len(problems) == 2, problems
