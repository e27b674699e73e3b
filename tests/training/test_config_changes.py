"""``ConfigChanges``: settings given on top of a training config (what the CLI options do)."""

from __future__ import annotations

from pathlib import Path

import pytest

from unifmir.training.config import ConfigChanges, ConfigError, apply_changes, change_config_dict, finetune_config


def test_only_given_settings_are_written() -> None:
    assert change_config_dict({"device": "cpu"}, ConfigChanges()) == {"device": "cpu"}
    assert change_config_dict({"device": "cpu"}, ConfigChanges(steps=5, early_stopping=2)) == {
        "device": "cpu", "schedule": {"steps": 5}, "early_stopping": {"enabled": True, "patience": 2}}


def test_the_input_dict_is_not_changed() -> None:
    d = {"model": {"preset": "small", "overrides": {"embed_dim": 24}}}
    out = change_config_dict(d, ConfigChanges(model_overrides={"upscale": 1}, preset="full"))
    assert out["model"] == {"preset": "full", "overrides": {"embed_dim": 24, "upscale": 1}}
    assert d == {"model": {"preset": "small", "overrides": {"embed_dim": 24}}}


def test_finetune_task_and_data_replace_the_configs(tmp_path: Path) -> None:
    base = finetune_config("sr", tmp_path / "sr", steps=10)
    cfg = apply_changes(base, ConfigChanges(task="denoise", data=tmp_path / "dn", init="scratch", lr=1e-3))
    assert cfg.tasks == ["denoise"] and cfg.data.roots == {"denoise": tmp_path / "dn"}
    assert cfg.optim.lr == 1e-3 and cfg.schedule.steps == 10


def test_pretrain_roots_set_the_tasks(tmp_path: Path) -> None:
    base = finetune_config("sr", tmp_path / "sr")
    cfg = apply_changes(base, ConfigChanges(mode="pretrain", roots={"sr": tmp_path / "a", "isotropic": tmp_path / "b"},
                                            task_sampling="step"))
    assert cfg.mode == "pretrain" and cfg.tasks == ["sr", "isotropic"] and cfg.task_sampling == "step"


def test_changes_are_validated_naming_the_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\(command line\)(.|\n)*unknown model field 'sr_scale'"):
        apply_changes(finetune_config("sr", tmp_path), ConfigChanges(model_overrides={"sr_scale": 1}),
                      source="command line")
