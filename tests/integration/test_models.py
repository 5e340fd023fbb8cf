"""Classifier contract, registry, manifest, weights verification/import/fetch and the CLI."""

from __future__ import annotations

import argparse
import functools
import hashlib
import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from detector.errors import (
    DuplicateModel,
    InvalidRequest,
    ModelError,
    UnknownModel,
    WeightsChecksumMismatch,
    WeightsMissing,
)
from detector.models import (
    InputSpec,
    create_model,
    list_architectures,
    list_models,
    parse_model_name,
)
from detector.models import _registry as registry
from detector.models._importing import fetch_weights, import_weights
from detector.models._manifest import default_manifest_path, load_manifest
from detector.models._weights import sha256_file, write_safetensors

MESONET = ["meso4.df", "meso4.f2f", "mesoinception4.df", "mesoinception4.f2f"]


@pytest.fixture(scope="module")
def mesonet_dir(shared_data: Path) -> Path:
    return shared_data / "weights" / "mesonet"


@pytest.fixture(scope="module")
def imported(mesonet_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four MesoNet checkpoints imported once into a temporary cache folder."""
    out = tmp_path_factory.mktemp("weights")
    import_weights("mesonet", mesonet_dir, out)
    return out


# --- names and registry -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("meso4.df", ("meso4", "df")),
        ("mesoinception4.f2f", ("mesoinception4", "f2f")),
        ("a_1.b_2", ("a_1", "b_2")),
    ],
)
def test_parse_model_name_accepts_arch_dot_tag(name: str, expected: tuple[str, str]) -> None:
    assert parse_model_name(name) == expected


@pytest.mark.parametrize(
    "name",
    [
        "meso4",
        "meso4.",
        ".df",
        "Meso4.DF",
        "meso4.DF",
        "a.b.c",
        "meso4 .df",
        " meso4.df",
        "meso4.df\n",
        "",
        "meso-4.df",
        "4meso.df",
    ],
)
def test_parse_model_name_rejects_everything_else(name: str) -> None:
    with pytest.raises(UnknownModel) as info:
        parse_model_name(name)
    assert info.value.code == "unknown_model"
    assert info.value.http_status == 400


@pytest.fixture
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registrations made by a test do not leak into the process-wide registry."""
    registry.list_architectures()
    monkeypatch.setattr(registry, "_ARCHS", dict(registry._ARCHS))
    monkeypatch.setattr(registry, "_IMPORTERS", dict(registry._IMPORTERS))


@pytest.mark.usefixtures("isolated_registry")
def test_duplicate_registration_raises_and_keeps_the_first() -> None:
    first = registry.get_architecture("meso4").factory
    with pytest.raises(DuplicateModel):
        registry.register_model("meso4")(lambda: torch.nn.Identity())
    assert registry.get_architecture("meso4").factory is first

    registry.register_model("toy")(lambda: torch.nn.Identity())
    with pytest.raises(DuplicateModel) as info:
        registry.register_model("toy")(lambda: torch.nn.Identity())
    assert info.value.code == "duplicate_model"
    with pytest.raises(DuplicateModel):
        registry.register_importer("mesonet")(lambda path, entry: {})


@pytest.mark.usefixtures("isolated_registry")
def test_architecture_names_are_validated() -> None:
    with pytest.raises(ModelError):
        registry.register_model("Bad.Name")


def test_list_models_and_architectures() -> None:
    assert {"meso4", "mesoinception4"} <= set(list_architectures())
    assert set(MESONET) <= set(list_models())
    assert list_models("meso4.*") == ["meso4.df", "meso4.f2f"]
    assert list_models("*.f2f") == ["meso4.f2f", "mesoinception4.f2f"]
    assert list_models("nothing*") == []


def test_unknown_model_names_the_known_ones() -> None:
    with pytest.raises(UnknownModel) as info:
        create_model("meso4.nope", pretrained=False)
    assert "meso4.df" in info.value.message
    with pytest.raises(UnknownModel):
        create_model("Meso4.DF", pretrained=False)


def test_a_manifest_lookup_without_the_registry_agrees_with_it() -> None:
    from detector.models._manifest import manifest_entry

    for name in list_models():
        assert manifest_entry(name) == registry.get_entry(name)
    with pytest.raises(UnknownModel) as info:
        manifest_entry("meso4.nope")
    assert "meso4.df" in info.value.message


# --- manifest -----------------------------------------------------------------------------------


def test_manifest_entries_carry_the_checkpoint_preprocessing() -> None:
    manifest = load_manifest()
    assert load_manifest() is manifest  # parsed once per path
    for name in MESONET:
        entry = manifest.models[name]
        assert entry.task == "face_forgery"
        assert entry.input.size == (256, 256)
        assert entry.input.crop_margin == pytest.approx(1.3)
        assert entry.raw_logit_positive == "real"
        assert entry.licence == "Apache-2.0"
        assert "Afchar" in (entry.source.notice or "")
        assert entry.source.upstream_urls[0].startswith("https://github.com/DariusAf/MesoNet/")


def _write_manifest(tmp_path: Path, edit: str, new: str) -> Path:
    text = default_manifest_path().read_text().replace(edit, new, 1)
    path = tmp_path / "manifest.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("edit", "new"),
    [
        ('task = "face_forgery"', 'task = "face_forgery"\nsurprise = 1'),  # unknown key
        ('task = "face_forgery"', 'task = "faces"'),  # unknown task
        ('arch = "meso4"', 'arch = "mesoinception4"'),  # name prefix != arch
        ('file = "meso4.df.safetensors"', 'file = "other.safetensors"'),
        ('kind = "import"', 'kind = "shipped"'),  # shipped with upstream urls
        ("schema_version = 1", "schema_version = 2"),
    ],
)
def test_manifest_is_validated_strictly(tmp_path: Path, edit: str, new: str) -> None:
    with pytest.raises(ModelError, match="invalid weights manifest"):
        load_manifest(_write_manifest(tmp_path, edit, new))


# --- the classifier contract ----------------------------------------------------------------------


def test_input_spec_scales_normalises_and_resizes() -> None:
    spec = InputSpec(size=(4, 6), mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0), value_range=(0.0, 1.0))
    image = np.full((8, 12, 3), 255, dtype=np.uint8)
    batch = spec.to_array([image, np.zeros((2, 3, 3), dtype=np.uint8)])
    assert batch.shape == (2, 3, 4, 6)
    assert batch.dtype == np.float32
    np.testing.assert_allclose(batch[0, :, 0, 0], [2.0, 1.0, 0.5])
    np.testing.assert_allclose(batch[1, :, 0, 0], [-2.0, -1.0, -0.5])


@pytest.mark.parametrize(
    "bad", [np.zeros((8, 8), np.uint8), np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8, 3), np.float32)]
)
def test_predict_rejects_what_is_not_rgb_uint8(bad: np.ndarray) -> None:
    model = create_model("meso4.df", pretrained=False)
    with pytest.raises(InvalidRequest):
        model.predict([bad])


def test_predict_chunks_batches_and_uses_the_fake_sign(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    model = create_model("meso4.df", pretrained=False)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (h, h, 3), dtype=np.uint8) for h in (256, 300, 200, 256, 256)]
    whole = model.predict(images)
    assert whole.shape == (5,)
    assert whole.dtype == np.float32
    assert model.chunk == model.cpu_batch < model.max_batch  # on a CPU: passes that stay in cache
    monkeypatch.setattr(model, "cpu_batch", 2)
    sizes: list[int] = []
    forward = model.forward
    monkeypatch.setattr(model, "forward", lambda batch: sizes.append(len(batch)) or forward(batch))
    np.testing.assert_allclose(model.predict(images), whole, atol=1e-5)
    assert sizes == [2, 2, 1]
    assert model.predict([]).shape == (0,)
    with torch.inference_mode():
        raw = model.module(model.preprocess(images)).reshape(-1).numpy()
    np.testing.assert_allclose(whole, -raw, atol=1e-5)  # MesoNet's raw output is the log-odds of real
    monkeypatch.setattr(model, "device", torch.device("cuda"))
    assert model.chunk == model.max_batch  # a GPU takes the large passes


# --- weights: import, verify, fetch ---------------------------------------------------------------


def test_import_produces_the_manifest_sha256_and_records_the_source(imported: Path) -> None:
    manifest = load_manifest()
    for name in MESONET:
        entry = manifest.models[name]
        path = imported / entry.file
        assert sha256_file(path) == entry.sha256
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata()
        assert meta["source_sha256"] == entry.source.upstream_sha256
        assert meta["source_file"] == entry.source.upstream_file
        model = create_model(name, weights_dir=imported)
        assert model.name == name
        assert model.spec.size == (256, 256)
    assert not list(imported.glob("*.part"))


def test_write_safetensors_is_deterministic_and_readable(tmp_path: Path) -> None:
    tensors = {"b.w": np.arange(6, dtype=np.float32).reshape(2, 3), "a": np.zeros((), np.int64)}
    write_safetensors(tmp_path / "1.safetensors", tensors, {"z": "1", "a": "2", "m": "3"})
    write_safetensors(
        tmp_path / "2.safetensors", dict(reversed(tensors.items())), {"m": "3", "a": "2", "z": "1"}
    )
    assert (tmp_path / "1.safetensors").read_bytes() == (tmp_path / "2.safetensors").read_bytes()
    with safe_open(str(tmp_path / "1.safetensors"), framework="np") as fh:
        np.testing.assert_array_equal(fh.get_tensor("b.w"), tensors["b.w"])
        assert fh.metadata() == {"z": "1", "a": "2", "m": "3"}


def test_missing_weights_say_how_to_obtain_them(tmp_path: Path) -> None:
    with pytest.raises(WeightsMissing) as info:
        create_model("meso4.df", weights_dir=tmp_path)
    assert info.value.code == "weights_missing"
    assert "trueframe weights import mesonet --from DIR" in info.value.message
    assert "trueframe weights fetch mesonet" in info.value.message


def test_corrupted_weights_are_refused(imported: Path, tmp_path: Path) -> None:
    data = bytearray((imported / "meso4.df.safetensors").read_bytes())
    data[-5] ^= 0xFF
    (tmp_path / "meso4.df.safetensors").write_bytes(bytes(data))
    with pytest.raises(WeightsChecksumMismatch) as info:
        create_model("meso4.df", weights_dir=tmp_path)
    assert info.value.code == "weights_checksum_mismatch"


def test_upstream_file_with_wrong_sha256_is_refused(mesonet_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(mesonet_dir / "Meso4_DF.h5", src / "Meso4_DF.h5")
    with (src / "Meso4_DF.h5").open("ab") as fh:
        fh.write(b"\0")
    out = tmp_path / "out"
    with pytest.raises(WeightsChecksumMismatch, match="refusing to import"):
        import_weights("mesonet", src, out, names=["meso4.df"])
    assert not out.exists() or not any(out.iterdir())
    with pytest.raises(WeightsMissing, match=r"MesoInception_DF\.h5"):
        import_weights("mesonet", src, out, names=["mesoinception4.df"])
    with pytest.raises(UnknownModel, match="weights family"):
        import_weights("nosuchfamily", src, out)
    with pytest.raises(UnknownModel, match="not in weights family"):
        import_weights("mesonet", src, out, names=["meso4.nope"])


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def local_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTP server on 127.0.0.1 serving a temporary folder: (base URL, folder)."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/weights", root
    finally:
        server.shutdown()
        server.server_close()


def _serve_authors_files(root: Path, mesonet_dir: Path) -> None:
    """Put the MesoNet authors' .h5 files where the local server answers ``/weights/<file>``."""
    (root / "weights").mkdir()
    for h5 in mesonet_dir.glob("*.h5"):
        shutil.copy(h5, root / "weights" / h5.name)


def test_fetch_downloads_verifies_and_imports(
    local_server: tuple[str, Path], mesonet_dir: Path, tmp_path: Path
) -> None:
    base_url, root = local_server
    _serve_authors_files(root, mesonet_dir)
    out = tmp_path / "cache"
    paths = fetch_weights("mesonet", out, base_url=base_url, timeout=10)
    manifest = load_manifest()
    assert sorted(p.path.name for p in paths) == sorted(manifest.models[n].file for n in MESONET)
    assert all(p.added for p in paths)
    for path, _ in paths:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == manifest.models[path.stem].sha256
    assert sorted(p.name for p in out.iterdir()) == sorted(p.path.name for p in paths)  # nothing partial


def test_fetch_failures_are_typed_and_leave_nothing(local_server: tuple[str, Path], tmp_path: Path) -> None:
    base_url, root = local_server
    out = tmp_path / "cache"
    with pytest.raises(WeightsMissing, match="could not download"):
        fetch_weights("mesonet", out, base_url=base_url, timeout=10)  # 404
    (root / "weights").mkdir()
    for name in ("Meso4_DF", "Meso4_F2F", "MesoInception_DF", "MesoInception_F2F"):
        (root / "weights" / f"{name}.h5").write_bytes(b"not the authors' file")
    with pytest.raises(WeightsChecksumMismatch):
        fetch_weights("mesonet", out, base_url=base_url, timeout=10)
    assert not out.exists() or not any(out.iterdir())
    with pytest.raises(WeightsMissing, match="could not download"):
        fetch_weights("mesonet", out, base_url="http://127.0.0.1:9", timeout=5)  # nothing listens
    with pytest.raises(UnknownModel, match="weights family"):
        fetch_weights("nosuchfamily", out, base_url=base_url, timeout=5)


def test_fetch_with_a_bad_third_file_names_its_url_and_installs_nothing(
    local_server: tuple[str, Path], mesonet_dir: Path, tmp_path: Path
) -> None:
    base_url, root = local_server
    _serve_authors_files(root, mesonet_dir)
    with (root / "weights" / "MesoInception_DF.h5").open("ab") as fh:
        fh.write(b"\0")
    out = tmp_path / "cache"
    with pytest.raises(WeightsChecksumMismatch) as info:
        fetch_weights("mesonet", out, base_url=base_url, timeout=10)
    message = info.value.message
    assert f"{base_url}/MesoInception_DF.h5 has sha256 " in message
    expected = load_manifest().models["mesoinception4.df"].source.upstream_sha256
    assert expected is not None
    assert f"not the upstream file the manifest names ({expected})" in message
    assert "trueframe-fetch-" not in message
    assert "nothing was installed" in message
    assert not out.exists() or not any(out.iterdir())


# --- CLI ----------------------------------------------------------------------------------------


def _cli(argv: list[str]) -> int:
    from serving import cli

    return cli.main(argv)


def test_every_listed_command_module_registers_its_command() -> None:
    """A module missing from ``COMMAND_MODULES`` or failing to import breaks the whole CLI."""
    from serving import cli

    parser = cli.build_parser()
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    commands = set(sub.choices)
    assert {"analyze", "models", "weights", "provenance", "keys", "scan", "serve", "schema"} <= commands
    assert {m.rsplit(".", 1)[1] for m in cli.COMMAND_MODULES} <= commands


def test_cli_models_reports_weight_states(
    imported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(["models", "--json", "--weights-dir", str(imported)]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(MESONET) <= set(rows)
    assert all(rows[n]["weights"] == "verified" and rows[n]["licence"] == "Apache-2.0" for n in MESONET)

    assert _cli(["models", "--weights-dir", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "meso4.df" in text
    assert "missing" in text
    assert "trueframe weights import mesonet --from DIR" in text
    assert "checksum_mismatch" not in text


def test_cli_models_tells_a_checksum_mismatch_from_missing_weights(
    imported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(imported / "meso4.f2f.safetensors", tmp_path / "meso4.df.safetensors")  # wrong bytes
    shutil.copy(imported / "meso4.f2f.safetensors", tmp_path / "meso4.f2f.safetensors")
    assert _cli(["weights", "list", "--json", "--weights-dir", str(tmp_path)]) == 0
    states = {r["name"]: r["weights"] for r in json.loads(capsys.readouterr().out)}
    assert states["meso4.df"] == "checksum_mismatch"
    assert states["meso4.f2f"] == "verified"

    assert _cli(["models", "--weights-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    table = {line.split()[0]: line.split()[2] for line in lines[1:] if line.startswith("meso")}
    assert {n: table[n] for n in MESONET} == {n: s for n, s in states.items() if n in MESONET}
    hints = [line for line in lines if line.startswith("weights ")]
    assert hints == [
        "weights missing (mesoinception4.df, mesoinception4.f2f): run trueframe weights import "
        "mesonet --from DIR (or: trueframe weights fetch mesonet)",
        "weights checksum_mismatch (meso4.df: sha256 differs from the manifest): delete "
        f"{tmp_path / 'meso4.df.safetensors'}, then run trueframe weights import mesonet --from DIR "
        "(or: trueframe weights fetch mesonet)",
    ]


def test_cli_weights_import_and_list(
    mesonet_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cache"
    argv = ["weights", "import", "mesonet", "--from", str(mesonet_dir), "--weights-dir", str(out)]
    assert _cli(argv) == 0
    assert capsys.readouterr().out.count("imported ") == len(MESONET)
    assert _cli(argv) == 0  # again: every file is verified in place, none is said to be imported
    again = capsys.readouterr().out.splitlines()
    assert sorted(again) == sorted(
        f"already in place (sha256 verified) {out / f'{n}.safetensors'}" for n in MESONET
    )
    assert _cli(["weights", "list", "--json", "--weights-dir", str(out)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"]: r["weights"] for r in rows if r["family"] == "mesonet"} == dict.fromkeys(
        MESONET, "verified"
    )

    empty = tmp_path / "empty"
    empty.mkdir()
    argv = ["weights", "import", "mesonet", "--from", str(empty), "--weights-dir", str(out)]
    assert _cli(argv) == 2
    assert capsys.readouterr().err.startswith("error: weights_missing:")
