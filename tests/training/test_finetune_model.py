"""Fine-tuning from every fixture checkpoint format, task variants, body freezing, pretraining, CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from .train_testlib import state_equal, tiny_config
from unifmir.training.finetune_model import BODY_PREFIXES, prepare_finetune_model
from unifmir.training.loop import train

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "unifmir-reference"

CASES = [  # fixture file, task fine-tuned
    ("swinir_x2_in1", "sr"),
    ("swinir_x1_in1", "isotropic"),
    ("swinir_x1_in5", "denoise"),
    ("swinirProj_stage2_small", "projection"),
    ("unimodel_small", "sr"),
    ("unimodel_small", "projection"),
]


@pytest.mark.parametrize("fixture, task", CASES)
def test_finetune_from_fixture_runs_a_step(fixture: str, task: str, data_root, tmp_path: Path) -> None:
    from unifmir.model.checkpoints import load_official

    ckpt = FIX / f"{fixture}.pt"
    cfg = tiny_config(task, data_root(task), steps=1, init=str(ckpt))
    model, report = prepare_finetune_model(cfg)
    assert report.fresh == [], report.fresh  # every tensor comes from the checkpoint
    src = load_official(ckpt)
    if src.task is None:
        from unifmir.model.checkpoints import extract_task

        src = extract_task(src, task)
    assert state_equal(model.state_dict(), src.state_dict())
    res = train(cfg, tmp_path / "run", progress=False)
    assert res.final_step == 1 and res.init["copied"] == len(src.state_dict())
    after = torch.load(res.last_checkpoint, weights_only=True)["state_dict"]
    assert not state_equal(after, src.state_dict())  # one optimiser step changed the weights
    assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())


def test_finetune_from_volumetric_fixture(data_root, tmp_path: Path) -> None:
    # The full-size swinir2dto3d loads completely; the training step uses a small body (a fresh
    # body of another size: only UNetA and the tail fit) to keep this test at CPU speed.
    ckpt = FIX / "swinir2dto3d.pt"
    cfg = tiny_config("volumetric", data_root("volumetric"), steps=1, init=str(ckpt))
    model, report = prepare_finetune_model(cfg)
    assert report.fresh == [] and report.source_task == "volumetric"
    small = {"embed_dim": 24, "depths": [2], "num_heads": [2]}
    cfg = tiny_config("volumetric", data_root("volumetric"), steps=1, init=str(ckpt), model_overrides=small)
    res = train(cfg, tmp_path / "run", progress=False)
    assert res.final_step == 1
    assert any(k.startswith("conv_first0.") for k in torch.load(res.last_checkpoint, weights_only=True)["state_dict"])
    fresh = set(res.init["fresh"])
    assert fresh and not any(k.startswith("conv_first0.") for k in fresh)  # UNetA copied


def test_new_head_for_task_variants(data_root) -> None:
    root = data_root("sr")
    # SR at scale 1 from the x2 checkpoint: body and tail copied, the x2 upsampler is gone
    cfg = tiny_config("sr", root, 1, init=str(FIX / "swinir_x2_in1.pt"), model_overrides={"upscale": 1})
    model, report = prepare_finetune_model(cfg)
    assert model.upscale == 1 and report.fresh == []
    assert not any(k.startswith("upsample.") for k in model.state_dict())
    # a new channel count: fresh head, shared body
    cfg = tiny_config("sr", root, 1, init=str(FIX / "unimodel_small.pt"), model_overrides={"in_chans": 3})
    model, report = prepare_finetune_model(cfg)
    assert sorted(report.fresh) == ["conv_first.bias", "conv_first.weight"]
    assert any(k.startswith("layers.") for k in report.copied)
    # another task's checkpoint: shared body and tail, fresh head
    cfg = tiny_config("sr", root, 1, init=str(FIX / "swinir_x1_in5.pt"))
    model, report = prepare_finetune_model(cfg)
    assert {k.split(".")[0] for k in report.fresh} == {"conv_first", "upsample"}


def test_freeze_body_trains_head_and_tail_only(data_root, tmp_path: Path) -> None:
    from unifmir.model.checkpoints import load_official

    ckpt = FIX / "swinir_x2_in1.pt"
    cfg = tiny_config("sr", data_root("sr"), steps=2, init=str(ckpt), lr=1e-3, freeze_body=True)
    res = train(cfg, tmp_path / "run", progress=False)
    before = load_official(ckpt).state_dict()
    after = torch.load(res.last_checkpoint, weights_only=True)["state_dict"]
    params = dict(load_official(ckpt).named_parameters())
    for k in params:
        same = torch.equal(before[k], after[k])
        assert same == k.startswith(BODY_PREFIXES), k


def test_finetune_from_own_checkpoint_and_scratch(data_root, tmp_path: Path) -> None:
    from unifmir.model.checkpoints import save_checkpoint
    from unifmir.model.factory import build_model

    torch.manual_seed(1)
    own = save_checkpoint(tmp_path / "own.pt", build_model("denoise", "small"))
    cfg = tiny_config("denoise", data_root("denoise"), steps=1, init=str(own))
    model, report = prepare_finetune_model(cfg)
    assert report.fresh == [] and report.source == str(own)
    scratch, rep = prepare_finetune_model(tiny_config("denoise", data_root("denoise"), 1))
    assert rep.source == "scratch" and scratch.config.embed_dim == 24


def test_pretrain_then_finetune_cli(data_root, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``unifmir pretrain`` (2 tasks, task per step) then ``unifmir finetune --from`` it, and --resume."""
    from unifmir.cli import main
    from unifmir.model.checkpoints import read_checkpoint

    common = ["--preset", "small", "--batch-size", "2", "--patch-size", "16", "--quiet", "--device", "cpu"]
    rc = main(["pretrain", "--data", f"sr={data_root('sr')}", "--data", f"denoise={data_root('denoise')}",
               "--task-sampling", "step", "--steps", "4", "--val-every", "2", "--out", str(tmp_path / "pt"), *common])
    assert rc == 0
    log = (tmp_path / "pt" / "log.csv").read_text()
    assert "val_psnr_sr" in log and "val_psnr_denoise" in log
    ckpt = read_checkpoint(tmp_path / "pt" / "best.pt")
    assert ckpt["task"] is None  # the multi-task network
    rc = main(["finetune", "--task", "sr", "--data", str(data_root("sr")), "--from", str(tmp_path / "pt" / "last.pt"),
               "--steps", "1", "--out", str(tmp_path / "ft"), *common])
    assert rc == 0 and "best checkpoint" in capsys.readouterr().out
    assert read_checkpoint(tmp_path / "ft" / "last.pt")["task"] == "sr"
    rc = main(["finetune", "--resume", str(tmp_path / "ft"), "--steps", "2", "--quiet"])
    assert rc == 0 and read_checkpoint(tmp_path / "ft" / "last.pt")["extra"]["step"] == 2
    # user errors are reported without a traceback
    assert main(["finetune", "--task", "sr", "--data", str(data_root("sr")), "--from", "nope.pt",
                 "--out", str(tmp_path / "x")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["finetune", "--task", "sr", "--data", str(data_root("sr")), "--out", str(tmp_path / "ft")]) == 2
    assert "--resume" in capsys.readouterr().err


def test_narrower_uneta_starts_wholly_fresh(data_root) -> None:
    """A UNetA of other widths than the checkpoint's copies nothing, not the few tensors whose
    shapes happen to agree (its 61-slice output BatchNorm): one stage, one initialisation."""
    from unifmir.model.unet import OUTPUT_BIAS

    narrow = {"unet_stem": 64, "unet_widths": [16, 32, 64, 128, 128, 128]}
    cfg = tiny_config("volumetric", data_root("volumetric"), 1, init=str(FIX / "swinir2dto3d.pt"),
                      model_overrides=narrow)
    model, report = prepare_finetune_model(cfg)
    unet = {k for k in model.state_dict() if k.startswith("conv_first0.")}
    assert unet <= set(report.fresh) and not unet & set(report.copied)
    assert any(k.startswith("layers.") for k in report.copied)  # the body still transfers
    out_norm = model.conv_first0.decoder_layers[-1][-1]
    assert torch.allclose(out_norm.bias, torch.full_like(out_norm.bias, OUTPUT_BIAS))
