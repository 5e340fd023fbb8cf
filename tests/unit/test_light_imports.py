"""What runs before any model stays light: no model framework is imported.

Every ``trueframe`` command builds the whole parser first, so a heavy import in any sub-command's
``register`` is paid by all of them; ``trueframe scan`` on Ray runs its models in Ray actors, and
its driver (the result key, the model check, the choice of executor) never needs torch: on two
cores every second the driver spends importing is taken from the actors starting beside it.
Checked in a fresh interpreter, since this test process has long since imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "torchvision", "sklearn", "scipy", "cv2", "ray", "matplotlib", "facenet_pytorch")


def _modules_after(code: str) -> set[str]:
    probe = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    command = [sys.executable, "-c", probe]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_building_the_parser_imports_no_model_framework() -> None:
    loaded = _modules_after("from serving.cli import build_parser\nbuild_parser()")
    assert "serving.cli.evaluate" in loaded  # every sub-command registered
    assert "serving.cli.scan" in loaded
    assert sorted(m for m in HEAVY if m in loaded) == []


def test_the_scan_driver_checks_models_and_keys_results_without_torch() -> None:
    loaded = _modules_after(
        "from detector.settings import get_settings\n"
        "from serving.scan.run import check_models, model_versions\n"
        "settings = get_settings()\n"
        "check_models(settings)\n"
        "assert len(model_versions(settings, 8)) == 64\n"
        "from serving.scan.local import choose_executor\n"
        "ray = settings.scan.model_copy(update={'executor': 'ray'})\n"
        "assert choose_executor(settings.model_copy(update={'scan': ray})) == 'ray'"
    )
    assert "detector.models._weights" in loaded  # the weights were really checked
    allowed = {"cv2"}  # the manifest's input spec names OpenCV's interpolations (0.14 s to import)
    assert sorted(m for m in HEAVY if m in loaded and m not in allowed) == []


def test_the_one_model_evaluation_keeps_its_options() -> None:
    from serving.cli import build_parser

    args = build_parser().parse_args(["evaluate", "--model", "meso4.df", "--layout", "ffpp", "--frames", "4"])
    assert (args.model, args.layout, args.frames, args.device) == ("meso4.df", "ffpp", 4, "auto")
