"""`trueframe serve` refuses a configuration every analysis would fail on, before it starts anything.

Before: the service started with an unknown face model, a corrupt weights file or a missing trust
anchor file; `/readyz` said "models are not loaded (weights missing?)" whatever the cause (a missing
trust file even passed it), and every upload answered the error (`400 unknown_model` blaming the
client, `503`, or `500 provenance_config_invalid`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from serving.cli import serve as serve_cli


@pytest.fixture
def nothing_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any) -> int:
        raise AssertionError("the service must not start")

    monkeypatch.setattr(serve_cli, "_serve_in_process", fail)
    monkeypatch.setattr(serve_cli, "_serve_ray", fail)


def _serve(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    from serving.cli import main

    assert main(["serve", "--data-dir", str(tmp_path / "data"), "--port", "0", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    return err


@pytest.mark.usefixtures("nothing_starts")
@pytest.mark.parametrize("extra", [[], ["--no-ray"]])
@pytest.mark.parametrize("name", ["nope.x", ""])
def test_an_unknown_model_is_refused_naming_its_setting(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    name: str,
) -> None:
    """An empty face model too: the synthetic-image model is the only one that may be none."""
    monkeypatch.setenv("TRUEFRAME_MODELS__FACE_MODEL", name)
    err = _serve(tmp_path, capsys, *extra)
    assert err.startswith(f"error: unknown_model: TRUEFRAME_MODELS__FACE_MODEL: unknown model {name!r}"), err


@pytest.mark.usefixtures("nothing_starts")
def test_corrupt_or_missing_weights_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = tmp_path / "weights"
    weights.mkdir()
    monkeypatch.setenv("TRUEFRAME_MODELS__WEIGHTS_DIR", str(weights))
    monkeypatch.setenv("TRUEFRAME_MODELS__FACE_MODEL", "meso4.df")  # an imported model: in the cache
    assert _serve(tmp_path, capsys, "--no-ray").startswith("error: weights_missing: weights for meso4.df")
    (weights / "meso4.df.safetensors").write_bytes(b"not the weights")
    assert _serve(tmp_path, capsys, "--no-ray").startswith("error: weights_checksum_mismatch: ")


@pytest.mark.usefixtures("nothing_starts")
def test_a_missing_trust_anchor_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRUEFRAME_PROVENANCE__TRUST_ANCHORS", f'["{tmp_path / "missing.pem"}"]')
    err = _serve(tmp_path, capsys, "--no-ray")
    assert err.startswith("error: provenance_config_invalid: cannot read the trust anchor file "), err


def test_a_scan_refuses_a_missing_trust_anchor_file_before_any_analysis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: the scan ran and exited 0, each media item with a provenance_config_invalid row."""
    from detector.settings import get_settings
    from serving.cli.scan import main

    source = tmp_path / "src"
    source.mkdir()
    (source / "notes.txt").write_text("not media\n")
    out = tmp_path / "rows.jsonl"
    monkeypatch.setenv("TRUEFRAME_PROVENANCE__TRUST_ANCHORS", f'["{tmp_path / "missing.pem"}"]')
    get_settings.cache_clear()  # `scan` reads the process-wide settings, maybe cached by an earlier test
    try:
        assert main([str(source), "--out", str(out), "--no-progress"]) == 2
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: provenance_config_invalid: cannot read the trust anchor file "), err
    assert not out.exists()


@pytest.mark.parametrize("extra", [[], ["--no-ray"]])
def test_a_port_in_use_is_one_line_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    """Before: `--no-ray` printed "trueframe (in process) at http://127.0.0.1:PORT/", then uvicorn
    logged the bind error and the command exited 3."""
    import socket

    from serving.ray import runtime

    monkeypatch.setattr(runtime, "init_ray", lambda *a, **k: pytest.fail("Ray must not start"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        err = _serve(tmp_path, capsys, "--port", str(port), *extra)
    assert err.startswith(f"error: invalid_request: cannot listen on 127.0.0.1:{port}: "), err
    assert "in use" in err


def test_every_address_a_host_name_resolves_to_is_listened_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """`localhost` may resolve to ``::1`` and ``127.0.0.1``: uvicorn listened on both, and the port
    check must not narrow that to the first (clients of the other address were refused)."""
    import socket

    from serving.cli import serve

    def two_addresses(host: str, port: int, **_: object) -> list[tuple[object, ...]]:
        kind = (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "")
        return [(*kind, ("127.0.0.1", port)), (*kind, ("127.0.0.2", port)), (*kind, ("127.0.0.1", port))]

    monkeypatch.setattr(serve.socket, "getaddrinfo", two_addresses)
    socks = serve.listen_sockets("both-loopbacks", 0)
    try:
        names = [s.getsockname() for s in socks]
        assert [n[0] for n in names] == ["127.0.0.1", "127.0.0.2"]  # each address once
        assert names[0][1] == names[1][1] != 0  # port 0: one port for all of them
    finally:
        for sock in socks:
            sock.close()


def test_a_cluster_s_port_is_not_checked_on_this_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With ``RAY_ADDRESS`` Serve's proxies bind on the cluster's nodes, where this machine cannot
    tell whether the port is free (a running cluster's proxy may already hold it): Ray is joined."""
    import socket

    from serving.ray import runtime

    def join(*args: object, **kwargs: object) -> bool:
        raise runtime.RayStartError("joining the cluster was reached")

    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")
    monkeypatch.setattr(runtime, "init_ray", join)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        err = _serve(tmp_path, capsys, "--port", str(port))
    assert err == "error: ray_start_failed: joining the cluster was reached", err
