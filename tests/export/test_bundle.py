"""`unifmir.export.bundle`: what `export_model` refuses (overwriting, a failing gate, a network that
ignores its input); export never imports training code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from unifmir.export import bundle, gates
from unifmir.export.bundle import export_model
from unifmir.export.gates import GateError, GateResult

from .export_testlib import small_network


def test_export_never_overwrites_without_force(tmp_path: Path) -> None:
    out = tmp_path / "m.zip"
    out.write_bytes(b"keep")
    with pytest.raises(FileExistsError):
        export_model(small_network("sr"), "sr", out)
    assert out.read_bytes() == b"keep"


def test_failing_gate_leaves_no_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gates, "gate_ilastik", lambda descr: GateResult("ilastik", False, "forced failure"))
    out = tmp_path / "m.zip"
    with pytest.raises(GateError, match="forced failure"):
        export_model(small_network("sr"), "sr", out, onnx=False, check_libtorch=False)
    assert not out.exists() and not list(tmp_path.iterdir())


def _constant_sr_network() -> torch.nn.Module:
    """A small SR network whose first convolution is zeroed: its output no longer depends on the input."""
    from unifmir.model.factory import build_model

    torch.manual_seed(0)
    net = build_model("sr", "small").eval()
    with torch.no_grad():
        net.conv_first.weight.zero_()
    return net


def test_a_constant_network_is_never_exported(tmp_path: Path) -> None:
    out = tmp_path / "const.zip"
    with pytest.raises(GateError, match="input-sensitivity") as err:
        bundle.export_model(_constant_sr_network(), "sr", out, onnx=False, check_libtorch=False)
    assert "ignores its input" in str(err.value)
    assert not out.exists()


def test_export_code_never_imports_training() -> None:
    code = "import sys, unifmir.export.bundle, unifmir.cli.export; " \
           "bad=[m for m in sys.modules if m.startswith('unifmir.training')]; assert not bad, bad"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
