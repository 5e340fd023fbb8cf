"""The review desk's "Take this appeal" while the reviewer opens another row before the take is
answered, in headless Debian chromium. Opening a row clears the desk's item until that row is read, so
the take's answer found no item: it threw on it ("Cannot read properties of null") and the desk stayed
on the other row with the taken appeal not shown. It now reopens the item the appeal was taken from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_browser import _browser, _open_desk, _watch, chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]

__all__ = ["chromium"]  # the fixture, shared with the other browser tests


def test_an_appeal_taken_while_another_row_opens_reopens_its_own_item(chromium: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from serving.auth.keys import create_key
    from tests.support import known_media as km
    from tests.support.fake_analyzer import FakeAnalyzer
    from tests.support.servicekit import live_server, make_settings, open_store

    settings = make_settings(tmp_path / "data", tmp_path / "weights")
    store = open_store(settings)
    submitter = create_key(store, "newsroom").token
    reviewer = create_key(store, "desk", "reviewer").token
    problems: list[str] = []
    held: list[Any] = []  # the take's request, held until the other row has been opened
    with (
        live_server(settings, FakeAnalyzer(settings, manipulated=0.95), store) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        headers = {"X-API-Key": submitter}
        job_id = client.post("/v1/analyze?name=appealed.jpg", content=km.reviewed_photo(), headers=headers)
        job_id = job_id.headers["x-trueframe-job"]
        opened = client.post(f"/v1/jobs/{job_id}/appeal", json={"statement": "my own photo"}, headers=headers)
        assert opened.status_code == 201, opened.text
        client.post("/v1/analyze?name=other.jpg", content=km.unrelated_photo(), headers=headers)
        with sync_playwright() as pw:
            context = _browser(pw, tmp_path / "profile")
            try:
                page = context.new_page()
                _watch(page, problems)
                page.route("**/v1/appeals/*/start", lambda route: held.append(route))
                _open_desk(page, url, reviewer)
                page.click("#tab-flagged")
                page.locator("#queue-body tr", has_text="appealed.jpg").locator("button").click()
                page.wait_for_selector("#take-appeal:not([hidden])")
                page.click("#take-appeal")
                deadline = 100
                while not held and deadline:
                    page.wait_for_timeout(100)
                    deadline -= 1
                assert held, "the take was never sent"
                page.locator("#queue-body tr", has_text="other.jpg").locator("button").click()
                page.locator("#item-title", has_text="other.jpg").wait_for(timeout=10_000)
                held[0].continue_()  # now the take is answered, with another row open
                page.locator("#item-title", has_text="appealed.jpg").wait_for(timeout=10_000)
                page.locator("#appeal-meta", has_text="In review").wait_for(timeout=10_000)
                assert page.locator("#take-appeal").is_hidden()
            finally:
                context.close()
        state = client.get(f"/v1/appeals/{opened.json()['appeal_id']}", headers={"X-API-Key": reviewer})
    store.close()
    assert state.json()["state"] == "in_review"
    assert problems == [], problems
