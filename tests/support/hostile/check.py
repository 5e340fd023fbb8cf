"""Checking an answer to a hostile case: a report or a typed error, never a crash or a leftover."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.hostile.case import REPORT, Case


def check_report(case: Case, report: dict[str, object], name: str | None) -> None:
    """What a report of ``case`` must show: the name it was sent under, the verdict or provenance
    state the case is about."""
    media = report["media"]
    assert isinstance(media, dict)
    assert media["name"] == name, f"{case.name}: the report names {media['name']!r}, not {name!r}"
    score = report["score"]
    assert isinstance(score, dict)
    if case.verdict is not None:
        assert score["verdict"] == case.verdict, f"{case.name}: verdict {score['verdict']}"
    if case.provenance is not None:
        provenance = report["provenance"]
        assert isinstance(provenance, dict)
        assert provenance["state"] == case.provenance, f"{case.name}: provenance {provenance['state']}"


def check_http_answer(case: Case, status: int, body: bytes, *, real: bool = True) -> dict[str, object]:
    """An HTTP answer to ``case`` (sent with ``wait=true``): a report (200) or a typed JSON error
    with its documented status; never a 5xx, a traceback or a job still running. ``real`` is False
    for an analyzer that only probes (the fake one): then intake decides, and the report is its own.
    """
    from serving.http.errors import status_of

    assert status < 500, f"{case.name}: HTTP {status}: {body[:300]!r}"
    assert b"Traceback" not in body, f"{case.name}: a traceback reached the client"
    assert status != 202, f"{case.name}: still a running job after wait=true"
    parsed = json.loads(body)
    expected = case.expect_http() if real or case.http_expect is not None else case.probe_expect()
    if status == 200:
        assert REPORT in expected, f"{case.name}: got a report, expected one of {sorted(expected)}"
        if real:
            check_report(case, parsed, case.sent_name)
        return dict(parsed)
    assert set(parsed) == {"error"}, f"{case.name}: {parsed}"
    code = parsed["error"]["code"]
    assert code in expected, (
        f"{case.name}: got {code} ({parsed['error']['message']}), expected {sorted(expected)}"
    )
    assert status == status_of(code), f"{case.name}: {code} answered with HTTP {status}"
    return dict(parsed)


def leftovers(temp_dir: Path) -> list[str]:
    """Files and folders left in a temp dir, except torch's per-user compile cache folder (made
    once per process when torch loads, empty, not a request's)."""
    return sorted(p.name for p in temp_dir.iterdir() if not p.name.startswith("torchinductor_"))
