"""Deployment logic without a Ray cluster: the shipped serve config, user_config and GPU shares.

(Serve's ``_local_testing_mode`` cannot run ``@serve.batch`` methods called from another deployment
in Ray 2.60: the batch queue asks for a replica context that only real replicas have. The analyzer
over the deployments is tested against the real app in ``tests/e2e/test_serve_app.py``.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from detector.errors import InvalidRequest
from detector.settings import (
    FaceSettings,
    FusionSettings,
    LimitSettings,
    ProvenanceSettings,
    SamplingSettings,
    Settings,
)
from serving.ray.app import DEPLOYMENTS, ServeConfig, _deployment, load_config

CORES = 2.0  # the development machine: every replica must fit, or serve.run waits forever


def test_shipped_config_names_every_deployment_and_fits_on_two_cores() -> None:
    config = load_config()
    assert set(config.deployments) == set(DEPLOYMENTS)
    cpus = sum(
        d.get("num_replicas", 1) * d["ray_actor_options"]["num_cpus"] for d in config.deployments.values()
    )
    assert cpus <= CORES - 0.25, "leave room for the Serve controller and proxy"
    assert config.deployments["ingress"]["num_replicas"] == 1, "one job worker per SQLite store"


@pytest.mark.parametrize(
    ("name", "method"), [("faces", "detect"), ("face_model", "predict"), ("synthetic_model", "predict")]
)
def test_shipped_batch_settings_reach_the_batched_method_and_can_fill(name: str, method: str) -> None:
    """A batch larger than ``max_ongoing_requests`` could never fill: every call would wait it out."""
    from serving.ray import deployments

    options = load_config().deployments[name]
    user = options["user_config"]
    assert set(user) == {"max_batch_size", "batch_wait_timeout_s"}
    assert 1 < user["max_batch_size"] <= options["max_ongoing_requests"]
    assert user["batch_wait_timeout_s"] == 0, (
        "an idle replica starts at once (any wait is latency on every single image); under load a "
        "batch fills from the calls that queued while the replica computed"
    )
    classes = {"faces": deployments.FaceDeployment, "face_model": deployments.FaceModelDeployment}
    classes["synthetic_model"] = deployments.SyntheticModelDeployment
    replica: Any = object.__new__(cast(Any, classes[name]).func_or_class)  # no model is built
    batched = getattr(replica, method)
    assert batched._get_batch_wait_timeout_s() == user["batch_wait_timeout_s"], "decorator and config agree"
    assert batched._get_max_batch_size() == user["max_batch_size"], "decorator and config agree"
    for config in ({"max_batch_size": 3, "batch_wait_timeout_s": 0.5}, user):  # the shipped one last
        replica.reconfigure(config)
        assert batched._get_max_batch_size() == config["max_batch_size"]
        assert batched._get_batch_wait_timeout_s() == config["batch_wait_timeout_s"]


def test_shipped_config_is_also_a_valid_ray_serve_deploy_config() -> None:
    import yaml
    from ray.serve.schema import ServeDeploySchema

    from serving.ray.app import DEFAULT_CONFIG

    schema = ServeDeploySchema.model_validate(yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8")))
    app = schema.applications[0]
    assert app.import_path == "serving.ray.app:app_builder"
    assert [d.name for d in app.deployments] == list(DEPLOYMENTS)


@pytest.mark.parametrize(
    "yaml_text",
    [
        "applications:\n  - name: x\n    deployments:\n      - name: nosuch\n",
        "applications:\n  - name: x\n    deployments:\n      - name: faces\n        replicas: 2\n",
        "deployments: []\n",
        "applications: [\n",
    ],
    ids=["unknown-deployment", "unknown-key", "no-applications", "broken-yaml"],
)
def test_bad_serve_config_is_a_typed_error(tmp_path: Path, yaml_text: str) -> None:
    path = tmp_path / "serve.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    with pytest.raises(InvalidRequest, match="serve config"):
        load_config(path)


def test_models_get_a_gpu_share_only_when_the_cluster_has_gpus() -> None:
    from serving.ray.deployments import FaceDeployment, MediaDeployment

    config = ServeConfig(deployments={"faces": {"ray_actor_options": {"num_cpus": 0.4}}})
    on_gpu = _deployment(FaceDeployment, "faces", config, gpus=1.0)
    assert on_gpu.ray_actor_options == {"num_cpus": 0.4, "num_gpus": 0.3}
    assert "num_gpus" not in (_deployment(FaceDeployment, "faces", config, gpus=0.0).ray_actor_options or {})
    assert "num_gpus" not in (_deployment(MediaDeployment, "media", config, gpus=1.0).ray_actor_options or {})
    pinned = ServeConfig(deployments={"faces": {"ray_actor_options": {"num_gpus": 1.0}}})
    decorator_cpus = cast(Any, FaceDeployment).ray_actor_options["num_cpus"]
    merged = _deployment(FaceDeployment, "faces", pinned, gpus=1.0).ray_actor_options
    assert merged == {"num_cpus": decorator_cpus, "num_gpus": 1.0}, (
        "config options merge over the decorator's"
    )


def test_user_config_sets_batching_live_and_refuses_thresholds() -> None:
    """Thresholds come from the settings only, so Ray and in-process answer alike."""
    from serving.ray.deployments import FaceDeployment

    replica: Any = cast(Any, FaceDeployment).func_or_class(Settings())
    before = (replica.detect._get_max_batch_size(), replica.detect._get_batch_wait_timeout_s())
    replica.reconfigure({"max_batch_size": 4, "batch_wait_timeout_s": 0.5})
    assert (
        (replica.detect._get_max_batch_size(), replica.detect._get_batch_wait_timeout_s())
        == (4, 0.5)
        != before
    )
    with pytest.raises(ValueError, match="unknown user_config"):
        replica.reconfigure({"min_probability": 0.6})
    assert replica.extractor.settings.min_probability == Settings().faces.min_probability
    with pytest.raises(ValueError, match="unknown user_config"):
        replica.reconfigure({"max_batch": 4})


def _keys_and_words(node: Any) -> Iterator[str]:
    """Every mapping key and every word of every string anywhere in a parsed YAML document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from _keys_and_words(value)
    elif isinstance(node, list):
        for value in node:
            yield from _keys_and_words(value)
    elif isinstance(node, str):
        yield from re.findall(r"[A-Za-z_][A-Za-z0-9_]*", node)


def test_shipped_serve_config_carries_no_thresholds() -> None:
    """Thresholds come from the TRUEFRAME_* settings only: nowhere in the YAML (user_config,
    runtime_env variables, application args), so Ray and in-process always answer alike."""
    import yaml

    from serving.ray.app import DEFAULT_CONFIG

    for name, options in load_config().deployments.items():
        assert set(options.get("user_config") or {}) <= {"max_batch_size", "batch_wait_timeout_s"}, name
    doc = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    words = set(_keys_and_words(doc))
    tunable = {
        *FaceSettings.model_fields, *FusionSettings.model_fields, *SamplingSettings.model_fields,
        *ProvenanceSettings.model_fields, *LimitSettings.model_fields,
    } - {"batch_size"}  # fmt: skip
    assert words & tunable == set()
    assert not [w for w in words if w.upper().startswith("TRUEFRAME_")]
    assert all(app.get("args") in ({}, None) for app in doc["applications"])


def test_serve_address_comes_from_flags_then_environment_then_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import argparse

    from serving.cli.serve import _pick, register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["serve", "--port", "9100", "--data-dir", str(tmp_path), "--no-ray"])
    assert (args.port, args.data_dir, args.no_ray, args.host) == (9100, tmp_path, True, None)
    config = ServeConfig(http={"host": "0.0.0.0", "port": 8100})
    assert _pick(Settings(), config, "port") == 8100
    assert _pick(Settings(), ServeConfig(), "host") == "127.0.0.1"
    monkeypatch.setenv("TRUEFRAME_SERVE__PORT", "8200")
    assert _pick(Settings(), config, "port") == 8200
    assert _pick(Settings(), config, "host") == "0.0.0.0"
