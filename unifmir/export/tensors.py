"""Test and sample tensors of an exported bundle.

* The test input comes from user data when given, else from the task's synthetic forward model
  (:func:`unifmir.data.forward.make_pair`).
* It is *prepared* so that deepImageJ's nearest-rank percentiles (JDLL: ``sorted[int(N * p)]``)
  equal bioimageio.core's interpolated ones (numpy/xarray ``linear`` quantiles): values below
  the lower percentile's ranks are raised to one common value and values above the upper
  percentile's ranks lowered to one common value, so both definitions pick the same number.
  :func:`check_percentile_agreement` verifies the result; the export fails when it does not hold.
* The sample tensor (TIFF) holds exactly the test input (the bioimage.io collection's deepImageJ
  check runs deepImageJ on the sample tensor and compares with the test output).
* Memory: the export runs the whole network on the test input about fifteen times (reference
  output, TorchScript/ONNX checks at two sizes, bioimageio.core's test output and test_model per
  weight format). :func:`estimate_run_bytes` models one such run from the task module's own 2-D
  views (shapes only, on the ``meta`` device) and the prediction layer's per-pixel memory model
  (:func:`unifmir.predict.api.bytes_per_pixel`, measured ~2.5x conservative);
  :func:`fit_test_shape` crops a user's test image until one run fits :data:`TEST_RUN_BUDGET`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from unifmir.export.describe import TensorLayout
from unifmir.tasks import TaskSpec, get_task

if TYPE_CHECKING:  # torch is imported only where it is used
    from unifmir.predict.modules import TaskModule

__all__ = [
    "PercentileCheck",
    "synthetic_input",
    "interpolated_percentile",
    "nearest_rank_percentile",
    "prepare_for_percentiles",
    "check_percentile_agreement",
    "default_test_shape",
    "write_sample_tiff",
    "TEST_RUN_BUDGET",
    "local_calls",
    "estimate_run_bytes",
    "fit_test_shape",
    "fit_test_input",
]

TEST_RUN_BUDGET = 1 << 30
"""Estimated peak bytes allowed for one whole-image run on the test input (1 GiB by the
conservative model, i.e. ~0.4 GiB measured), so that a user's large test image neither
exhausts memory nor multiplies the export's ~15 whole-image runs."""


@dataclass(frozen=True)
class PercentileCheck:
    """Result of comparing the two percentile definitions on one test input."""

    ok: bool
    percentiles: tuple[float, float]
    core: tuple[float, float]
    """bioimageio.core (linear interpolation) values."""
    deepimagej: tuple[float, float]
    """JDLL nearest-rank values."""
    max_abs_diff: float
    tolerance: float

    def describe(self) -> str:
        return (
            f"percentiles {self.percentiles}: bioimageio.core {self.core}, deepImageJ {self.deepimagej}, "
            f"max |diff| {self.max_abs_diff:.3g} (tolerance {self.tolerance:.3g})"
        )


def default_test_shape(layout: TensorLayout, *, yx: int | None = None, z: int | None = None) -> tuple[int, ...]:
    """A small valid user-axes shape for the test input (on the description's size grid)."""
    spec = layout.task
    n_yx = yx if yx is not None else layout.valid_sizes("y", 1)
    # snap onto min + n*step
    def snap(axis: str, n: int) -> int:
        mn, st = layout.min_size[axis], layout.step[axis]
        if st == 0:
            return mn
        return mn + max(0, math.ceil((n - mn) / st)) * st

    shape: list[int] = []
    for a in layout.user_in_axes.lower():
        if a == "z":
            if spec.in_depth:
                shape.append(spec.in_depth)
            else:
                shape.append(snap("z", z if z is not None else max(layout.min_size["z"] + 2, 8)))
        else:
            shape.append(snap(a, n_yx))
    return tuple(shape)


def synthetic_input(task: str | TaskSpec, shape: Sequence[int], seed: int = 0) -> np.ndarray:
    """A realistic low-quality input of ``shape`` (user axes) from the task's forward model.

    Uses :func:`unifmir.data.forward.make_pair`; falls back to smooth random structures plus
    Poisson-like noise when the data layer is not available.
    """
    spec = get_task(task)
    rng = np.random.default_rng(seed)
    try:
        from unifmir.data.forward import make_pair

        pair = make_pair(spec.name, rng, size=int(max(shape[-2:])))
        x = np.asarray(pair[0], dtype=np.float32)
        if x.shape != tuple(shape):
            x = _fit(x, tuple(shape))
        return x
    except ImportError:
        pass
    from scipy import ndimage

    base = rng.random(shape).astype(np.float32)
    base = ndimage.gaussian_filter(base, sigma=[1.0] * len(shape))
    base = (base - base.min()) / (np.ptp(base) + 1e-6)
    base = base**4 * 200 + 10
    return rng.poisson(base).astype(np.float32)


def _fit(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Crop or edge-pad ``x`` to ``shape`` (the forward model may round sizes).

    A stack given for a 2D layout (the single-slice denoise variant) contributes its centre slice.
    """
    if x.ndim == len(shape) + 1:
        x = x[x.shape[0] // 2]
    if x.ndim != len(shape):
        raise ValueError(f"synthetic input has {x.ndim} dimensions, expected {len(shape)}")
    sl = tuple(slice(0, min(a, b)) for a, b in zip(x.shape, shape))
    x = x[sl]
    pad = [(0, b - a) for a, b in zip(x.shape, shape)]
    return np.pad(x, pad, mode="edge") if any(p[1] for p in pad) else x


def interpolated_percentile(x: np.ndarray, p: float) -> float:
    """bioimageio.core's sample quantile (xarray/numpy ``linear`` method)."""
    return float(np.quantile(np.asarray(x, dtype=np.float64).ravel(), p / 100.0))


def nearest_rank_percentile(x: np.ndarray, p: float) -> float:
    """deepImageJ's (JDLL's) percentile: ``sorted[int(N * p)]``, clamped to the last element."""
    flat = np.sort(np.asarray(x, dtype=np.float64).ravel())
    n = flat.size
    idx = min(max(int(n * (p / 100.0)), 0), n - 1)
    return float(flat[idx])


def _ranks(n: int, p: float) -> tuple[int, int]:
    """Lowest and highest sorted index either definition may read for percentile ``p``."""
    pos = (n - 1) * p / 100.0
    idx = {math.floor(pos), math.ceil(pos), min(max(int(n * p / 100.0), 0), n - 1)}
    return min(idx), max(idx)


def prepare_for_percentiles(x: np.ndarray, percentiles: tuple[float, float]) -> np.ndarray:
    """Clip ``x`` so both percentile definitions give identical values (see module docstring).

    Only the few pixels beyond the percentile ranks change (at most ``N * (100 - pmax) / 100 + 2``
    at the top and ``N * pmin / 100 + 2`` at the bottom).
    """
    arr = np.asarray(x, dtype=np.float32)
    flat = np.sort(arr.ravel())
    n = flat.size
    lo_p, hi_p = percentiles
    _, lo_hi_idx = _ranks(n, lo_p)
    hi_lo_idx, _ = _ranks(n, hi_p)
    lo_v = flat[lo_hi_idx]
    hi_v = flat[hi_lo_idx]
    if hi_v <= lo_v:
        raise ValueError(
            f"test input is (nearly) constant between the {lo_p} and {hi_p} percentiles; "
            "give a test image with some contrast"
        )
    return np.clip(arr, lo_v, hi_v).astype(np.float32)


def check_percentile_agreement(
    x: np.ndarray, percentiles: tuple[float, float], rtol: float = 1e-6
) -> PercentileCheck:
    """Compare bioimageio.core's and deepImageJ's percentiles of ``x``."""
    core = (interpolated_percentile(x, percentiles[0]), interpolated_percentile(x, percentiles[1]))
    dij = (nearest_rank_percentile(x, percentiles[0]), nearest_rank_percentile(x, percentiles[1]))
    diff = max(abs(a - b) for a, b in zip(core, dij))
    tol = rtol * max(1e-12, abs(core[1] - core[0]))
    return PercentileCheck(
        ok=diff <= tol, percentiles=percentiles, core=core, deepimagej=dij, max_abs_diff=diff, tolerance=tol
    )


def write_sample_tiff(path: Path, layout: TensorLayout, user_image: np.ndarray) -> Path:
    """Write the sample tensor: the test input in user axes as an ImageJ TIFF (float32)."""
    import tifffile

    arr = np.ascontiguousarray(np.asarray(user_image, dtype=np.float32))
    tifffile.imwrite(path, arr, imagej=True, metadata={"axes": layout.user_in_axes})
    return path



# --------------------------------------------------------------------------------------------
# memory model of one whole-image run


def _fake_stages(task_module: TaskModule, user_shape: Sequence[int]) -> tuple[list[tuple[int, int, int, int]], int]:
    """Run ``views`` and ``global_stage`` on fake tensors (shapes only, no memory, no compute).

    Returns the local stage's input shapes and the largest output (elements) of any submodule the
    global stage called (0 for an identity global stage).
    """
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode

    largest = [0]

    def hook(_m: Any, _i: Any, out: Any) -> None:
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                largest[0] = max(largest[0], int(t.numel()))

    handles = [m.register_forward_hook(hook) for m in task_module.modules() if m is not task_module]
    try:
        with FakeTensorMode(allow_non_fake_inputs=True), torch.no_grad():
            x = torch.empty((1, 1, *[int(n) for n in user_shape]))
            views = task_module.views(x)
            largest[0] = 0
            shapes = [_nchw(task_module.global_stage(v).shape) for v in views]
    finally:
        for h in handles:
            h.remove()
    return shapes, largest[0]


def _nchw(shape: Sequence[int]) -> tuple[int, int, int, int]:
    n, c, h, w = (int(d) for d in shape)  # the local stage takes batches of 2-D images
    return n, c, h, w


def local_calls(task_module: TaskModule, user_shape: Sequence[int]) -> list[tuple[int, int, int, int]]:
    """``(n, c, h, w)`` of each batch of 2-D images the local stage sees for one input of
    ``user_shape`` (user axes, batch 1): the module's own ``views`` and ``global_stage`` run on fake
    tensors (shapes only)."""
    return _fake_stages(task_module, user_shape)[0]


def estimate_run_bytes(task_module: TaskModule, user_shape: Sequence[int]) -> int:
    """Estimated peak bytes of one whole-image forward of ``task_module`` on ``user_shape``.

    * local stage (``task_module.chunk`` 2-D images per call): ``bytes_per_pixel`` x the pixels of
      the largest call;
    * global stage (projection's ENLCN, volumetric's UNetA; run once on the whole image): 6 x the
      largest output of any of its layers (input, output, skip and attention temporaries);
    * every view and its output held at once (x2 for the merge), and the input; float32.
    """
    from unifmir.predict.api import bytes_per_pixel

    calls, global_largest = _fake_stages(task_module, user_shape)
    chunk = int(task_module.chunk) or 1
    scale = int(task_module.scale)
    per_call = max(min(n, chunk) * h * w for n, _, h, w in calls)
    held = sum(n * (c + scale * scale) * h * w for n, c, h, w in calls)
    local = bytes_per_pixel(task_module) * per_call
    return int(max(local, 4 * 6 * global_largest) + 4 * (2 * held + math.prod(user_shape)))


def fit_test_shape(
    layout: TensorLayout, task_module: TaskModule, shape: Sequence[int], budget: int = TEST_RUN_BUDGET
) -> tuple[int, ...]:
    """The largest valid user-axes shape <= ``shape`` whose whole-image run fits ``budget``.

    ``shape`` is first snapped down onto the layout's size grid; then the longest parameterised
    axis shrinks (by ~10 %, on the grid, never below its minimum) until
    :func:`estimate_run_bytes` <= ``budget`` or every axis is at its minimum.
    """
    axes = layout.user_in_axes.lower()
    out = list(int(n) for n in shape)
    for i, a in enumerate(axes):
        mn, st = layout.min_size.get(a, 0), layout.step.get(a, 0)
        if st:
            out[i] = mn + max(0, (out[i] - mn) // st) * st
    while (est := estimate_run_bytes(task_module, out)) > budget:
        movable = [i for i, a in enumerate(axes) if layout.step.get(a, 0) and out[i] > layout.min_size[a]]
        if not movable:
            break
        if est > 1.5 * budget:  # far off: shrink every movable axis by the same factor
            f = (budget / est) ** (1.0 / len(movable))
            for i in movable:
                mn, st = layout.min_size[axes[i]], layout.step[axes[i]]
                out[i] = max(mn, mn + int((out[i] * f - mn) // st) * st)
            continue
        i = max(movable, key=lambda k: out[k] / layout.step[axes[k]])
        st, mn = layout.step[axes[i]], layout.min_size[axes[i]]
        out[i] = max(mn, out[i] - max(st, (out[i] // 10) // st * st))
    return tuple(out)


def fit_test_input(
    image: np.ndarray, layout: TensorLayout, task_module: TaskModule, budget: int = TEST_RUN_BUDGET
) -> np.ndarray:
    """``image`` (user axes) cropped about its centre to :func:`fit_test_shape` (unchanged if it fits)."""
    shape = fit_test_shape(layout, task_module, image.shape, budget)
    if tuple(shape) == tuple(image.shape):
        return image
    sl = tuple(slice((n - k) // 2, (n - k) // 2 + k) for n, k in zip(image.shape, shape))
    return np.ascontiguousarray(image[sl])
