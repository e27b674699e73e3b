"""Staged L1 loss: every phase of a task's recipe runs, however short the run."""

from __future__ import annotations

from unifmir.training.config import finetune_config
from unifmir.training.losses import StagedL1


def test_short_run_reaches_the_final_phase() -> None:
    # small preset: steps_per_epoch = steps // 10, so the registry's 30-epoch UNetA-only phase
    # of the volumetric task would outlast a 300-step run (the cause of a bundle that returned
    # the same volume for every input: its final output never got a gradient)
    cfg = finetune_config("volumetric", "unused", steps=300)
    spe = cfg.schedule.steps_per_epoch
    unfitted = StagedL1("volumetric", spe)
    assert unfitted.weights_at(299) == {"stage1": 1.0}
    fitted = StagedL1("volumetric", spe, total_steps=cfg.schedule.steps)
    assert fitted.weights_at(0) == {"stage1": 1.0}
    assert fitted.weights_at(149) == {"stage1": 1.0}
    assert fitted.weights_at(150) == {"stage1": 0.1, "final": 1.0}


def test_long_run_and_explicit_phase_ends_are_unchanged() -> None:
    assert StagedL1("projection", 10, total_steps=10_000).phases == StagedL1("projection", 10).phases
    explicit = StagedL1("volumetric", 1, phase_steps=[500], total_steps=100)
    assert explicit.weights_at(99) == {"stage1": 1.0}


def test_short_volumetric_run_trains_its_final_output(data_root, tmp_path) -> None:
    """A 4-step small-preset run (steps_per_epoch 1, so the UNetA-only phase would last 30
    steps) logs an L1 of the final output in its second half."""
    from unifmir.training.loop import train

    from .train_testlib import tiny_config

    cfg = tiny_config("volumetric", data_root("volumetric"), steps=4,
                      model_overrides={"embed_dim": 12, "depths": [1], "num_heads": [2],
                                       "unet_stem": 32, "unet_widths": [8, 8, 16]})
    rows = [r for r in train(cfg, tmp_path / "run", device="cpu", progress=False).history
            if r.get("kind") == "train"]
    assert "loss_final" not in rows[0] and rows[0]["loss_stage1"] > 0
    assert rows[-1]["loss_final"] > 0


def test_l2_kind_is_the_mean_squared_error_and_an_unknown_kind_is_refused() -> None:
    import pytest
    import torch

    pred, target = torch.zeros(1, 1, 4, 4), torch.full((1, 1, 4, 4), 0.5)
    loss, parts = StagedL1("sr", kind="l2")({"final": pred}, target, step=0)
    assert float(loss) == pytest.approx(0.25) and parts == {"final": pytest.approx(0.25)}
    assert float(StagedL1("sr")({"final": pred}, target, step=0)[0]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="l1, l2"):
        StagedL1("sr", kind="huber")
