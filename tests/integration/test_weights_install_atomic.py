"""A weights family installs all-or-nothing: ``weights import`` / ``weights fetch`` on a bad file.

Every file is verified and converted into a staging folder before any is moved into the weights
folder, so a failure on the third file leaves nothing behind and the error says so. Re-importing
the same files is idempotent; a different file already in place is refused, never overwritten.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from detector.errors import ModelError, WeightsChecksumMismatch, WeightsMissing
from detector.models import _importing
from detector.models._importing import import_weights
from detector.models._manifest import Manifest, load_manifest

MESONET = ["meso4.df", "meso4.f2f", "mesoinception4.df", "mesoinception4.f2f"]
THIRD = "MesoInception_DF.h5"  # the upstream file of mesoinception4.df, third in name order


@pytest.fixture
def src(shared_data: Path, tmp_path: Path) -> Path:
    """A private copy of the MesoNet authors' four ``.h5`` files, free to spoil."""
    folder = tmp_path / "src"
    shutil.copytree(shared_data / "weights" / "mesonet", folder)
    return folder


def _installed(weights_dir: Path) -> list[str]:
    """Everything in the weights folder, staging leftovers included."""
    return sorted(p.name for p in weights_dir.iterdir()) if weights_dir.exists() else []


def test_bad_third_file_installs_nothing_and_says_so(src: Path, tmp_path: Path) -> None:
    with (src / THIRD).open("ab") as fh:
        fh.write(b"\0")
    out = tmp_path / "cache"
    with pytest.raises(WeightsChecksumMismatch) as info:
        import_weights("mesonet", src, out)
    assert str(src / THIRD) in info.value.message
    assert "mesoinception4.df" in info.value.message
    assert "nothing was installed" in info.value.message
    assert _installed(out) == []


def test_missing_third_file_installs_nothing(src: Path, tmp_path: Path) -> None:
    (src / THIRD).unlink()
    out = tmp_path / "cache"
    with pytest.raises(WeightsMissing, match=r"MesoInception_DF\.h5.*nothing was installed"):
        import_weights("mesonet", src, out)
    assert _installed(out) == []


def test_conversion_mismatch_installs_nothing(src: Path, tmp_path: Path) -> None:
    manifest = load_manifest()
    entry = manifest.models["mesoinception4.df"]
    spoiled = manifest.model_copy(
        update={
            "models": {**manifest.models, "mesoinception4.df": entry.model_copy(update={"sha256": "0" * 64})}
        }
    )
    assert isinstance(spoiled, Manifest)
    out = tmp_path / "cache"
    with pytest.raises(
        WeightsChecksumMismatch, match=r"converting .*MesoInception_DF\.h5.*nothing was installed"
    ):
        import_weights("mesonet", src, out, manifest=spoiled)
    assert _installed(out) == []


def test_reimport_is_idempotent(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "cache"
    first = import_weights("mesonet", src, out)
    assert all(added for _, added in first)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p, _ in first}
    second = import_weights("mesonet", src, out)
    assert [p for p, _ in second] == [p for p, _ in first]
    assert not any(added for _, added in second), "the second import puts nothing in place"
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p, _ in second} == before
    assert _installed(out) == sorted(f"{n}.safetensors" for n in MESONET)


def test_existing_different_file_is_refused_not_overwritten(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "cache"
    out.mkdir()
    mine = out / "mesoinception4.df.safetensors"
    mine.write_bytes(b"someone else's weights")
    with pytest.raises(WeightsChecksumMismatch) as info:
        import_weights("mesonet", src, out)
    assert str(mine) in info.value.message
    assert "refusing to overwrite" in info.value.message
    assert "nothing was installed" in info.value.message
    assert mine.read_bytes() == b"someone else's weights"
    assert _installed(out) == [mine.name]


def test_failed_rename_undoes_the_files_already_moved(
    src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real: Callable[..., None] = os.replace
    calls: list[str] = []

    def flaky(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> None:
        calls.append(str(b))
        if len(calls) == 3:
            raise OSError(errno.EACCES, "Permission denied", str(b))
        real(a, b)

    monkeypatch.setattr(_importing.os, "replace", flaky)
    out = tmp_path / "cache"
    with pytest.raises(ModelError, match=r"mesoinception4\.df\.safetensors.*nothing was installed"):
        import_weights("mesonet", src, out)
    assert len(calls) == 3
    assert _installed(out) == []


def test_cli_import_of_a_bad_family_exits_2_and_installs_nothing(
    src: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from serving import cli

    with (src / THIRD).open("ab") as fh:
        fh.write(b"\0")
    out = tmp_path / "cache"
    assert cli.main(["weights", "import", "mesonet", "--from", str(src), "--weights-dir", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: weights_checksum_mismatch:")
    assert THIRD in captured.err
    assert "nothing was installed" in captured.err
    assert _installed(out) == []
