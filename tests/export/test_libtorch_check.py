"""The libtorch 2.0.0 check (deepImageJ's newest PyTorch engine) and what it finds.

The first run downloads libtorch 2.0.0 from PyPI (~630 MB, cached in ``$UNIFMIR_CACHE`` or
``~/.cache/unifmir``) and compiles the loader (~10 s); later runs reuse both. If the registry is
unreachable these tests FAIL (CI has registry access); point ``UNIFMIR_LIBTORCH_DIR`` at a
pre-extracted libtorch 2.0.0 (``include/`` + ``lib/``) to run offline.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from unifmir.export import libtorch_check as lc
from unifmir.export.libtorch_check import (
    LibtorchResult,
    LibtorchUnavailableError,
    check_torchscript,
    ensure_libtorch,
    ensure_loader,
    is_available,
    read_tensor_file,
    write_tensor_file,
)

@pytest.fixture(scope="session")
def loader() -> Path:
    """Download (once) libtorch 2.0.0 and build the loader; failing to do so fails the test."""
    try:
        return ensure_loader()
    except LibtorchUnavailableError as exc:  # no skip: CI must be able to run this check
        pytest.fail(f"libtorch 2.0.0 unavailable: {exc}")


# ---------------------------------------------------------------------------------------------
# models used by the checks


class Compatible(nn.Module):
    """Ops that exist in libtorch 2.0.0, scripted (not traced)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 8, 3, padding=1)
        self.lin = nn.Linear(8, 8)
        self.out = nn.Conv2d(2, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(F.pad(x, [1, 1, 1, 1], mode="reflect"))[:, :, 1:-1, 1:-1]  # B, 8, H, W
        t = self.lin(y.permute(0, 2, 3, 1)).softmax(dim=-1).permute(0, 3, 1, 2)
        B, C, H, W = t.shape
        tok = t.reshape(B, 2, C // 2, H * W).transpose(-2, -1)  # B, heads, N, d
        att = F.scaled_dot_product_attention(tok, tok, tok)  # default scale: loads in 2.0.0
        t = att.transpose(-2, -1).reshape(B, C, H, W)
        t = F.pixel_shuffle(t, 2)  # B, 2, 2H, 2W
        t = torch.ops.aten.upsample_bilinear2d(t, [4 * H, 4 * W], False, None)
        return self.out(F.gelu(t))


class ScriptedInterpolate(nn.Module):
    """Scripting ``F.interpolate`` in torch >= 2.1 references ``aten::_upsample_lanczos2d_aa``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class SdpaExplicitScale(nn.Module):
    """``scale=`` was added to SDPA in torch 2.1; libtorch 2.0.0 rejects the keyword."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(x, x, x, scale=0.5)


class TwoInTwoOut(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return a + b, (a * b).sum(dim=1, keepdim=True)


def _run(module: nn.Module, *inputs: torch.Tensor) -> list[np.ndarray]:
    with torch.no_grad():
        out = module(*inputs)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    return [o.numpy() for o in outs]


# ---------------------------------------------------------------------------------------------
# tensor exchange (no libtorch needed)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.uint8, np.bool_])
def test_tensor_file_round_trip(tmp_path: Path, dtype) -> None:
    arr = (np.arange(24).reshape(2, 3, 4) % 7).astype(dtype)
    write_tensor_file(tmp_path / "t.bin", arr)
    back = read_tensor_file(tmp_path / "t.bin")
    assert back.dtype == np.dtype(dtype) and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)


def test_tensor_file_big_endian_and_strided(tmp_path: Path) -> None:
    arr = np.arange(12, dtype=">f4").reshape(3, 4)[:, ::2]
    write_tensor_file(tmp_path / "t.bin", arr)
    back = read_tensor_file(tmp_path / "t.bin")
    assert back.dtype == np.dtype("<f4")
    np.testing.assert_array_equal(back, arr)


def test_tensor_file_rejects_unsupported_dtype(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="float16"):
        write_tensor_file(tmp_path / "t.bin", np.zeros(3, np.float16))


# ---------------------------------------------------------------------------------------------
# locating / downloading libtorch (no network)


def test_libtorch_dir_env_must_be_a_libtorch_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNIFMIR_LIBTORCH_DIR", str(tmp_path))
    assert not is_available()
    with pytest.raises(LibtorchUnavailableError, match=r"UNIFMIR_LIBTORCH_DIR=.*missing include/torch/script\.h"):
        ensure_libtorch()


def _fake_wheel_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail: bool = False) -> list[int]:
    """Replace the pinned wheels by a tiny fake one and count the downloads."""
    wheel = tmp_path / "fake-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("torch/include/torch/script.h", "// fake\n")
        zf.writestr("torch/include/c10/x.h", "// fake\n")
        zf.writestr("torch/lib/libtorch_cpu.so", "fake")
        zf.writestr("torch/lib/libc10.so", "fake")
        zf.writestr("torch/lib/libtorch_python.so", "not wanted")
    import hashlib

    spec = lc._Wheel(
        requirement="fake==1.0",
        sha256=hashlib.sha256(wheel.read_bytes()).hexdigest(),
        trees=(("torch/include/", "include/"),),
        files=(("torch/lib/libtorch_cpu.so", "lib/libtorch_cpu.so"), ("torch/lib/libc10.so", "lib/libc10.so")),
    )
    calls: list[int] = []

    def fake_download(dest: Path) -> None:
        calls.append(1)
        if fail:
            raise LibtorchUnavailableError("registry unreachable (simulated)")
        (dest / wheel.name).write_bytes(wheel.read_bytes())

    monkeypatch.delenv("UNIFMIR_LIBTORCH_DIR", raising=False)
    monkeypatch.setenv("UNIFMIR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(lc, "_WHEELS", (spec,))
    monkeypatch.setattr(lc, "_DOWNLOAD_BYTES", 0)
    monkeypatch.setattr(lc, "_EXTRACTED_BYTES", 0)
    monkeypatch.setattr(lc, "_check_platform", lambda: None)
    monkeypatch.setattr(lc, "_pip_download", fake_download)
    return calls


def test_download_is_locked_extracted_atomically_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_wheel_setup(tmp_path, monkeypatch)
    assert not is_available()
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(ensure_libtorch())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1, "concurrent callers must share one download"
    target = tmp_path / "cache" / "libtorch-2.0.0"
    assert results == [target] * 4
    assert (target / "include/torch/script.h").is_file() and (target / "lib/libc10.so").is_file()
    assert not (target / "lib/libtorch_python.so").exists()
    assert not list((tmp_path / "cache").glob(".libtorch-*")), "temporary directories must be cleaned up"
    assert ensure_libtorch() == target and len(calls) == 1
    assert is_available()


def test_failed_download_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_wheel_setup(tmp_path, monkeypatch, fail=True)
    with pytest.raises(LibtorchUnavailableError, match="unreachable"):
        ensure_libtorch()
    cache = tmp_path / "cache"
    assert not (cache / "libtorch-2.0.0").exists()
    assert not list(cache.glob(".libtorch-*"))
    assert len(calls) == 1


def test_unreachable_registry_gives_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real pip call against a closed port: a LibtorchUnavailableError saying what to do."""
    assert importlib.util.find_spec("pip") is not None, "the libtorch check downloads its wheels with pip"
    monkeypatch.delenv("UNIFMIR_LIBTORCH_DIR", raising=False)
    monkeypatch.setenv("UNIFMIR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "5")
    monkeypatch.setattr(lc, "_DOWNLOAD_BYTES", 0)
    monkeypatch.setattr(lc, "_EXTRACTED_BYTES", 0)
    with pytest.raises(LibtorchUnavailableError, match="(?s)could not download libtorch 2.0.0.*UNIFMIR_LIBTORCH_DIR"):
        ensure_libtorch()
    assert not (tmp_path / "cache" / "libtorch-2.0.0").exists()


# ---------------------------------------------------------------------------------------------
# the check itself (libtorch 2.0.0)


def test_compatible_scripted_model_loads_and_matches(loader: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = Compatible().eval()
    path = tmp_path / "compatible.pt"
    torch.jit.script(model).save(str(path))
    x = torch.rand(1, 2, 12, 10)
    expected = _run(model, x)
    result = check_torchscript(path, x.numpy(), expected)
    assert isinstance(result, LibtorchResult)
    assert result.loaded and result.ran and result.ok, result.message
    assert result.libtorch_version == "2.0.0"
    assert result.output_shapes == [(1, 1, 48, 40)]
    assert result.max_abs_diff is not None and result.max_abs_diff < 1e-5
    np.testing.assert_allclose(result.outputs[0], expected[0], atol=1e-5)


def test_scripted_interpolate_does_not_load(loader: Path) -> None:
    x = torch.rand(1, 1, 8, 8)
    result = check_torchscript(torch.jit.script(ScriptedInterpolate()), x.numpy(), None)
    assert not result.ok and not result.loaded and not result.ran
    assert "_upsample_lanczos2d_aa" in result.message
    # the traced version of the same model is fine
    traced = torch.jit.trace(ScriptedInterpolate(), x)
    ok = check_torchscript(traced, x.numpy(), _run(traced, x))
    assert ok.ok and ok.max_abs_diff == 0.0, ok.message


def test_sdpa_explicit_scale_is_rejected_by_2_0(loader: Path) -> None:
    result = check_torchscript(torch.jit.script(SdpaExplicitScale()), np.ones((1, 1, 4, 4), np.float32))
    assert not result.loaded
    assert "scale" in result.message and "scaled_dot_product_attention" in result.message


def test_wrong_expected_output_is_reported(loader: Path) -> None:
    torch.manual_seed(1)
    scripted = torch.jit.script(Compatible().eval())
    x = torch.rand(1, 2, 8, 8)
    good = _run(scripted, x)[0]
    bad = check_torchscript(scripted, x.numpy(), good + 0.01, atol=1e-4, rtol=1e-4)
    assert bad.loaded and bad.ran and not bad.ok
    assert bad.max_abs_diff == pytest.approx(0.01, rel=1e-3)
    assert "outside atol" in bad.message
    shape = check_torchscript(scripted, x.numpy(), good[..., :-1])
    assert not shape.ok and "shape" in shape.message
    loose = check_torchscript(scripted, x.numpy(), good + 0.01, atol=0.02, rtol=0)
    assert loose.ok, loose.message
    nan = check_torchscript(scripted, x.numpy(), np.full_like(good, np.nan))
    assert not nan.ok and "NaN" in nan.message


def test_several_inputs_and_tuple_outputs(loader: Path) -> None:
    a, b = torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4)
    scripted = torch.jit.script(TwoInTwoOut())
    result = check_torchscript(scripted, [a.numpy(), b.numpy()], _run(scripted, a, b))
    assert result.ok, result.message
    assert result.output_shapes == [(1, 3, 4, 4), (1, 1, 4, 4)]
    too_few = check_torchscript(scripted, [a.numpy(), b.numpy()], _run(scripted, a, b)[:1])
    assert not too_few.ok and "2 tensor(s), expected 1" in too_few.message
    wrong_arity = check_torchscript(scripted, a.numpy())
    assert wrong_arity.loaded and not wrong_arity.ran and "forward failed" in wrong_arity.message


def test_libtorch_dir_env_is_used(loader: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = ensure_libtorch()
    monkeypatch.setenv("UNIFMIR_LIBTORCH_DIR", str(tree))

    def no_download(*args: object) -> None:
        raise AssertionError("must not download when UNIFMIR_LIBTORCH_DIR is set")

    monkeypatch.setattr(lc, "_download_and_extract", no_download)
    assert is_available() and ensure_libtorch() == tree.resolve()
    scripted = torch.jit.script(TwoInTwoOut())
    a = torch.rand(1, 1, 2, 2)
    assert check_torchscript(scripted, [a.numpy(), a.numpy()], _run(scripted, a, a)).ok


def test_missing_file_and_cli(loader: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(FileNotFoundError):
        check_torchscript(tmp_path / "nope.pt", np.zeros((1, 1, 4, 4), np.float32))
    with pytest.raises(TypeError, match="script or trace"):
        check_torchscript(TwoInTwoOut(), np.zeros((1, 1, 4, 4), np.float32))
    scripted = torch.jit.script(TwoInTwoOut())
    scripted.save(str(tmp_path / "m.pt"))
    a = np.ones((1, 2, 3, 3), np.float32)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "s.npy", a + a)
    np.save(tmp_path / "p.npy", (a * a).sum(axis=1, keepdims=True))
    args = [str(tmp_path / "m.pt"), "--input", str(tmp_path / "a.npy"), "--input", str(tmp_path / "a.npy")]
    assert lc.main([*args, "--expected", str(tmp_path / "s.npy"), "--expected", str(tmp_path / "p.npy")]) == 0
    assert '"ok": true' in capsys.readouterr().out
    assert lc.main([*args, "--expected", str(tmp_path / "p.npy"), "--expected", str(tmp_path / "s.npy")]) == 1


# ---------------------------------------------------------------------------------------------
# the UniFMIR networks (small preset), scripted, in libtorch 2.0.0


# network-level input shapes (N, net_in_channels, H, W), multiples of the window (8)
_NET_INPUT = {
    "sr": (1, 1, 16, 24),
    "denoise": (1, 5, 16, 16),
    "isotropic": (1, 1, 16, 16),
    "projection": (1, 50, 16, 16),
    "volumetric": (1, 121, 8, 8),
}


@pytest.mark.parametrize(
    "task, attention",
    [(t, "sdpa") for t in _NET_INPUT] + [("sr", "matmul")],
)
def test_small_networks_script_and_run_in_libtorch_2_0(loader: Path, tmp_path: Path, task: str, attention: str) -> None:
    from unifmir.model.factory import build_model

    torch.manual_seed(0)
    model = build_model(task, {"preset": "small", "attention": attention}).eval()
    scripted = torch.jit.script(model)
    path = tmp_path / f"{task}-{attention}.pt"
    scripted.save(str(path))
    x = torch.rand(_NET_INPUT[task])
    expected = _run(scripted, x)
    result = check_torchscript(path, x.numpy(), expected, atol=1e-4, rtol=1e-4)
    assert result.ok, f"{task}/{attention}: {result.message}"
    assert result.output_shapes == [e.shape for e in expected]



# whole-image inputs of the exported task modules (bioimage.io layout: b, c, [z,] y, x)
_TASK_INPUT = {
    "sr": (1, 1, 16, 24),
    "denoise": (1, 1, 6, 16, 16),
    "isotropic": (1, 1, 5, 16, 16),
    "projection": (1, 1, 50, 16, 16),
    "volumetric": (1, 1, 88, 88),
}


@pytest.mark.parametrize("task", list(_TASK_INPUT))
def test_small_task_modules_script_and_run_in_libtorch_2_0(loader: Path, task: str) -> None:
    """The whole-image modules that the bundles ship as TorchScript (window, z merge, ... inside)."""
    from unifmir.model.factory import build_model
    from unifmir.predict.modules import build_task_module

    torch.manual_seed(0)
    module = build_task_module(build_model(task, "small").eval())
    x = torch.rand(_TASK_INPUT[task])
    expected = _run(module, x)
    result = check_torchscript(torch.jit.script(module), x.numpy(), expected, atol=1e-4, rtol=1e-4)
    assert result.ok, f"{task}: {result.message}"
    assert result.output_shapes == [e.shape for e in expected]
