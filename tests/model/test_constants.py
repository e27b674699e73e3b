"""Reference constants the fixtures cannot see at atol 1e-5 (README.txt section 9), asserted directly."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from .model_testlib import fixture_state_dict
from unifmir.model import build_model
from unifmir.model import enlcn, swin, unet
from unifmir.model.enlcn import ENLA, ENLCA, ENLCN, ResBlock
from unifmir.model.swin import SwinTransformerBlock, WindowAttention


@pytest.fixture(scope="module")
def uni() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(None, "small")


def _all(model: torch.nn.Module, cls: type) -> list:
    found = [m for m in model.modules() if isinstance(m, cls)]
    assert found, f"no {cls.__name__} in the model"
    return found


def test_gelu_is_exact_erf(uni: torch.nn.Module) -> None:
    for m in _all(uni, torch.nn.GELU):
        assert m.approximate == "none"
    x = torch.linspace(-4, 4, 101)
    mlp = _all(uni, swin.Mlp)[0]
    y = mlp.act(x)
    assert (y - 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))).abs().max() < 1e-6
    assert (y - F.gelu(x, approximate="tanh")).abs().max() > 1e-5  # distinguishable from tanh


def test_norm_eps(uni: torch.nn.Module) -> None:
    for m in _all(uni, torch.nn.LayerNorm):
        assert m.eps == 1e-5 and m.elementwise_affine
    for m in _all(uni, torch.nn.BatchNorm2d):
        assert m.eps == 1e-5 and m.track_running_stats


def test_enla_kernel_eps_and_ratio(uni: torch.nn.Module) -> None:
    for m in _all(uni, ENLA):
        assert m.eps == 1e-4 and m.nb_features == 128
    assert enlcn.KERNEL_EPS == 1e-4
    # softmax_kernel: ratio * (exp(x P^T - |x|^2/2) + eps) with ratio = nb_features ** -0.5
    data, proj = torch.zeros(1, 1, 2, 8), torch.randn(128, 8)
    assert torch.allclose(enlcn.softmax_kernel(data, proj), torch.full((1, 1, 2, 128), 128**-0.5 * (1 + 1e-4)))


def test_enlca_constants(uni: torch.nn.Module) -> None:
    for m in _all(uni, ENLCA):
        assert m.normalize_eps == 5e-5 and m.k == math.sqrt(6) and m.res_scale == 0.1
        assert m.conv_match1[0].out_channels * 4 == m.conv_assembly[0].out_channels
    for m in _all(uni, ResBlock):
        assert m.res_scale == 0.1
        assert isinstance(m.body[1], torch.nn.ReLU)


def test_enlca_layout_every_eight_resblocks() -> None:
    head = ENLCN(in_chans=50, n_feats=32, n_resblocks=16)
    kinds = [type(m).__name__ for m in head.body]
    assert kinds == ["ENLCA"] + ["ResBlock"] * 8 + ["ENLCA"] + ["ResBlock"] * 8 + ["ENLCA", "Conv2d"]
    full = ENLCN(n_feats=4)  # official depth (64 ResBlocks), tiny width
    assert len(full.body) == 74 and isinstance(full.body[73], torch.nn.Conv2d)
    assert [i for i, m in enumerate(full.body) if isinstance(m, ENLCA)] == list(range(0, 73, 9))


def test_attention_scale_shift_and_mask(uni: torch.nn.Module) -> None:
    for m in _all(uni, WindowAttention):
        assert m.scale == (m.dim // m.num_heads) ** -0.5
    for layer in uni.layers:
        blocks = list(layer.residual_group.blocks)
        assert [b.shift_size for b in blocks] == [0 if i % 2 == 0 else 4 for i in range(len(blocks))]
    mask = swin.calculate_mask(16, 24, 8, 4)
    assert set(mask.unique().tolist()) == {0.0, -100.0}


def test_computed_mask_equals_stored_reference_buffer() -> None:
    sd = fixture_state_dict("swinir_x2_in1")
    stored = sd["layers.0.residual_group.blocks.1.attn_mask"]
    assert torch.equal(swin.calculate_mask(64, 64, 8, 4), stored)
    idx = sd["layers.0.residual_group.blocks.0.attn.relative_position_index"]
    assert torch.equal(swin.relative_position_index(8), idx)


def test_leaky_relu_slope_and_unet_constants(uni: torch.nn.Module) -> None:
    for m in _all(uni, torch.nn.LeakyReLU):
        assert m.negative_slope == 0.01
    pool = uni.conv_first0.pool
    assert (pool.kernel_size, pool.stride, pool.ceil_mode) == (3, 2, False)
    for layer in uni.conv_first0.decoder_layers:  # Conv -> ReLU -> BN
        assert [type(m).__name__ for m in layer] == ["Conv2d", "ReLU", "BatchNorm2d"]
    x = torch.randn(1, 3, 5, 7)
    assert torch.equal(unet.resize_bilinear(x, 11, 13), F.interpolate(x, size=(11, 13), mode="bilinear", align_corners=False))


def test_drop_path_identity_in_eval_and_linear_schedule() -> None:
    model = build_model("sr", "small")
    rates = [b.drop_path.drop_prob for layer in model.layers for b in layer.residual_group.blocks]
    assert rates == pytest.approx(torch.linspace(0, 0.1, 4).tolist())
    model.eval()
    x = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
    blk = model.layers[-1].residual_group.blocks[-1]
    assert isinstance(blk, SwinTransformerBlock) and blk.drop_path.drop_prob == pytest.approx(0.1)


def test_projection_matrix_not_redrawn_by_forward() -> None:
    torch.manual_seed(0)
    model = build_model("projection", "small")
    before = {k: v.clone() for k, v in model.state_dict().items() if k.endswith("projection_matrix")}
    x = torch.rand(2, 50, 8, 8)
    model.train()
    model(x).mean().backward()
    model.eval()
    with torch.no_grad():
        model(x)
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())
    redrawer = enlcn.ProjectionRedrawer(model, interval=2)
    model.train()
    assert [redrawer.step() for _ in range(3)] == [False, False, True]
    assert not torch.equal(model.state_dict()[next(iter(before))], next(iter(before.values())))
