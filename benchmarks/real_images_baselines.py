"""Classical baselines of the real-image benchmark: each variant is its own named method.

No maximum over variants is ever reported as one number: linear and cubic interpolation, the
Gaussian filter of sigma 1 and the Gaussian filter of the best sigma (chosen per crop on the
ground truth, by PSNR under the ``care`` protocol) are separate rows.

=========== ==============================================================================
task        baselines
=========== ==============================================================================
sr          linear interpolation (bilinear), cubic interpolation (bicubic, a = -0.75);
            ``torch.nn.functional.interpolate(align_corners=False)``: a 2x2-binned camera
            pixel's centre sits between its two fine pixels, as that convention assumes
denoise     2D Gaussian filter of every slice, sigma 1 px (the package's baseline); the same
            filter with the best sigma of 0.5, 0.75, ..., 4 px per crop, chosen on the
            ground truth by ``care`` PSNR (an oracle a user does not have)
isotropic   linear z interpolation (``unifmir.data.forward.upsample_z``), cubic-spline z
            interpolation (``scipy.interpolate.CubicSpline``, not-a-knot); input slice k is
            target slice 4k, slices past the last input slice repeat it (both)
projection  maximum-intensity projection, mean projection along z
volumetric  shift-and-add back-projection (``unifmir.training.baselines``)
=========== ==============================================================================
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from scipy.interpolate import CubicSpline

from unifmir.metrics import care_normalize, psnr

__all__ = ["BASELINES", "BEST_SIGMA_GRID", "run_baselines"]

BEST_SIGMA_GRID = tuple(float(s) for s in np.arange(0.5, 4.01, 0.25))


def _resize(img: np.ndarray, shape: tuple[int, int], mode: str) -> np.ndarray:
    t = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32))[None, None]
    return F.interpolate(t, size=shape, mode=mode, align_corners=False)[0, 0].numpy()


def _sr(lq: np.ndarray, target: np.ndarray) -> dict[str, tuple[np.ndarray, dict]]:
    shape = target.shape[-2:]
    return {"linear interpolation": (_resize(lq, shape, "bilinear"), {}),
            "cubic interpolation": (_resize(lq, shape, "bicubic"), {})}


def _gauss2d(vol: np.ndarray, sigma: float) -> np.ndarray:
    return ndimage.gaussian_filter(vol.astype(np.float32), (0.0, sigma, sigma), mode="reflect")


def _denoise(lq: np.ndarray, target: np.ndarray) -> dict[str, tuple[np.ndarray, dict]]:
    best = None
    for s in BEST_SIGMA_GRID:
        pred = _gauss2d(lq, s)
        score = psnr(*care_normalize(pred, target), 1.0)  # = evaluate_pair(..., "care")["psnr"]
        if best is None or score > best[0]:
            best = (score, s, pred)
    assert best is not None
    return {"Gaussian sigma 1": (_gauss2d(lq, 1.0), {}),
            "Gaussian best sigma (oracle)": (best[2], {"sigma": best[1]})}


def _z_positions(zin: int, depth: int, f: int) -> tuple[np.ndarray, np.ndarray]:
    knots = np.arange(zin, dtype=np.float64) * f
    pos = np.clip(np.arange(depth, dtype=np.float64), 0, knots[-1])
    return knots, pos


def _isotropic(lq: np.ndarray, target: np.ndarray) -> dict[str, tuple[np.ndarray, dict]]:
    from unifmir.data.forward import upsample_z

    depth = target.shape[0]
    f = int(round(depth / lq.shape[0]))
    knots, pos = _z_positions(lq.shape[0], depth, f)
    cubic = CubicSpline(knots, lq.astype(np.float64), axis=0)(pos).astype(np.float32)
    return {"linear z interpolation": (np.asarray(upsample_z(lq, f, depth), dtype=np.float32), {}),
            "cubic z interpolation": (cubic, {})}


def _projection(lq: np.ndarray, target: np.ndarray) -> dict[str, tuple[np.ndarray, dict]]:
    return {"maximum projection": (lq.max(axis=0), {}), "mean projection": (lq.mean(axis=0), {})}


def _volumetric(lq: np.ndarray, target: np.ndarray) -> dict[str, tuple[np.ndarray, dict]]:
    from unifmir.training.baselines import lightfield_back_projection
    from unifmir.tasks import get_task

    out = lightfield_back_projection(lq, get_task("volumetric"), tuple(target.shape))
    return {"back-projection": (out["back-projection"], {})}


BASELINES: dict[str, Callable[[np.ndarray, np.ndarray], dict[str, tuple[np.ndarray, dict]]]] = {
    "sr": _sr, "denoise": _denoise, "isotropic": _isotropic, "projection": _projection,
    "volumetric": _volumetric,
}


def run_baselines(task: str, lq: np.ndarray, target: np.ndarray) -> dict[str, tuple[np.ndarray, dict]]:
    """``{baseline name: (restoration shaped like target, extra facts)}`` for one degraded crop.

    ``target`` gives the output shape; only the oracle Gaussian looks at its values.
    """
    return BASELINES[task](lq, target)
