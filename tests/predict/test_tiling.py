"""Tiling geometry and exactness on a fast stand-in network (hypothesis)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from .predict_testlib import WindowNet

from unifmir.predict.receptive import measure_receptive_field
from unifmir.predict.tiling import TileSpec, axis_tiles, axis_weights, tiled_apply


@settings(max_examples=200, deadline=None)
@given(
    length=st.integers(1, 700),
    halo=st.integers(0, 5).map(lambda k: 8 * k),
    core=st.integers(1, 12).map(lambda k: 8 * k),
)
def test_axis_tiles_cover_align_and_weights_sum_to_one(length: int, halo: int, core: int) -> None:
    blend = 8
    tile = 2 * halo + blend + core
    tiles = axis_tiles(length, tile, halo, blend, 8)
    assert tiles[0][0] == 0 and tiles[-1][1] == length
    total = torch.zeros(length, dtype=torch.float64)
    for i, (a, b) in enumerate(tiles):
        assert a % 8 == 0, "tile starts are on the window grid"
        assert b - a >= min(tile, length)
        if i:
            assert a > tiles[i - 1][0]
        total[a:b] += axis_weights(a, b, length, halo, blend, torch.float64)
    assert bool((total > 0).all()), "every pixel has a positive blending weight"


def test_axis_weights_shape_of_ramp() -> None:
    w = axis_weights(16, 16 + 48, 200, halo=8, blend=8)
    assert torch.all(w[:8] == 0) and torch.all(w[-8:] == 0)
    assert torch.all(torch.diff(w[8:16]) > 0) and torch.all(w[16:32] == 1)
    border = axis_weights(0, 48, 48, halo=8, blend=8)
    assert torch.all(border == 1), "image borders keep full weight"


def test_tilespec_rejects_too_small_tiles() -> None:
    with pytest.raises(ValueError, match="too small"):
        TileSpec(tile=(24, 24), halo=(16, 16)).check((100, 100))
    TileSpec(tile=(24, 24), halo=(16, 16)).check((20, 20))  # single tile: fine


def test_receptive_field_of_stand_in(window_net) -> None:
    rf = measure_receptive_field(window_net.double(), 1)
    window_net.float()
    # conv (1) + window mixing (up to 7) + conv (1); the measured radius can only be smaller
    assert rf is not None and 8 <= max(rf) <= 9


def test_receptive_field_of_global_op_is_none() -> None:
    def glob(x: torch.Tensor) -> torch.Tensor:
        return x + x.mean(dim=(2, 3), keepdim=True)

    assert measure_receptive_field(glob, 1, max_length=256) is None


@settings(max_examples=30, deadline=None)
@given(
    h=st.integers(8, 150),
    w=st.integers(8, 150),
    core=st.integers(1, 6).map(lambda k: 8 * k),
    extra_halo=st.integers(0, 2).map(lambda k: 8 * k),
    scale=st.sampled_from([1, 2]),
    seed=st.integers(0, 2**16),
)
def test_tiled_equals_whole_on_window_grid_net(h, w, core, extra_halo, scale, seed) -> None:
    torch.manual_seed(seed)
    net = WindowNet(scale=scale).eval()
    halo = 16 + extra_halo  # >= receptive field 9, on the window grid
    spec = TileSpec(tile=(2 * halo + 8 + core,) * 2, halo=(halo, halo))
    x = torch.rand(2, 1, h, w)
    with torch.no_grad():
        whole = net(x)
        tiled = tiled_apply(net, x, spec, scale=scale, batch_size=1)
    assert tiled.shape == whole.shape == (2, 1, h * scale, w * scale)
    assert float((tiled - whole).abs().max()) < 1e-5


def test_unaligned_tiles_would_differ(window_net) -> None:
    """Why alignment matters: a tile cut off the window grid changes the window means."""
    x = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        whole = window_net(x)
        shifted = window_net(x[:, :, 4:, 4:])
    assert float((whole[:, :, 20:40, 20:40] - shifted[:, :, 16:36, 16:36]).abs().max()) > 1e-3
