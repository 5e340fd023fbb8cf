"""The bench's ``gpu`` section: refused without CUDA before anything runs, left out of the default
run, and its measurements run end to end (here on the CPU, the code the device runs on CUDA)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from detector.settings import get_settings
from scripts.bench import __main__ as bench
from scripts.bench import gpu


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
def test_the_gpu_section_is_refused_without_cuda_before_any_section_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ran: list[str] = []
    monkeypatch.setattr(bench, "SECTIONS", {n: lambda *a, n=n: ran.append(n) or [] for n in bench.SECTIONS})
    with pytest.raises(SystemExit) as stopped:
        bench.main(["--only", "models,gpu", "--out", str(tmp_path / "b.md")])
    assert stopped.value.code == 2
    assert "section gpu needs a CUDA device" in capsys.readouterr().err
    assert ran == []


def test_the_default_run_leaves_the_gpu_section_out(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ran: list[str] = []
    monkeypatch.setattr(bench, "SECTIONS", {n: lambda *a, n=n: ran.append(n) or [] for n in bench.SECTIONS})
    assert bench.main(["--out", str(tmp_path / "b.md")]) == 0
    assert ran == [n for n in bench.SECTIONS if n != "gpu"]


@pytest.mark.slow
def test_the_model_rows_compare_precisions_and_devices_on_real_inputs() -> None:
    from scripts.bench.media import distinct_jpegs

    images = [gpu._decoded(data) for data in distinct_jpegs(4)]
    rows = gpu._models(get_settings(), "cpu", images, batches=(2,))
    agreement = [r for r in rows if "float16 vs float32" in r[1]]
    assert [r[1].split(":")[0] for r in agreement] == ["effnetlite0.faces4", "effnetlite0v.synthetic3"]
    for _, case, result in agreement:
        assert "real inputs" in case
        assert "cpu vs CPU in float32 0.0e+00" in result  # the same device
        assert result.endswith("precision auto runs float32")  # a CPU never gets float16 from auto
        assert float(result.split("probability ")[1].split(";")[0]) > 0  # float16 really ran
    assert len([r for r in rows if r[2].endswith("crops/s")]) == 4  # two precisions per model


@pytest.mark.slow
def test_the_end_to_end_rows_analyse_every_clip(tmp_path: Path) -> None:
    rows = gpu._end_to_end(tmp_path, get_settings(), "cpu", clips=2, cpu_clips=1, threads=2)
    cases = [case for _, case, _ in rows]
    assert cases == [
        "Pipeline.analyze on cpu, 2 10 s 720p clips at 32 frames, 1 thread(s)",
        "  stages per video on cpu, means",
        "Pipeline.analyze on cpu, 2 10 s 720p clips at 32 frames, 2 thread(s)",
        "Pipeline.analyze on cpu, 1 10 s 720p clips at 32 frames, 1 thread(s)",
        "  stages per video on cpu, means",
    ]
    for _, case, result in rows:
        if case.startswith("  stages"):
            assert result.startswith("total "), result  # slowest first: the whole analysis
            assert " frames " in result, result
            continue
        videos, crops = result.split(", ")
        assert float(videos.split()[0]) > 0, result
        assert float(crops.split()[0]) > 0, result
    assert len({p.read_bytes() for p in (tmp_path / "gpu-clips").iterdir()}) == 2  # distinct clips
