"""Image borders: the halo a bundle declares, and the same mirror padding for ``unifmir.predict``.

bioimageio.core runs a bundle on a whole image by padding the input by the declared halo of each
axis (mode ``symmetric``, the spec's default; ``PredictionPipeline.predict_sample_without_blocking``
then crops the halo off the output), *before* the preprocessing computes the percentiles. So a
bundle never sees the network's own border (zero-padded convolutions, fewer neighbours): it sees a
mirrored continuation of the image. :func:`input_halo` is the one rule for the halo per axis (the
export declares it, :func:`unifmir.predict.predict` pads by it), so that ``unifmir predict`` and a
consumer running the bundle compute the same numbers, borders included (measured on the denoise
bundle at 5 photons: without the padding the outermost rows had 5x the interior's squared error).

The halo of an axis is given in *input* pixels (bundles declare it in output pixels: times the
axis' upscaling).
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from unifmir.tasks import TaskSpec, get_task

__all__ = ["input_halo", "yx_halo", "pad_symmetric", "crop_borders"]


def _round_up(value: int, step: int) -> int:
    return int(math.ceil(value / step)) * step


def yx_halo(radius: Optional[int], window: int, lenslets: Optional[int] = None) -> int:
    """The y/x halo for a measured receptive-field ``radius`` (``None``: unbounded local stage):
    rounded up to the window multiple (``4 x window`` when unbounded), then to whole lenslets."""
    h = 4 * int(window) if radius is None else _round_up(int(radius), int(window))
    return _round_up(h, int(lenslets)) if lenslets else h


def input_halo(
    task: str | TaskSpec,
    halo: int,
    *,
    window: int,
    two_d: bool = False,
    z_factor: Optional[int] = None,
    z_halo: Optional[int] = None,
) -> dict[str, int]:
    """Halo per input axis (``"z"``, ``"y"``, ``"x"``) in input pixels.

    ``halo``: the y/x halo (:func:`yx_halo`). z, for a stack-to-stack task: isotropic (``z_factor``
    upsampling), ``ceil(halo / f)`` slices rounded up to the z step ``window / gcd(window, f)``
    (the network sees XZ/YZ slices: its y/x receptive field applies to upsampled z rows);
    otherwise (denoise) half the context window. ``z_halo`` overrides the z value. Tasks that drop
    or add z (projection, volumetric) and ``two_d`` variants have no z halo.
    """
    spec = get_task(task)
    out = {"y": int(halo), "x": int(halo)}
    if two_d and spec.task_module_2d is not None:
        return out
    if spec.input_axes == "ZYX" and spec.output_axes == "ZYX":
        if spec.z_factor is not None:
            f = int(z_factor or spec.z_factor or 1)
            zstep = int(window) // math.gcd(int(window), f)
            out["z"] = _round_up(int(z_halo if z_halo is not None else math.ceil(halo / f)), zstep)
        else:
            out["z"] = int(z_halo if z_halo is not None else spec.context_slices // 2)
    return out


def pad_symmetric(arr: np.ndarray, axes: str, halo: dict[str, int]) -> tuple[np.ndarray, dict[str, int]]:
    """Mirror-pad ``arr`` (axes ``axes``, e.g. ``"ZYX"``) by ``halo`` on both sides of each axis,
    as bioimageio.core pads a bundle's input (numpy ``symmetric``: the edge pixel repeated; a halo
    longer than the axis mirrors again, as xarray does there). Returns the padded array and the
    padding per axis."""
    used = {a.lower(): int(halo.get(a.lower(), 0)) for a in axes}
    widths = [(used[a.lower()], used[a.lower()]) for a in axes]
    return np.pad(arr, widths, mode="symmetric"), used


def crop_borders(out: np.ndarray, out_axes: str, in_shape: dict[str, int], padding: dict[str, int]) -> np.ndarray:
    """Cut the padding back off a prediction of an image of ``in_shape`` padded by ``padding``:
    along each output axis that the input has, ``p x up`` pixels per side, with ``up`` = output
    size / padded input size (the axis' upscaling)."""
    index = []
    for a, n in zip(out_axes.lower(), out.shape):
        p = padding.get(a, 0)
        if not p:
            index.append(slice(None))
            continue
        padded = in_shape[a] + 2 * p
        up = n // padded
        if up * padded != n:
            raise RuntimeError(f"output axis {a} ({n}) is not a whole multiple of the padded input ({padded})")
        index.append(slice(p * up, p * up + in_shape[a] * up))
    return out[tuple(index)]
