"""``precision`` of ``unifmir.predict`` / ``unifmir predict``: fp32 default, bf16 autocast, auto detection.

The CPU's bf16 support is monkeypatched both ways (``cpu_bf16_flags``), so every branch runs on
any machine: where the CPU really lacks bf16 instructions autocast still computes in bf16, only
emulated (slower), which is why ``auto`` must not pick it there.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from unifmir.cli import main
from unifmir.predict import precision as precision_mod
from unifmir.predict.api import predict
from unifmir.predict.precision import resolve_precision

BF16_TOL = 0.02
"""Largest |bf16 - fp32| allowed in normalised output units (random small-preset weights, output
range ~0.5): bf16 keeps 8 significant bits (relative rounding 2^-9 ~ 2e-3 per product),
accumulated over the small preset's ~20 matrix products and convolutions; measured 2.4e-3 (sr)
and 3.4e-3 (denoise) here, so 0.02 leaves ~6x margin for other CPUs' kernels. A wrong cast
(outputs truncated, a mis-scaled attention) is off by >> 0.02."""


def _patch_flags(monkeypatch: pytest.MonkeyPatch, flags: tuple[str, ...]) -> None:
    monkeypatch.setattr(precision_mod, "cpu_bf16_flags", lambda: flags)


def test_auto_never_picks_bf16_without_cpu_support(monkeypatch: pytest.MonkeyPatch) -> None:
    _patch_flags(monkeypatch, ())
    prec, why = resolve_precision("auto", "cpu")
    assert prec == "fp32" and "neither AMX nor AVX-512-BF16" in why
    with pytest.raises(ValueError, match="neither AMX .* use 'fp32' or 'auto'"):
        resolve_precision("bf16", "cpu")
    _patch_flags(monkeypatch, ("avx512_bf16",))
    assert resolve_precision("auto", "cpu") == ("bf16", "bf16 autocast: the CPU has avx512_bf16")
    assert resolve_precision("bf16", "cpu")[0] == "bf16"
    assert resolve_precision("fp32", "cpu")[0] == "fp32"
    with pytest.raises(ValueError, match="'fp16' runs on CUDA only"):
        resolve_precision("fp16", "cpu")
    with pytest.raises(ValueError, match="precision must be one of 'fp32', 'bf16', 'fp16', 'auto', got 'half'"):
        resolve_precision("half", "cpu")


def test_default_is_fp32_bit_for_bit(nets, monkeypatch: pytest.MonkeyPatch) -> None:
    net = nets("sr")
    img = np.random.default_rng(0).uniform(0, 1, (24, 24)).astype(np.float32)
    default = predict(net, img, normalize=False, padding="none")  # the module's own borders: = its forward
    with torch.no_grad():
        direct = net(torch.from_numpy(img)[None, None])[0, 0].numpy()
    assert np.array_equal(default, direct)
    assert np.array_equal(predict(net, img, normalize=False, precision="fp32", padding="none"), default)
    _patch_flags(monkeypatch, ())
    assert np.array_equal(predict(net, img, normalize=False, precision="auto", padding="none"), default)


@pytest.mark.parametrize("task", ["sr", "denoise"])
def test_bf16_close_to_fp32(nets, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, task: str) -> None:
    _patch_flags(monkeypatch, ("amx_bf16",))
    net = nets(task)
    shape = (24, 24) if task == "sr" else (5, 24, 24)
    img = np.random.default_rng(1).uniform(100, 4000, shape).astype(np.float32)
    ref = predict(net, img, output_units="normalized")
    with caplog.at_level(logging.INFO, logger="unifmir.predict.api"):
        auto = predict(net, img, output_units="normalized", precision="auto")
    assert "precision auto -> bf16 autocast: the CPU has amx_bf16" in caplog.text
    bf16 = predict(net, img, output_units="normalized", precision="bf16")
    assert bf16.dtype == np.float32 and bf16.shape == ref.shape
    assert np.array_equal(auto, bf16)
    diff = float(np.abs(bf16 - ref).max())
    assert 0 < diff <= BF16_TOL  # really computed in bf16, and close
    with pytest.raises(ValueError, match="backend='eager' only"):
        predict(net, img, precision="bf16", backend="torchscript")


def test_cli_precision(tmp_path: Path, nets, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from unifmir.model.checkpoints import save_checkpoint

    ckpt = tmp_path / "sr.pt"
    save_checkpoint(ckpt, nets("sr"))
    src = tmp_path / "a.npy"
    np.save(src, np.random.default_rng(2).uniform(0, 1000, (24, 24)).astype(np.float32))
    _patch_flags(monkeypatch, ())
    base = ["predict", "--model", str(ckpt), "--input", str(src), "--quiet"]
    assert main([*base, "--output", str(tmp_path / "fp32")]) == 0
    assert main([*base[:-1], "--output", str(tmp_path / "auto"), "--precision", "auto"]) == 0
    assert "--precision auto: fp32: the CPU has neither AMX nor AVX-512-BF16" in capsys.readouterr().err
    a = tifffile.imread(tmp_path / "fp32" / "a.ome.tif")
    assert np.array_equal(a, tifffile.imread(tmp_path / "auto" / "a.ome.tif"))
    assert main([*base, "--output", str(tmp_path / "bf16"), "--precision", "bf16"]) == 2
    assert "--precision bf16: precision 'bf16' requested but this CPU has neither" in capsys.readouterr().err
    assert not (tmp_path / "bf16").exists()
