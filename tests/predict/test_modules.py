"""Task modules: per-task semantics, TorchScript and tracing, eager == TorchScript."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from unifmir.predict.modules import (
    TASK_MODULES,
    DenoiseStack,
    IsotropicStack,
    build_task_module,
    context_indices,
    lightfield_views,
    z_upsample_linear,
)
from unifmir.tasks import TASKS

SHAPES = {
    "sr": (2, 1, 20, 28),
    "denoise": (1, 1, 4, 20, 28),
    "isotropic": (1, 1, 3, 16, 20),
    "projection": (1, 1, 50, 20, 28),
    "volumetric": (1, 1, 88, 99),
}


class Shift(nn.Module):
    """Stub network: centre channel minus 0.1 (window 8)."""

    window_size = 8

    def __init__(self, in_chans: int = 1) -> None:
        super().__init__()
        self.in_chans = in_chans

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1] // 2
        return x[:, c : c + 1] - 0.1


def test_registry_covers_every_task() -> None:
    assert set(TASK_MODULES) == set(TASKS)


def test_context_window_repeats_edges() -> None:
    idx = context_indices(3, 5, torch.device("cpu"))
    assert idx.tolist() == [[0, 0, 0, 1, 2], [0, 0, 1, 2, 2], [0, 1, 2, 2, 2]]


def test_denoise_views_are_the_5_slice_windows() -> None:
    x = torch.arange(4.0).view(1, 1, 4, 1, 1).expand(1, 1, 4, 8, 8).contiguous()
    m = DenoiseStack(Shift(5), context=5)
    v = m.views(x)[0]
    assert v.shape == (4, 5, 8, 8)
    assert v[:, :, 0, 0].tolist() == [[0, 0, 0, 1, 2], [0, 0, 1, 2, 3], [0, 1, 2, 3, 3], [1, 2, 3, 3, 3]]
    assert torch.equal(m(x), x - 0.1)  # centre slice minus 0.1, in place


def test_z_upsample_linear_on_subsampling_grid() -> None:
    x = torch.tensor([0.0, 4.0, 8.0]).view(1, 1, 3, 1, 1)
    y = z_upsample_linear(x, 4).flatten().tolist()
    assert y == [0, 1, 2, 3, 4, 5, 6, 7, 8, 8, 8, 8]


def test_isotropic_geometric_mean_merge() -> None:
    torch.manual_seed(0)

    class XZ(nn.Module):  # different answers for XZ (rows z, cols x) and YZ (rows z, cols y) slices
        window_size = 8

        def forward(self, x: Tensor) -> Tensor:
            return x * 2.0 - 0.5

    m = IsotropicStack(XZ(), factor=2)
    x = torch.rand(1, 1, 3, 9, 11)
    up = z_upsample_linear(x, 2)
    a = up * 2.0 - 0.5
    expect = torch.sqrt(torch.clamp(a, min=0) * torch.clamp(a, min=0))
    out = m(x)
    assert out.shape == (1, 1, 6, 9, 11)
    assert torch.allclose(out, expect, atol=1e-6)


def test_lightfield_views_match_data_layer() -> None:
    from unifmir.data.datasets import lightfield_to_views

    img = torch.rand(2, 1, 33, 44)
    assert torch.equal(lightfield_views(img, 11), lightfield_to_views(img, 11)[:, 0])


@pytest.mark.parametrize("task", list(SHAPES))
def test_script_matches_eager_and_shapes(task: str, nets) -> None:
    spec = TASKS[task]
    tm = build_task_module(nets(task), task)
    x = torch.rand(SHAPES[task])
    sm = torch.jit.script(tm)
    with torch.no_grad():
        a, b = tm(x), sm(x)
    assert float((a - b).abs().max()) < 1e-5
    n_out = len(spec.output_axes)
    assert a.dim() == n_out + 2
    exp_yx = tuple(s * (spec.scale if spec.input_axes == spec.output_axes else 1) for s in x.shape[-2:])
    assert tuple(a.shape[-2:]) == exp_yx
    if spec.out_depth:
        assert a.shape[2] == spec.out_depth


@pytest.mark.parametrize("task", ["sr", "denoise"])
def test_trace_runs_at_other_sizes(task: str, nets) -> None:
    tm = build_task_module(nets(task), task)
    x = torch.rand(SHAPES[task])
    with torch.no_grad():
        tr = torch.jit.trace(tm, x, check_trace=False)
        lead = list(SHAPES[task][:-2])
        if task == "denoise":
            lead[2] = 6  # another number of slices than traced
        x2 = torch.rand(*lead, 19, 33)
        assert float((tr(x2) - tm(x2)).abs().max()) < 1e-5


def test_projection_rejects_wrong_depth(nets) -> None:
    tm = build_task_module(nets("projection"), "projection")
    with pytest.raises(Exception, match="50"):
        tm(torch.rand(1, 1, 10, 16, 16))


def test_build_task_module_checks_task(nets) -> None:
    with pytest.raises(ValueError, match="built for task"):
        build_task_module(nets("sr"), "denoise")
    net = nets("sr")
    assert build_task_module(net).task == "sr"
    assert np.isclose(build_task_module(net).scale, 2)
