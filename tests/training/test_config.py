"""Training configuration: YAML round trip, clear validation errors, presets, staged losses."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from unifmir.tasks import TASKS
from unifmir.training.config import (
    FINETUNE_LR,
    PRETRAIN_LR,
    ConfigError,
    TrainConfig,
    config_from_dict,
    finetune_config,
    load_config,
    pretrain_config,
    save_config,
)
from unifmir.training.losses import StagedL1
from unifmir.training.pretrain_model import TaskSampler


def test_yaml_round_trip(tmp_path: Path) -> None:
    cfg = pretrain_config({"sr": tmp_path / "sr", "denoise": tmp_path / "dn"}, "small", 50,
                          task_sampling="step", overrides={"early_stopping": {"enabled": True, "patience": 2}})
    path = save_config(cfg, tmp_path / "config.yaml")
    again = load_config(path)
    assert again == cfg
    assert yaml.safe_load(path.read_text())["mode"] == "pretrain"


def test_relative_paths_resolve_against_yaml(tmp_path: Path) -> None:
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "c.yaml").write_text("tasks: [sr]\ndata: {roots: {sr: ../data}}\n")
    cfg = load_config(tmp_path / "cfg" / "c.yaml")
    assert cfg.data.roots["sr"] == tmp_path / "cfg" / "../data"


@pytest.mark.parametrize(
    "data, expected",
    [
        ({"tasks": ["sr"], "data": {"roots": {"sr": "x"}}, "optim": {"lrr": 1}}, "optim.lrr: unknown setting"),
        ({"tasks": ["sr"], "data": {"roots": {"sr": "x"}}, "optim": {"lr": -1}}, "optim.lr"),
        ({"tasks": ["srx"], "data": {"roots": {}}}, "unknown task 'srx'"),
        ({"tasks": ["sr", "denoise"], "data": {"roots": {"sr": "a", "denoise": "b"}}}, "fine-tuning trains one task"),
        ({"tasks": ["sr"]}, "no dataset folder for task(s) ['sr']"),
        ({"tasks": ["sr"], "data": {"roots": {"sr": "x"}}, "device": "gpu"}, "device must be"),
        ({"tasks": ["sr"], "data": {"roots": {"sr": "x"}}, "schedule": {"milestones": [5, 2]}}, "increasing"),
    ],
)
def test_validation_errors_are_clear(data: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_dict(data, source="test")
    assert expected in str(err.value)
    assert "invalid training configuration (test)" in str(err.value)


def test_bad_yaml_file(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("tasks: [sr\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "missing.yaml")


def test_presets_follow_reference_recipes(tmp_path: Path) -> None:
    full = finetune_config("projection", tmp_path, preset="full")
    assert full.optim.lr == FINETUNE_LR and full.optim.betas == (0.9, 0.999)
    assert full.schedule.gamma == 0.5 and full.loss.kind == "l1"
    assert full.data.batch_for("projection") == TASKS["projection"].batch_size
    assert full.data.patch_for("projection") is None  # registry default
    assert full.model.preset == "full"
    pre = pretrain_config({t: tmp_path for t in TASKS}, preset="full")
    assert pre.optim.lr == PRETRAIN_LR and pre.task_sampling == "epoch"
    small = finetune_config("volumetric", tmp_path, preset="small")
    assert small.model.preset == "small"
    assert small.data.patch_for("volumetric") % 11 == 0
    assert small.data.batch_for("denoise") <= 4
    assert isinstance(small, TrainConfig)


def test_staged_loss_phases_from_registry() -> None:
    proj = StagedL1("projection", steps_per_epoch=10)
    assert proj.weights_at(0) == {"stage1": 0.001, "final": 1.0}
    assert proj.weights_at(299) == {"stage1": 0.001, "final": 1.0}
    assert proj.weights_at(300) == {"final": 1.0}
    vol = StagedL1("volumetric", steps_per_epoch=1, phase_steps=[5])
    assert vol.weights_at(4) == {"stage1": 1.0}
    assert vol.weights_at(5) == {"stage1": 0.1, "final": 1.0}
    assert StagedL1("sr").weights_at(10**6) == {"final": 1.0}
    assert not StagedL1("sr").needs_stages() and vol.needs_stages()


def test_task_sampler_is_deterministic() -> None:
    s = TaskSampler(["sr", "denoise", "isotropic"], "epoch", steps_per_epoch=4, seed=3)
    seq = [s.task_at(i) for i in range(40)]
    assert seq == [TaskSampler(["sr", "denoise", "isotropic"], "epoch", 4, 3).task_at(i) for i in range(40)]
    assert all(len(set(seq[e * 4:(e + 1) * 4])) == 1 for e in range(10))  # one task per epoch
    assert len(set(seq)) > 1
    w = TaskSampler(["sr", "denoise"], "step", seed=0, weights={"sr": 1.0, "denoise": 0.0})
    assert {w.task_at(i) for i in range(20)} == {"sr"}
