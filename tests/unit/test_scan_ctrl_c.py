"""Ctrl-C during a scan is never lost (:class:`serving.cli.scan.CtrlC`), though CPython drops a
KeyboardInterrupt raised inside a callback whose exceptions it ignores."""

from __future__ import annotations

import shutil
import signal
import weakref
from pathlib import Path

import pytest

from detector.settings import get_settings
from serving.cli import scan as scan_cli
from serving.scan.output import read_jsonl

# the dropped KeyboardInterrupt is what these tests are about: pytest reports it as unraisable
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
PHOTOS = [f"synthetic/real/kodak24/kodim0{i}.png" for i in range(1, 7)]


def _dropped_ctrl_c() -> None:
    """Ctrl-C whose KeyboardInterrupt lands in a weakref callback, where CPython prints it as
    "Exception ignored" and drops it (as it did in an import lock's callback, 2026-12-05)."""

    class Thing:
        pass

    def callback(_: object) -> None:
        signal.raise_signal(signal.SIGINT)  # the handler runs here, in the callback

    thing = Thing()
    ref = weakref.ref(thing, callback)
    del thing  # the callback runs, and its KeyboardInterrupt is dropped
    assert ref() is None


def test_a_dropped_interrupt_raises_nothing_by_itself() -> None:
    """The premise: with the default handler, the press is gone once the callback returns."""
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    _dropped_ctrl_c()  # no KeyboardInterrupt reaches here


def test_the_handler_remembers_a_press_and_is_restored_after() -> None:
    ctrl_c = scan_cli.CtrlC()
    with ctrl_c.installed():
        ctrl_c.check()  # not pressed: nothing
        _dropped_ctrl_c()
        assert ctrl_c.pressed
        with pytest.raises(KeyboardInterrupt):
            ctrl_c.check()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def _interrupted_scan(
    shared_data: Path, tmp_path: Path, photos: list[str], capsys: pytest.CaptureFixture[str]
) -> list[dict[str, object]]:
    """Scan ``photos`` in this process, one worker; asserts the scan says it was interrupted (exit 130,
    the handler restored) and returns the rows it wrote."""
    source = tmp_path / "media"
    source.mkdir()
    for name in photos:
        shutil.copy(shared_data / name, source / Path(name).name)
    out = tmp_path / "rows.jsonl"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TRUEFRAME_SCAN__EXECUTOR", "local")
        env.setenv("TRUEFRAME_SCAN__ACTORS", "1")  # one worker: the rows come one by one
        get_settings.cache_clear()
        try:
            code = scan_cli.main([str(source), "--out", str(out), "--no-progress"])
        finally:
            get_settings.cache_clear()
    assert code == 130
    assert scan_cli.INTERRUPTED in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    return read_jsonl(out) if out.exists() else []


def test_a_scan_whose_ctrl_c_was_dropped_stops_at_the_next_row(
    shared_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Before, the scan ran on to its last item and exited 0."""
    written = scan_cli.Progress.written_rows

    def press_once(progress: scan_cli.Progress, rows: list[dict[str, object]]) -> None:
        written(progress, rows)
        if progress.written == len(rows):  # the first rows: Ctrl-C, dropped
            _dropped_ctrl_c()

    monkeypatch.setattr(scan_cli.Progress, "written_rows", press_once)
    assert 0 < len(_interrupted_scan(shared_data, tmp_path, PHOTOS, capsys)) < len(PHOTOS)


def test_a_ctrl_c_dropped_while_listing_stops_the_scan_before_any_analysis(
    shared_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A large folder or bucket takes a while to list: a press dropped then is not lost either."""
    from serving.scan import source

    listed = source.list_source

    def list_and_press(*args: object) -> list[object]:
        items = listed(*args)  # type: ignore[arg-type]
        _dropped_ctrl_c()
        return list(items)

    monkeypatch.setattr(source, "list_source", list_and_press)
    assert _interrupted_scan(shared_data, tmp_path, PHOTOS[:1], capsys) == []
