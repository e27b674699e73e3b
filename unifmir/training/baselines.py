"""Classical (non-learned) baselines, computed on the same images as a model.

Every task names its classical comparison in the registry (``TaskSpec.classical_baseline``); this
module maps that *name* to one function, so adding a task means adding a registry entry and one
function here, never an ``if task == ...`` chain. Each function takes the low-quality input in the
task's user axes (``TaskSpec.input_axes``) and returns one or more named restorations in the task's
output axes (``TaskSpec.output_axes``), shaped like the ground truth when ``target_shape`` is given.

========================  ==========================================================================
task (registry name)      baseline(s)
========================  ==========================================================================
sr                        bicubic upsampling by ``TaskSpec.scale``
denoise                   the noisy input itself, and a 2D Gaussian filter of every slice
isotropic                 linear interpolation along z (``TaskSpec.z_factor`` or the target depth)
projection                maximum-intensity projection along z
volumetric                shift-and-add back-projection of the ``lenslets**2`` light-field views
========================  ==========================================================================

The metric protocols fit or rescale the prediction's intensities (``care``: affine least-squares
fit; ``unifmir``: min-max), so baselines need not match the ground truth's intensity scale.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from unifmir.tasks import TaskSpec, get_task

__all__ = [
    "BaselineFn",
    "BASELINES",
    "run_baselines",
    "bicubic_upsampling",
    "noisy_and_gaussian",
    "linear_z_interpolation",
    "maximum_intensity_projection",
    "lightfield_back_projection",
    "GAUSSIAN_SIGMA",
]

BaselineFn = Callable[[np.ndarray, TaskSpec, "tuple[int, ...] | None"], "dict[str, np.ndarray]"]
"""``fn(image, spec, target_shape) -> {baseline name: restored image}``."""

GAUSSIAN_SIGMA: float = 1.0
"""Standard deviation (pixels, in y and x) of the denoising Gaussian filter baseline."""


def _as_float(image: np.ndarray) -> np.ndarray:
    return np.asarray(image, dtype=np.float32)


def _resize_2d(image: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    """Resize the last two axes of ``image`` with ``torch.nn.functional.interpolate``."""
    arr = _as_float(image)
    lead = arr.shape[:-2]
    t = torch.from_numpy(np.ascontiguousarray(arr.reshape(-1, 1, *arr.shape[-2:])))
    kwargs = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
    out = F.interpolate(t, size=size, mode=mode, **kwargs)
    return out.reshape(*lead, *size).numpy()


def bicubic_upsampling(
    image: np.ndarray, spec: TaskSpec, target_shape: tuple[int, ...] | None = None
) -> dict[str, np.ndarray]:
    """Bicubic upsampling of a ``YX`` image by ``spec.scale`` (or to ``target_shape``).

    Uses ``torch.nn.functional.interpolate(mode="bicubic", align_corners=False)`` (cubic
    convolution, a = -0.75), the usual "bicubic" of SR papers.
    """
    arr = _as_float(image)
    if target_shape is None:
        target_shape = (arr.shape[-2] * spec.scale, arr.shape[-1] * spec.scale)
    return {"bicubic": _resize_2d(arr, (int(target_shape[-2]), int(target_shape[-1])), "bicubic")}


def noisy_and_gaussian(
    image: np.ndarray,
    spec: TaskSpec,
    target_shape: tuple[int, ...] | None = None,
    sigma: float | None = None,
) -> dict[str, np.ndarray]:
    """The noisy ``ZYX`` input unchanged, and each z-slice smoothed by a 2D Gaussian filter.

    ``sigma`` defaults to :data:`GAUSSIAN_SIGMA` pixels; borders are reflected.
    """
    arr = _as_float(image)
    sig = GAUSSIAN_SIGMA if sigma is None else float(sigma)
    yx_sigma = (0.0,) * (arr.ndim - 2) + (sig, sig)
    return {
        "noisy input": arr.copy(),
        f"gaussian filter (sigma={sig:g})": ndimage.gaussian_filter(arr, yx_sigma, mode="reflect"),
    }


def linear_z_interpolation(
    image: np.ndarray, spec: TaskSpec, target_shape: tuple[int, ...] | None = None
) -> dict[str, np.ndarray]:
    """Linear interpolation of an axially undersampled ``ZYX`` stack along z.

    Uses :func:`unifmir.data.forward.upsample_z` (the data module's convention: input slice ``k``
    is target slice ``k * f``, slices beyond the last input slice repeat it) with
    ``f = spec.z_factor``, or — when ``target_shape`` does not fit ``ceil(Z_target / f)`` input
    slices — the factor ``Z_target / Z_input`` rounded. An input that already has the target's
    depth (a stack brought to isotropic sampling before the network) is returned unchanged.
    """
    from unifmir.data.forward import upsample_z

    arr = _as_float(image)
    nz = arr.shape[0]
    factor = int(spec.z_factor or 1)
    if target_shape is None:
        depth = nz * factor
    else:
        depth = int(target_shape[0])
        if depth == nz:
            return {"linear z interpolation": arr.copy()}
        if -(-depth // factor) != nz:
            factor = max(1, int(round(depth / nz)))
    out = np.asarray(upsample_z(arr, factor, depth), dtype=np.float32)
    if target_shape is not None and out.shape[1:] != tuple(target_shape[1:]):
        out = _resize_2d(out, (int(target_shape[-2]), int(target_shape[-1])), "bilinear")
    return {"linear z interpolation": out}


def maximum_intensity_projection(
    image: np.ndarray, spec: TaskSpec, target_shape: tuple[int, ...] | None = None
) -> dict[str, np.ndarray]:
    """Maximum-intensity projection of a ``ZYX`` stack along z (exactly ``image.max(axis=0)``)."""
    return {"maximum-intensity projection": _as_float(image).max(axis=0)}


def _default_disparity() -> float:
    """The light-field forward model's default disparity (:mod:`unifmir.data.forward`)."""
    import inspect

    from unifmir.data.forward import lightfield_forward

    return float(inspect.signature(lightfield_forward).parameters["disparity"].default)


def lightfield_back_projection(
    image: np.ndarray,
    spec: TaskSpec,
    target_shape: tuple[int, ...] | None = None,
    disparity: float | None = None,
) -> dict[str, np.ndarray]:
    """Shift-and-add back-projection ("refocusing") of a raw light-field image to a volume.

    The raw ``YX`` image of ``n x n``-pixel lenslets (``n = spec.lenslets``; pixel
    ``(n i + u, n j + v)`` is view ``(u, v)`` at lenslet ``(i, j)``) is rearranged into its
    ``n**2`` views of ``H/n x W/n`` pixels (``pixel_unshuffle``, the network's input channels).
    The forward model (:func:`unifmir.data.forward.lightfield_forward`) sees plane ``z`` in view
    ``(u, v)`` shifted by ``disparity * (z - z0) * (du, dv)`` raw pixels (``z0`` the central slice,
    ``du, dv`` the view's offsets from the central view); the back-projection undoes that shift
    for each slice (bilinear, sub-pixel, in view pixels), averages all views and upsamples the
    refocused slice bilinearly by ``n`` to the raw image size. ``disparity`` defaults to the
    forward model's default; the depth is ``spec.out_depth`` (or ``target_shape[0]``).
    """
    n = int(spec.lenslets or 1)
    depth = int(target_shape[0]) if target_shape is not None else int(spec.out_depth or 1)
    disp = _default_disparity() if disparity is None else float(disparity)
    arr = _as_float(image)
    h, w = arr.shape[-2] // n, arr.shape[-1] // n
    arr = arr[..., : h * n, : w * n]
    views = torch.from_numpy(np.ascontiguousarray(arr)).reshape(1, 1, h * n, w * n)
    views = F.pixel_unshuffle(views, n)[0]  # (n*n, h, w), view index = u*n + v
    offs = torch.arange(n, dtype=torch.float32) - (n - 1) / 2
    du = offs.repeat_interleave(n)  # y offset of each view
    dv = offs.repeat(n)  # x offset of each view
    zc = (depth - 1) / 2
    # sampling offset (view pixels) per slice and unit view offset: plane(Y) = view((Y - s) / n)
    shift = -disp * (torch.arange(depth, dtype=torch.float32) - zc) / n
    ty = (du[None, :] * shift[:, None]) * 2.0 / h
    tx = (dv[None, :] * shift[:, None]) * 2.0 / w
    theta = torch.zeros(depth * n * n, 2, 3)
    theta[:, 0, 0] = 1.0
    theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = tx.reshape(-1)
    theta[:, 1, 2] = ty.reshape(-1)
    grid = F.affine_grid(theta, [depth * n * n, 1, h, w], align_corners=False)
    src = views[None].expand(depth, -1, -1, -1).reshape(depth * n * n, 1, h, w)
    shifted = F.grid_sample(src, grid, mode="bilinear", padding_mode="border", align_corners=False)
    refocused = shifted.reshape(depth, n * n, h, w).mean(dim=1)
    out_size = (h * n, w * n) if target_shape is None else tuple(target_shape[-2:])
    vol = F.interpolate(refocused[:, None], size=out_size, mode="bilinear", align_corners=False)
    return {"back-projection": vol[:, 0].numpy()}


BASELINES: Mapping[str, BaselineFn] = {
    "bicubic upsampling": bicubic_upsampling,
    "noisy input / Gaussian filter": noisy_and_gaussian,
    "linear z interpolation": linear_z_interpolation,
    "maximum-intensity projection": maximum_intensity_projection,
    "back-projection": lightfield_back_projection,
}
"""Baseline function by ``TaskSpec.classical_baseline`` name."""


def _baseline_fn(spec: TaskSpec) -> BaselineFn:
    try:
        return BASELINES[spec.classical_baseline]
    except KeyError:
        raise ValueError(
            f"task {spec.name!r} names the classical baseline {spec.classical_baseline!r}, which "
            f"unifmir.training.baselines does not implement (known: {', '.join(BASELINES)})"
        ) from None


def run_baselines(
    image: np.ndarray, task: str | TaskSpec, target_shape: tuple[int, ...] | None = None
) -> dict[str, np.ndarray]:
    """Run the task's classical baseline(s) on one input image.

    ``image`` is in the task's input axes; the results are in its output axes, shaped like
    ``target_shape`` when given. Returns ``{baseline name: image}`` (float32).
    """
    spec = get_task(task)
    return _baseline_fn(spec)(np.asarray(image), spec, target_shape)

