"""Intensity normalisation shared by training, prediction and export.

* **Percentile** (CSBDeep style): ``y = (x - p_lo) / (p_hi - p_lo + eps)`` with ``p_lo``/``p_hi``
  the ``pmin``/``pmax`` percentiles of the image (or of each slice/channel when ``axes`` names the
  axes to reduce over). ``pmin=0, pmax=100`` is min-max normalisation (the reference SR recipe; no task uses it: one hot pixel would set the scale).
* **VCD** (light-field volumetric task): ``y = x / (1.1 * max(x) / 2) - 1`` so that the data fill
  roughly ``[-1, 0.82]``, matching the tanh output range of the UNetA stage.

Every normaliser returns ``(y, NormStats)``; :func:`denormalize` undoes either kind with the
statistics (prediction de-normalises the network output with the *input's* statistics). All
functions accept numpy arrays and torch tensors and return the same type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from unifmir.tasks import TaskSpec, get_task

__all__ = [
    "NormStats",
    "percentile_normalize",
    "denormalize",
    "vcd_normalize",
    "vcd_denormalize",
    "normalize_for_task",
]

_TORCH_QUANTILE_MAX = 16_000_000  # torch.quantile refuses inputs above 2**24 elements


@dataclass
class NormStats:
    """Statistics of one normalisation.

    ``kind`` is ``"percentile"`` (``lo``/``hi`` are the percentiles, ``y = (x-lo)/(hi-lo+eps)``)
    or ``"vcd"`` (``hi`` is ``1.1*max/2``, ``y = x/hi - 1``; ``lo`` is 0). ``lo``/``hi`` are floats
    or, with per-axis reduction, numpy arrays that broadcast against the data.
    """

    lo: Any
    hi: Any
    eps: float = 1e-6
    kind: str = "percentile"
    pmin: float | None = None
    pmax: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON/YAML-friendly representation (arrays become nested lists)."""

        def conv(v: Any) -> Any:
            return np.asarray(v).tolist() if not isinstance(v, float) else v

        return {
            "kind": self.kind,
            "lo": conv(self.lo),
            "hi": conv(self.hi),
            "eps": self.eps,
            "pmin": self.pmin,
            "pmax": self.pmax,
        }


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def _norm_axes(axes: int | Sequence[int] | None, ndim: int) -> tuple[int, ...] | None:
    if axes is None:
        return None
    if isinstance(axes, int):
        axes = (axes,)
    return tuple(sorted(a % ndim for a in axes))


def _percentiles(x: Any, qs: tuple[float, float], axes: tuple[int, ...] | None) -> tuple[Any, Any]:
    """Percentiles of numpy or torch data (keepdims along ``axes``); numpy results for numpy input."""
    if _is_torch(x):
        import torch

        xf = x.detach()
        if not xf.is_floating_point():
            xf = xf.float()
        if xf.numel() <= _TORCH_QUANTILE_MAX:
            q = torch.tensor([qs[0] / 100.0, qs[1] / 100.0], dtype=xf.dtype, device=xf.device)
            if axes is None:
                r = torch.quantile(xf.reshape(-1), q)
                return r[0], r[1]
            keep = [d for d in range(xf.ndim) if d not in axes]
            perm = keep + list(axes)
            flat = xf.permute(perm).reshape([xf.shape[d] for d in keep] + [-1])
            r = torch.quantile(flat, q, dim=-1)  # (2, *keep)
            shape = [1 if d in axes else xf.shape[d] for d in range(xf.ndim)]
            return r[0].reshape(shape), r[1].reshape(shape)
        lo, hi = _percentiles(xf.cpu().numpy(), qs, axes)
        return (
            torch.as_tensor(lo, dtype=xf.dtype, device=xf.device),
            torch.as_tensor(hi, dtype=xf.dtype, device=xf.device),
        )
    arr = np.asarray(x)
    if qs == (0.0, 100.0):
        lo = np.min(arr, axis=axes, keepdims=axes is not None)
        hi = np.max(arr, axis=axes, keepdims=axes is not None)
    else:
        lo, hi = np.percentile(arr, qs, axis=axes, keepdims=axes is not None)
    if axes is None:
        return float(lo), float(hi)
    return lo.astype(np.float64), hi.astype(np.float64)


def percentile_normalize(
    x: Any,
    pmin: float = 2.0,
    pmax: float = 99.8,
    axes: int | Sequence[int] | None = None,
    eps: float = 1e-6,
    clip: bool = False,
    dtype: Any = np.float32,
) -> tuple[Any, NormStats]:
    """CSBDeep-style percentile normalisation: ``(x - p_pmin) / (p_pmax - p_pmin + eps)``.

    ``axes`` are the axes reduced over when computing percentiles (``None``: the whole array;
    e.g. ``(-2, -1)`` normalises every 2D slice separately). ``clip`` clips the result to
    ``[0, 1]``. ``eps`` keeps constant images finite (they map to 0). Works on numpy arrays
    (result ``dtype``, default float32) and torch tensors (result keeps a floating dtype).
    """
    if not (0.0 <= pmin < pmax <= 100.0):
        raise ValueError(f"percentiles must satisfy 0 <= pmin < pmax <= 100, got {pmin}, {pmax}")
    if eps <= 0:
        raise ValueError(f"eps must be positive, got {eps}")
    if not _is_torch(x):
        x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise TypeError(f"cannot normalise data of dtype {x.dtype}; expected numbers")
    ax = _norm_axes(axes, x.ndim)
    lo, hi = _percentiles(x, (float(pmin), float(pmax)), ax)
    stats = NormStats(lo=lo, hi=hi, eps=eps, kind="percentile", pmin=pmin, pmax=pmax)
    if _is_torch(x):
        xf = x if x.is_floating_point() else x.float()
        y = (xf - lo) / (hi - lo + eps)
        if clip:
            y = y.clamp(0.0, 1.0)
        return y, stats
    arr = np.asarray(x)
    work = np.float64 if np.dtype(dtype) == np.float64 else np.float32
    lo_a, hi_a = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    y = arr.astype(work) - lo_a.astype(work)
    y /= (hi_a - lo_a + eps).astype(work)
    if clip:
        np.clip(y, 0.0, 1.0, out=y)
    return y.astype(dtype, copy=False), stats


def vcd_normalize(x: Any) -> tuple[Any, NormStats]:
    """VCD normalisation ``x / (1.1 * max(x) / 2) - 1`` (returns ``(y, stats)``).

    An all-zero (or non-positive) image uses a scale of 1 so that the result stays finite.
    """
    if _is_torch(x):
        xf = x if x.is_floating_point() else x.float()
        m = float(xf.max())
    else:
        xf = np.asarray(x, dtype=np.float32)
        m = float(xf.max())
    scale = 1.1 * m / 2.0 if m > 0 else 1.0
    return xf / scale - 1.0, NormStats(lo=0.0, hi=scale, eps=0.0, kind="vcd")


def vcd_denormalize(y: Any, stats: NormStats | float) -> Any:
    """Inverse of :func:`vcd_normalize`: ``(y + 1) * scale`` (``stats`` or the scale itself)."""
    scale = stats.hi if isinstance(stats, NormStats) else float(stats)
    return (y + 1.0) * scale


def denormalize(y: Any, stats: NormStats) -> Any:
    """Undo :func:`percentile_normalize` or :func:`vcd_normalize` using ``stats``.

    Per-axis statistics must broadcast against ``y`` (they do when ``y`` has the normalised
    array's shape, or the same number of dimensions with the reduced axes of any size).
    """
    if stats.kind == "vcd":
        return vcd_denormalize(y, stats)
    if stats.kind != "percentile":
        raise ValueError(f"unknown normalisation kind {stats.kind!r}")
    lo, hi = stats.lo, stats.hi
    if _is_torch(y):
        import torch

        lo = torch.as_tensor(lo, dtype=y.dtype, device=y.device)
        hi = torch.as_tensor(hi, dtype=y.dtype, device=y.device)
        return y * (hi - lo + stats.eps) + lo
    y = np.asarray(y)
    out_dtype = y.dtype if y.dtype.kind == "f" else np.float32
    res = y * (np.asarray(hi, np.float64) - np.asarray(lo, np.float64) + stats.eps) + np.asarray(lo, np.float64)
    return res.astype(out_dtype, copy=False)


def normalize_for_task(
    x: Any, task: str | TaskSpec, axes: int | Sequence[int] | None = None, clip: bool = False
) -> tuple[Any, NormStats]:
    """Normalise ``x`` the way ``task`` prescribes (``TaskSpec.normalization`` / ``.percentiles``)."""
    spec = get_task(task)
    if spec.normalization == "vcd":
        return vcd_normalize(x)
    if spec.normalization == "percentile":
        pmin, pmax = spec.percentiles
        return percentile_normalize(x, pmin, pmax, axes=axes, clip=clip)
    raise ValueError(f"task {spec.name!r} declares unknown normalisation {spec.normalization!r}")
