"""Image-quality metrics (PSNR, SSIM, NRMSE) under named, documented protocols.

The metric kernels are torchmetrics' (``structural_similarity_index_measure``,
``mean_squared_error``), computed in float64. What
differs between papers is how images are brought to a common scale before comparing them, so
every number this package reports comes from :func:`evaluate_pair` with a named protocol
(:data:`PROTOCOLS`) and its stated data range. There is never a maximum over variants.

``care`` (CARE / DeepBacs / ZeroCostDL4Mic)
    The ground truth is percentile-normalised over the whole image or volume
    (``(gt - p0.1) / (p99.9 - p0.1)``); the prediction is affinely fitted to it, ``a*pred + b`` with
    ``a, b`` minimising the MSE over the whole image/volume (so any affine rescaling of a
    prediction scores the same). data_range 1. PSNR and NRMSE over the whole image/volume, SSIM
    (Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03) per 2D slice and averaged. (ZeroCostDL4Mic
    also subtracts the mean of both images before the fit; that leaves MSE/PSNR/NRMSE unchanged and
    only shifts SSIM's luminance term -- we keep the ground truth in its normalised range.)
``unifmir`` (UniFMIR reference code)
    Each 2D slice of prediction and ground truth is min-max scaled to ``[0, 255]`` separately;
    data_range 255; PSNR, SSIM (Gaussian 11/1.5, K1 0.01, K2 0.03) and NRMSE per 2D slice, averaged
    over slices.

NRMSE is the root-mean-square error divided by the protocol's data range. SSIM follows
torchmetrics' border convention: reflect padding, map averaged over all pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Protocol",
    "PROTOCOLS",
    "psnr",
    "ssim",
    "nrmse",
    "evaluate_pair",
    "care_normalize",
    "minmax_255",
]


@dataclass(frozen=True)
class Protocol:
    """How a prediction and ground truth are scaled and compared."""

    name: str
    data_range: float
    description: str
    gt_percentiles: tuple[float, float] | None = None
    affine_fit: bool = False
    per_slice: tuple[str, ...] = ("ssim",)
    ssim_kernel: int = 11
    ssim_sigma: float = 1.5
    k1: float = 0.01
    k2: float = 0.03


PROTOCOLS: dict[str, Protocol] = {
    "care": Protocol(
        name="care",
        data_range=1.0,
        description="ground truth percentile-normalised (0.1/99.9) over the image/volume; "
        "prediction affinely fitted (least squares) to it; data_range 1; PSNR and NRMSE over the "
        "image/volume, SSIM (Gaussian 11/1.5, K1 0.01, K2 0.03) per 2D slice, averaged",
        gt_percentiles=(0.1, 99.9),
        affine_fit=True,
        per_slice=("ssim",),
    ),
    "unifmir": Protocol(
        name="unifmir",
        data_range=255.0,
        description="prediction and ground truth each min-max scaled to [0, 255] per 2D slice; "
        "data_range 255; PSNR, SSIM (Gaussian 11/1.5, K1 0.01, K2 0.03) and NRMSE per 2D slice, "
        "averaged",
        per_slice=("psnr", "ssim", "nrmse"),
    ),
}


def _t(x: Any):
    import torch

    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float64)
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


def _check(pred: Any, gt: Any) -> tuple[np.ndarray, np.ndarray]:
    from unifmir.data.io import ImageError

    p = pred.detach().cpu().numpy() if hasattr(pred, "detach") else np.asarray(pred)
    g = gt.detach().cpu().numpy() if hasattr(gt, "detach") else np.asarray(gt)
    if p.shape != g.shape:
        raise ImageError(f"prediction shape {p.shape} differs from ground truth shape {g.shape}")
    if p.size == 0:
        raise ImageError("cannot compute metrics of empty images")
    for name, a in (("prediction", p), ("ground truth", g)):
        if a.dtype.kind not in "biuf":
            raise ImageError(f"{name} has non-numeric dtype {a.dtype}")
        if not np.isfinite(a).all():
            raise ImageError(f"{name} contains NaN or infinite values")
    return p.astype(np.float64), g.astype(np.float64)


def psnr(pred: Any, gt: Any, data_range: float) -> float:
    """PSNR ``10 log10(data_range^2 / MSE)`` over all pixels (``inf`` for identical images).

    The MSE is torchmetrics' ``mean_squared_error`` in float64; the logarithm is taken in float64
    too (torchmetrics' own PSNR holds ``data_range`` in float32, ~1e-6 dB off).
    """
    from torchmetrics.functional import mean_squared_error

    p, g = _check(pred, gt)
    mse = float(mean_squared_error(_t(p).reshape(-1), _t(g).reshape(-1)))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(float(data_range) ** 2 / mse)


def nrmse(pred: Any, gt: Any, data_range: float) -> float:
    """Root-mean-square error divided by ``data_range``."""
    from torchmetrics.functional import mean_squared_error

    p, g = _check(pred, gt)
    rmse = float(mean_squared_error(_t(p).reshape(-1), _t(g).reshape(-1), squared=False))
    return rmse / float(data_range)


def ssim(
    pred: Any,
    gt: Any,
    data_range: float,
    kernel_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> float:
    """Gaussian-window SSIM of 2D images; for ``(..., Y, X)`` arrays the mean over 2D slices.

    torchmetrics' convention: images are reflect-padded by 5 pixels (mirror about the edge
    pixel) and the SSIM map is averaged over every pixel of the image.
    """
    from torchmetrics.functional.image import structural_similarity_index_measure

    from unifmir.data.io import ImageError

    p, g = _check(pred, gt)
    if p.ndim < 2:
        raise ImageError(f"SSIM needs images with at least 2 dimensions, got shape {p.shape}")
    if min(p.shape[-2:]) < kernel_size:
        raise ImageError(
            f"SSIM needs images of at least {kernel_size}x{kernel_size} pixels, got {p.shape[-2:]}"
        )
    tp = _t(p).reshape(-1, 1, *p.shape[-2:])
    tg = _t(g).reshape(-1, 1, *g.shape[-2:])
    val = structural_similarity_index_measure(
        tp, tg, gaussian_kernel=True, sigma=sigma, kernel_size=kernel_size,
        data_range=float(data_range), k1=k1, k2=k2, reduction="elementwise_mean",
    )
    return float(val[0] if isinstance(val, tuple) else val)  # a tuple only with return_full_image


def care_normalize(
    pred: Any, gt: Any, pmin: float = 0.1, pmax: float = 99.9
) -> tuple[np.ndarray, np.ndarray]:
    """CARE scaling: ``gt`` percentile-normalised, ``pred`` affinely least-squares fitted to it.

    Returns ``(pred_fitted, gt_normalised)`` as float64 arrays.
    """
    p, g = _check(pred, gt)
    lo, hi = np.percentile(g, [pmin, pmax])
    gn = (g - lo) / (hi - lo + 1e-20) if hi > lo else g - lo
    pc = p - p.mean()
    var = float(np.mean(pc * pc))
    a = float(np.mean(pc * (gn - gn.mean()))) / var if var > 0 else 0.0
    return a * pc + gn.mean(), gn


def minmax_255(x: np.ndarray, axes: tuple[int, ...] = (-2, -1)) -> np.ndarray:
    """Min-max scale ``x`` to ``[0, 255]`` over ``axes`` (per 2D slice by default); constant
    slices map to 0."""
    x = np.asarray(x, dtype=np.float64)
    lo = x.min(axis=axes, keepdims=True)
    hi = x.max(axis=axes, keepdims=True)
    rng = hi - lo
    return np.where(rng > 0, (x - lo) / np.where(rng > 0, rng, 1.0), 0.0) * 255.0


def evaluate_pair(
    pred: Any,
    gt: Any,
    protocol: str,
    axes: str | None = None,
) -> dict[str, float]:
    """PSNR, SSIM and NRMSE of ``pred`` against ``gt`` under ``protocol`` (see :data:`PROTOCOLS`;
    required, so that every reported number names its protocol).

    ``axes`` (``YX`` or ``ZYX``, default from the number of dimensions) only checks the layout;
    3D data are handled per slice or per volume as the protocol says. Returns
    ``{"psnr", "ssim", "nrmse", "data_range"}`` as floats.
    """
    from unifmir.data.io import ImageError, default_axes, validate_axes

    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    proto = PROTOCOLS[protocol]
    p, g = _check(pred, gt)
    axes = validate_axes(axes) if axes is not None else default_axes(p.ndim)
    if len(axes) != p.ndim:
        raise ImageError(f"axes {axes!r} do not match images of shape {p.shape}")
    if "C" in axes or "T" in axes:
        raise ImageError(f"evaluate_pair takes single-channel YX or ZYX images, got axes {axes!r}")
    dr = proto.data_range
    if proto.affine_fit:
        p, g = care_normalize(p, g, *(proto.gt_percentiles or (0.1, 99.9)))
    else:
        p, g = minmax_255(p), minmax_255(g)
    out: dict[str, float] = {}
    slices = p.reshape(-1, *p.shape[-2:]), g.reshape(-1, *g.shape[-2:])
    for name, fn in (("psnr", psnr), ("nrmse", nrmse)):
        if name in proto.per_slice:
            out[name] = float(np.mean([fn(a, b, dr) for a, b in zip(*slices)]))
        else:
            out[name] = fn(p, g, dr)
    out["ssim"] = ssim(p, g, dr, proto.ssim_kernel, proto.ssim_sigma, proto.k1, proto.k2)
    out["data_range"] = dr
    return {k: out[k] for k in ("psnr", "ssim", "nrmse", "data_range")}
