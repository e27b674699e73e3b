"""Per-axis block-artifact plans (:func:`unifmir.export.gates.tiling_plans`) and the export's test sizes
(:mod:`unifmir.export.tensors`): two blocks along each axis at a bounded cost."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from unifmir.export import gates


def _descr(*axes: tuple[str, int, int]) -> SimpleNamespace:
    from bioimageio.spec.model import v0_5

    ax = [v0_5.SpaceInputAxis(id=v0_5.AxisId(a), size=v0_5.ParameterizedSize(min=mn, step=st)) for a, mn, st in axes]
    return SimpleNamespace(inputs=[SimpleNamespace(axes=[v0_5.BatchAxis(), *ax])])


@pytest.mark.parametrize("mn,st,h", [(56, 8, 24), (14, 2, 6), (33, 11, 11), (17, 1, 8), (16, 8, 0), (72, 8, 32)])
def test_each_axis_is_cut_into_two_overlapping_blocks(mn: int, st: int, h: int) -> None:
    """Along the plan's axis bioimageio.core makes exactly two blocks, the second moved back (they
    overlap), both halos at the seam lie inside the image, block starts stay on the step grid; every
    other axis is one block of its minimum size."""
    from bioimageio.core.block_meta import split_shape_into_blocks
    from bioimageio.spec.model import v0_5

    plans = gates.tiling_plans(_descr(("x", mn, st), ("y", 72, 8)), {"x": h, "y": 32})
    assert [p.axis for p in plans] == ["x", "y"]
    p = plans[0]
    block, image = p.block["x"], p.image["x"]
    assert (block - mn) % st == 0 and (image - mn) % st == 0 and block >= mn and p.halo == h
    assert p.block["y"] == p.image["y"] == 72  # the other axis: minimum size, one block (halo 0 in its run)
    ax = v0_5.AxisId("x")
    n, metas = split_shape_into_blocks({ax: image}, {ax: block}, {ax: (h, h)})
    inner = [(m.inner_slice[ax].start, m.inner_slice[ax].stop) for m in metas]
    assert n == 2 and inner[0][0] == 0 and inner[1][1] == image
    assert inner[1][0] < inner[0][1]  # the last block is shifted back: the blocks overlap
    assert inner[0][1] + h <= image and inner[1][0] - h >= 0  # real image data in both halos at the seam
    assert (inner[1][0] - h) % st == 0  # padded block starts on the grid


def test_plans_cost_far_less_than_cutting_every_axis_at_once() -> None:
    """Isotropic full-size layout (z: min 18 step 2 halo 8; y/x: min 72 step 8 halo 32): the per-axis
    runs compute < 1/3 of the voxels of the old single run (2 blocks on every axis)."""
    descr = _descr(("z", 18, 2), ("y", 72, 8), ("x", 72, 8))
    halo = {"z": 8, "y": 32, "x": 32}
    plans = gates.tiling_plans(descr, halo)
    new = sum(np.prod(list(p.image.values())) + 2 * np.prod(list(p.block.values())) for p in plans)
    ns, image = gates.tiling_plan(descr, halo)
    old_block = {"z": 18 + ns["z"] * 2, "y": 72 + ns["y"] * 8, "x": 72 + ns["x"] * 8}
    old = np.prod(list(image.values())) + 8 * np.prod(list(old_block.values()))
    assert new < old / 3


@pytest.fixture(scope="module")
def sr_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    from unifmir.export.bundle import export_model
    from unifmir.model.factory import build_model

    torch.manual_seed(0)
    net = build_model("sr", "small").eval()
    out = tmp_path_factory.mktemp("tiling") / "sr.zip"
    export_model(net, "sr", out, onnx=False, check_libtorch=False)
    return net, out


def _runs(descr: object, halo_in: dict[str, int]) -> list[tuple[gates.TilingPlan, np.ndarray]]:
    rng = np.random.default_rng(0)
    runs = []
    for p in gates.tiling_plans(descr, halo_in):
        shape = (1, 1, p.image["y"], p.image["x"])
        runs.append((p, (rng.random(shape, dtype=np.float32) * 100).astype(np.float32)))
    return runs


def test_per_axis_gate_passes_with_the_declared_halo_and_fails_with_a_short_one(sr_bundle: tuple) -> None:
    from bioimageio.core import load_model_description

    _, path = sr_bundle
    descr = load_model_description(path)
    halo_in = {str(a.id): int(a.halo) // 2 for a in descr.outputs[0].axes if getattr(a, "halo", 0)}
    res = gates.gate_tiled_vs_whole_per_axis(descr, _runs(descr, halo_in))
    assert res.ok, res.detail
    assert "y: 2 blocks" in res.detail and "x: 2 blocks" in res.detail

    # the same network declared with a 1-pixel halo: blocks now miss most of the receptive field
    short = descr.model_copy(update={"outputs": [descr.outputs[0].model_copy(update={"axes": [
        a.model_copy(update={"halo": 2}) if getattr(a, "halo", 0) else a for a in descr.outputs[0].axes]})]})
    res = gates.gate_tiled_vs_whole_per_axis(short, _runs(short, {"y": 1, "x": 1}), tolerance=1e-4)
    assert not res.ok, res.detail


def test_per_axis_gate_refuses_an_image_that_is_not_cut_in_two(sr_bundle: tuple) -> None:
    from bioimageio.core import load_model_description

    _, path = sr_bundle
    descr = load_model_description(path)
    plan, img = _runs(descr, {"y": 32, "x": 32})[0]
    res = gates.gate_tiled_vs_whole_per_axis(descr, [(plan, img[:, :, :72])])
    assert not res.ok and "not cut into two blocks" in res.detail


# --------------------------------------------------------------------------------------------
# memory model of the test input's whole-image runs


def _inner(task: str) -> tuple[torch.nn.Module, object]:
    from unifmir.export import describe as D
    from unifmir.export import weights
    from unifmir.model.factory import build_model

    torch.manual_seed(0)
    net = build_model(task, "small").eval()
    layout = D.layout_for(task, window=8, halo=16, z_factor=4 if task == "isotropic" else None)
    return weights._task_module(net, task, False)[0], layout


def test_local_calls_follow_the_task_modules_views() -> None:
    from unifmir.export import tensors

    inner, _ = _inner("isotropic")
    assert tensors.local_calls(inner, (10, 40, 48)) == [(40, 1, 40, 48), (48, 1, 40, 40)]  # XZ and YZ slices, z x4
    inner, _ = _inner("volumetric")
    # after the UNetA (global stage): 8 x 9 views padded to the window (8 x 16), 11x upsampled
    assert tensors.local_calls(inner, (88, 99)) == [(1, 61, 88, 176)]


@pytest.mark.parametrize("task", ["sr", "isotropic", "volumetric"])
def test_fit_test_shape_crops_a_large_image_to_the_budget(task: str) -> None:
    from unifmir.export import tensors

    inner, layout = _inner(task)
    big = {"sr": (1000, 1000), "isotropic": (64, 400, 400), "volumetric": (1100, 1100)}[task]
    budget = 256 << 20
    assert tensors.estimate_run_bytes(inner, big) > budget
    fit = tensors.fit_test_shape(layout, inner, big, budget)
    assert tensors.estimate_run_bytes(inner, fit) <= budget
    for a, n, m in zip(layout.user_in_axes.lower(), fit, big):
        mn, st = layout.min_size[a], layout.step[a]
        assert mn <= n <= m and (n - mn) % st == 0
    small = tensors.default_test_shape(layout)
    assert tensors.fit_test_shape(layout, inner, small, budget) == small  # a fitting valid shape is kept
    img = np.arange(np.prod(big), dtype=np.float32).reshape(big)
    crop = tensors.fit_test_input(img, layout, inner, budget)
    assert crop.shape == fit
    centre = tuple(n // 2 for n in big)
    assert img[centre] in crop  # cropped about the centre
