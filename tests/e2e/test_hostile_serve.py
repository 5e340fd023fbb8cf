"""A representative subset of the hostile-input suite through the REAL Ray Serve app (the session's
``service``): every kind of hostile input (truncation, bomb, header lie, polyglot, exotic codec,
broken stream, bad metadata, name) crosses the ingress, the media and provenance replicas and,
where the file is accepted, faces and models.

Each upload goes with ``wait=true``; the answer must be a report or the typed JSON error with its
documented status, never a 5xx, a traceback or a hang (per-case timeout), and no upload may be left
in the service's media folder afterwards.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.hostile import CASES, Case, check_http_answer
from tests.support.serve_helpers import Service

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.shared_data]

SUBSET = [case for case in CASES if case.serve]


def test_the_subset_is_representative() -> None:
    assert len(SUBSET) >= 20
    assert {case.kind for case in SUBSET} == {case.kind for case in CASES}


@pytest.mark.timeout(240)
@pytest.mark.parametrize("case", SUBSET, ids=[c.name for c in SUBSET])
def test_serve_answers_hostile_input_with_a_report_or_a_typed_error(
    service: Service, case: Case, tmp_path: Path
) -> None:
    data = case.make(tmp_path)
    with service.client(service.key_a) as client:
        answer = client.post(
            "/v1/analyze", params={"name": case.sent_name, "wait": "true", "frames": 4}, content=data
        )
    check_http_answer(case, answer.status_code, answer.content)
    media_dir = service.settings.data_dir / "media"
    assert not media_dir.exists() or list(media_dir.iterdir()) == []
