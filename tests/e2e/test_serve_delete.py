"""On the real Ray Serve app, a video deleted while its stages run stops holding the stage replicas:
the frames not yet searched or scored are cancelled. Before, every sampled frame's face search and
synthetic-image scoring ran to its end for a job that was gone (here: all 400 frames, about 25 s)."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support import mediagen
from tests.support.serve_helpers import Service

FRAMES = 400
EXPORT_S = 12.0
"""Longer than Ray's metrics export period (about 10 s here): two equal reads this far apart mean
the replicas' counters have stopped growing."""


def _settled(timeout_s: float = 150.0) -> dict[str, float]:
    """Images in every stage replica's batched passes, once two reads :data:`EXPORT_S` apart agree."""
    from serving.ray.deployments import node_batch_totals

    last: dict[str, float] = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        now = {stage: images for stage, (_, images) in node_batch_totals().items()}
        if now == last:
            return now
        last = now
        time.sleep(EXPORT_S)
    raise AssertionError(f"the stage replicas were still working after {timeout_s} s: {last}")


def test_a_video_deleted_in_its_faces_stage_stops_its_frames_being_searched_and_scored(
    service: Service, tmp_path: Path
) -> None:
    clip = tmp_path / "deleted.mp4"  # a clip no other test analyses: a cached report runs no stage
    mediagen.write_face_clip(clip, n_frames=FRAMES, fps=25, size=(480, 360))
    before = _settled()
    with service.client(service.key_a) as client:
        answer = client.post(
            "/v1/analyze", params={"frames": FRAMES}, files={"file": ("deleted.mp4", clip.read_bytes())}
        )
        assert answer.status_code == 202, answer.text
        job = answer.json()["job_id"]
        deadline = time.monotonic() + 120
        while (client.get(f"/v1/jobs/{job}").json().get("partial") or {}).get("stage") != "faces":
            assert time.monotonic() < deadline, "the job never reached its faces stage"
            time.sleep(0.05)
        assert client.delete(f"/v1/jobs/{job}").status_code == 204
        time.sleep(EXPORT_S)  # what was worked on before the cancellation is exported by then
    after = _settled()
    worked = {stage: after[stage] - before.get(stage, 0.0) for stage in ("faces", "synthetic_model")}
    for stage, images in worked.items():
        assert images < FRAMES / 2, f"{stage}: {images:.0f} of the deleted video's {FRAMES} frames ({worked})"
