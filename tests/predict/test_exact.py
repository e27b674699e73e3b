"""Acceptance: tiled prediction == whole-image prediction (within 1e-4) for every task.

Small random networks (``small`` preset), random image shapes, tile sizes and overlaps. The halo
defaults to the measured receptive field; explicit overlaps are drawn at or above it. The
reference is the whole-image task module (``forward``), the same module the export uses.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unifmir.predict import build_task_module, predict
from unifmir.predict.api import halo_for
from unifmir.predict.tiling import round_up

TOL = 1e-4

# per task: strategy of image shapes in the task's input axes (kept small: seconds per example)
SHAPES = {
    "sr": st.tuples(st.integers(81, 150), st.integers(81, 150)),
    "denoise": st.tuples(st.integers(1, 4), st.integers(81, 140), st.integers(20, 140)),
    "isotropic": st.tuples(st.integers(2, 3), st.integers(20, 40), st.integers(81, 120)),
    "projection": st.tuples(st.just(50), st.integers(81, 130), st.integers(40, 130)),
    "volumetric": st.tuples(st.integers(8, 13).map(lambda k: 11 * k), st.integers(8, 16).map(lambda k: 11 * k)),
}
EXAMPLES = {"sr": 4, "denoise": 3, "isotropic": 2, "projection": 3, "volumetric": 2}


def _whole(tm, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return tm(torch.from_numpy(x)[None, None]).numpy()[0, 0]


@pytest.mark.parametrize("task", list(SHAPES))
def test_tiled_equals_whole(task: str, nets) -> None:
    net = nets(task)
    tm = build_task_module(net, task)
    rf = halo_for(tm)
    assert rf is not None, "every local stage has a bounded receptive field"
    halo = round_up(max(rf), tm.align)

    @settings(
        max_examples=EXAMPLES[task], deadline=None, derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        shape=SHAPES[task],
        extra_overlap=st.sampled_from([None, 0, 8]),
        core=st.integers(1, 4).map(lambda k: 8 * k),
        backend=st.sampled_from(["eager", "torchscript"]),
        seed=st.integers(0, 2**16),
    )
    def check(shape, extra_overlap, core, backend, seed) -> None:
        rng = np.random.default_rng(seed)
        x = rng.random(shape, dtype=np.float32)
        overlap = None if extra_overlap is None else halo + extra_overlap
        o = halo if overlap is None else overlap
        tile = 2 * o + 8 + core
        whole = _whole(tm, x)
        # padding="none": the module's own borders, so the result is comparable with its forward
        tiled = predict(tm, x, tile=tile, overlap=overlap, normalize=False, backend=backend, batch_size=3,
                        padding="none")
        assert tiled.shape == whole.shape
        err = float(np.abs(tiled - whole).max())
        assert err < TOL, f"{task} {shape} tile {tile} overlap {overlap}: max |tiled - whole| = {err}"

    check()


@pytest.mark.parametrize("task", ["sr", "denoise", "projection"])
def test_smaller_than_one_tile_and_default_tiles(task: str, nets) -> None:
    """An image smaller than a tile works (one tile) and the automatic plan gives the same."""
    tm = build_task_module(nets(task), task)
    shape = {"sr": (21, 13), "denoise": (3, 17, 9), "projection": (50, 12, 19)}[task]
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    whole = _whole(tm, x)
    for kw in ({}, {"tile": 512}):
        y = predict(tm, x, normalize=False, padding="none", **kw)
        assert y.shape == whole.shape
        assert float(np.abs(y - whole).max()) < 1e-6


@pytest.mark.parametrize("task", ["sr", "denoise", "isotropic"])
def test_mirror_padding_is_the_bundle_halo_and_tiles_still_match(task: str, nets) -> None:
    """The default padding mirrors the image by the bundle's halo (as bioimageio.core does) and
    crops it off: the output keeps the input's shape, its interior equals the unpadded result,
    and tiled == whole still holds."""
    from unifmir.predict.api import border_halo

    tm = build_task_module(nets(task), task)
    halo = border_halo(tm)
    shape = {"sr": (160, 168), "denoise": (6, 40, 48), "isotropic": (10, 40, 40)}[task]
    x = np.random.default_rng(1).random(shape, dtype=np.float32)
    padded = predict(tm, x, normalize=False)
    plain = predict(tm, x, normalize=False, padding="none")
    assert padded.shape == plain.shape
    assert float(np.abs(padded - plain).max()) > 1e-4  # the borders differ ...
    assert halo["y"] > 0 and halo.get("z", 1) > 0
    if plain.ndim == 2:  # ... and away from them (beyond twice the halo) nothing changes
        h = 2 * halo["y"] * tm.scale
        assert plain.shape[0] > 2 * h, (plain.shape, h)
        assert float(np.abs(padded[h:-h, h:-h] - plain[h:-h, h:-h]).max()) < TOL
    tiled = predict(tm, x, normalize=False, tile=2 * halo["y"] + 16)
    assert float(np.abs(tiled - padded).max()) < TOL
