"""Task/checkpoint mismatches are refused before anything runs (classes 1 and 3 of issue 15).

An explicit ``--task`` is checked against the checkpoint's input channels and scale (the task
registry's facts) in ``predict``, ``export``, ``evaluate`` and ``import-official``; nothing is
written, and 2x SR weights are never run as a denoiser (they used to write a zoomed quarter).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from .clitestlib import assert_refused, cli

# (checkpoint fixture, wrong task, input image, words the message must hold: the fix names the right task)
MISMATCHES = [
    ("swinir_x1_in5", "sr", "img.tif", ["5 input channel", "--task denoise"]),
    ("swinir_x2_in1", "denoise", "stack.tif", ["enlarges images 2x", "--task sr"]),
    ("swinir_x2_in1", "isotropic", "stack.tif", ["enlarges images 2x", "--task sr"]),
    ("swinir_x1_in1", "sr", "img.tif", ["needs 2x", "--task denoise"]),
]


@pytest.mark.parametrize("fixture, task, image, words", MISMATCHES)
def test_predict_refuses_task_mismatch(world, watch, official, capsys, fixture, task, image, words) -> None:
    w = watch()
    res = cli(["predict", "--model", official[fixture], "--task", task, "--input", image, "--output", "out"], capsys)
    assert_refused(res, str(official[fixture]), *words)
    w.assert_unchanged()


def test_predict_refuses_own_checkpoint_of_another_task(world, watch, capsys) -> None:
    w = watch()
    res = cli(["predict", "--model", "sr.pt", "--task", "denoise", "--input", "stack.tif", "--output", "out"], capsys)
    assert_refused(res, "sr.pt", "holds a 'sr' network, not 'denoise'")
    w.assert_unchanged()


def test_predict_refuses_a_variant_the_task_cannot_feed(world, watch, capsys) -> None:
    """Our own checkpoint of an SR variant with 3 input channels (finetune --in-chans 3)."""
    from unifmir.model.checkpoints import save_checkpoint
    from unifmir.model.config import resolve_config
    from unifmir.model.factory import build_model

    save_checkpoint(world / "sr3.pt", build_model("sr", resolve_config({"preset": "small", "in_chans": 3})))
    w = watch()
    res = cli(["predict", "--model", "sr3.pt", "--input", "img.tif", "--output", "out"], capsys)
    assert_refused(res, "sr3.pt", "takes 3 input channel(s), but sr feeds 1")
    w.assert_unchanged()


def test_api_refuses_task_mismatch(official) -> None:
    from unifmir.predict import predict

    with pytest.raises(ValueError, match="enlarges images 2x"):
        predict(official["swinir_x2_in1"], np.zeros((3, 16, 16), np.float32), task="denoise")


@pytest.mark.parametrize("fixture, task, image, words", MISMATCHES[:2])
def test_export_refuses_task_mismatch_before_any_gate(world, watch, official, capsys, monkeypatch,
                                                      fixture, task, image, words) -> None:
    import unifmir.export.gates as gates

    def no_gate(*a, **k):  # the mismatch must be found before any gate runs
        raise AssertionError("a gate ran")

    for name in [n for n in dir(gates) if n.startswith("gate_")]:
        monkeypatch.setattr(gates, name, no_gate)
    w = watch()
    res = cli(["export", "--model", official[fixture], "--task", task, "--out", "b.zip"], capsys)
    assert_refused(res, str(official[fixture]), *words)
    w.assert_unchanged()


def test_evaluate_refuses_task_mismatch(world, watch, official, capsys) -> None:
    w = watch()
    res = cli(["evaluate", "--model", official["swinir_x2_in1"], "--data", "ds_denoise", "--out", "ev"], capsys)
    assert_refused(res, "enlarges images 2x", "--task sr")
    res = cli(["evaluate", "--model", "sr.pt", "--data", "ds_denoise"], capsys)
    assert_refused(res, "sr.pt", "not 'denoise'")
    w.assert_unchanged()


def _release(root: Path, files: dict[str, str]) -> Path:
    """An unpacked release whose run folders hold the given reference fixtures."""
    import compact

    from .clitestlib import FIXTURES
    from unifmir.zoo.official import OFFICIAL_MODELS

    for run, fixture in files.items():
        m = next(m for m in OFFICIAL_MODELS if m.run == run)
        path = root / "experiment" / m.run / m.filename
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(compact.rebuild_state_dict(torch.load(FIXTURES / f"{fixture}.pt")), path)
    return root


def test_import_official_refuses_a_checkpoint_of_another_task(world, watch, capsys) -> None:
    """A 5-slice denoiser in the SR run's folder: refused by name, and no bundle (not even the
    valid Planaria one) is written, because every checkpoint is checked first."""
    release = _release(world / "release", {"SwinIRCCPs": "swinir_x1_in5", "SwinIRDenoising_Planaria": "swinir_x1_in1"})
    w = watch()
    res = cli(["import-official", "--release", release, "--out", "bundles"], capsys)
    assert_refused(res, "experiment/SwinIRCCPs", "cannot serve task 'sr'", "--task denoise")
    w.assert_unchanged()


def test_import_official_refuses_nan_weights(world, watch, capsys) -> None:
    release = _release(world / "release", {"SwinIRCCPs": "swinir_x2_in1"})
    ckpt = next(release.rglob("*.pt"))
    sd = torch.load(ckpt)
    next(v for v in sd.values() if v.is_floating_point()).view(-1)[0] = float("nan")
    torch.save(sd, ckpt)
    w = watch()
    res = cli(["import-official", "--release", release, "--out", "bundles"], capsys)
    assert_refused(res, str(ckpt), "NaN/Inf weights")
    w.assert_unchanged()
