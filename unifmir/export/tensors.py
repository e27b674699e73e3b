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
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from unifmir.export.describe import TensorLayout, user_to_bioimage
from unifmir.tasks import TaskSpec, get_task

__all__ = [
    "PercentileCheck",
    "synthetic_input",
    "interpolated_percentile",
    "nearest_rank_percentile",
    "prepare_for_percentiles",
    "check_percentile_agreement",
    "default_test_shape",
    "write_sample_tiff",
]


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


def as_bioimage(layout: TensorLayout, user_image: np.ndarray) -> np.ndarray:
    """The test-input array (``b, c, ...``) for one user image."""
    return user_to_bioimage(layout, user_image)

