"""``model.overrides`` and ``model.preset`` are checked when a training config is loaded, not when
the network is built."""

from __future__ import annotations

from pathlib import Path

import pytest

from unifmir.model.config import ModelConfig
from unifmir.training.config import ConfigError, check_model_overrides, config_from_dict, finetune_config, load_config


def _finetune(model: dict, init: str = "scratch") -> dict:
    return {"tasks": ["sr"], "data": {"roots": {"sr": "x"}}, "init": init, "model": model}


def test_misspelled_override_is_refused_at_load_naming_the_valid_fields(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("tasks: [sr]\ndata: {roots: {sr: d}}\nmodel: {overrides: {sr_scale: 1}}\n")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "c.yaml")
    text = str(err.value)
    assert "model.overrides" in text and "unknown model field 'sr_scale'" in text
    assert "did you mean 'upscale'?" in text
    assert all(name in text for name in ModelConfig.model_fields)


def test_misspelled_override_is_refused_even_when_starting_from_a_checkpoint() -> None:
    with pytest.raises(ConfigError, match="unknown model field 'embed_dims'"):
        config_from_dict(_finetune({"overrides": {"embed_dims": 60}}, init="some.pt"))


def test_override_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(ConfigError, match="upscale='two'"):
        config_from_dict(_finetune({"overrides": {"upscale": "two"}}, init="some.pt"))


def test_from_scratch_the_whole_network_config_is_checked() -> None:
    with pytest.raises(ConfigError, match="upscale must be None, 1, 3 or a power of 2, got 5"):
        finetune_config("sr", "x", model_overrides={"upscale": 5})


def test_unknown_model_preset_is_refused_at_load() -> None:
    with pytest.raises(ConfigError, match="unknown model preset 'tiny'; choose one of full, small"):
        config_from_dict(_finetune({"preset": "tiny"}))


def test_valid_overrides_are_kept_as_given() -> None:
    given = {"upscale": 1, "depths": [2, 2], "num_heads": [2, 2]}
    assert check_model_overrides(given) == given
    assert finetune_config("sr", "x", model_overrides=given).model.overrides == given
