"""bf16 training on the CPU (``cpu_bf16`` / ``--precision``): autocast with fp32 master weights."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch

from .train_testlib import tiny_config
from unifmir.cli import CliError
from unifmir.cli._training import apply_common_overrides
from unifmir.predict import precision as precision_mod
from unifmir.training.loop import train


def _losses(res) -> list[float]:
    return [r["loss"] for r in res.history if r["kind"] == "train"]


def test_cpu_bf16_trains_with_fp32_master_weights(data_root, tmp_path: Path) -> None:
    fp32 = train(tiny_config("sr", data_root("sr"), steps=3), tmp_path / "fp32", progress=False)
    bf16 = train(tiny_config("sr", data_root("sr"), steps=3, cpu_bf16=True), tmp_path / "bf16", progress=False)
    a, b = _losses(fp32), _losses(bf16)
    assert len(a) == len(b) == 3 and a != b  # bf16 really ran (same seed and data, different rounding)
    # same seed, data and initial weights: bf16 rounding (~2^-9 relative) moves the loss by far less than 5 %
    assert all(abs(x - y) <= 0.05 * x for x, y in zip(a, b)), (a, b)
    sd = torch.load(tmp_path / "bf16" / "last.pt", weights_only=True)["state_dict"]
    assert all(v.dtype == torch.float32 for v in sd.values() if v.is_floating_point())


def _args(precision: str | None) -> argparse.Namespace:
    keys = ("steps", "lr", "batch_size", "patch_size", "workers", "val_every", "seed", "device", "early_stopping")
    return argparse.Namespace(**dict.fromkeys(keys), no_amp=False, precision=precision)


def test_precision_option(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(precision_mod, "cpu_bf16_flags", lambda: ())
    assert apply_common_overrides({"device": "cpu"}, _args(None)) == {"device": "cpu"}  # default unchanged
    assert apply_common_overrides({"device": "cpu"}, _args("auto")) == {"device": "cpu", "amp": False, "cpu_bf16": False}
    assert "neither AMX nor AVX-512-BF16" in capsys.readouterr().err
    with pytest.raises(CliError, match="--precision bf16: .*neither AMX"):
        apply_common_overrides({"device": "cpu"}, _args("bf16"))
    monkeypatch.setattr(precision_mod, "cpu_bf16_flags", lambda: ("amx_bf16",))
    assert apply_common_overrides({"device": "cpu"}, _args("bf16"))["cpu_bf16"] is True
    assert apply_common_overrides({"device": "cpu"}, _args("auto"))["cpu_bf16"] is True
    assert apply_common_overrides({"device": "cpu"}, _args("fp32")) == {"device": "cpu", "amp": False, "cpu_bf16": False}
