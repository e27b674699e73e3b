"""Overlapping tiles in y/x with a discarded halo, smooth blending and exact border shapes.

Model of a tile (one axis; the same holds for y and x independently)::

    |<-- halo -->|<-- blend -->|<------- core (weight 1) ------->|<-- blend -->|<-- halo -->|
      weight 0     linear ramp                                      linear ramp    weight 0

* ``halo`` input pixels at each tile side that lies *inside* the image are computed and thrown
  away (weight 0). When the halo is at least the network's receptive field (see
  :mod:`unifmir.predict.receptive`), every pixel with non-zero weight sees exactly the input it
  sees in a whole-image prediction.
* ``blend`` pixels after the halo ramp linearly from 0 to 1, so neighbouring tiles cross-fade
  (no seams even if the halo were too small). Weights are normalised to sum to 1 per pixel.
* Tile starts are multiples of ``align`` (the Swin window size, 8): the shifted-window grid of a
  tile then coincides with the grid of the whole image, and a tile that ends at the image border
  gets exactly the same reflect padding as the whole image. Together with a halo that covers the
  receptive field this makes tiled == whole-image prediction up to float rounding.
* Tiles at the image border keep weight 1 up to the border (exact output shape, no padding of the
  image). The last tile along an axis starts at an aligned position and runs to the image border,
  so its length is between ``tile`` and ``tile + align - 1``.
* An image smaller than one tile (along an axis) is one tile along that axis: whole-image
  prediction.

All coordinates here are *network input* pixels; the output may be ``scale`` times larger
(SR: 2). Weights are built in output pixels (``halo * scale`` etc.).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Sequence

import torch
from torch import Tensor

__all__ = [
    "TileSpec",
    "axis_tiles",
    "axis_weights",
    "tiled_apply",
    "round_up",
    "round_down",
    "num_tiles",
]


def round_up(value: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` that is ``>= value``."""
    return int(math.ceil(value / multiple)) * multiple


def round_down(value: int, multiple: int) -> int:
    """Largest multiple of ``multiple`` that is ``<= value``."""
    return (value // multiple) * multiple


@dataclass(frozen=True)
class TileSpec:
    """Tiling parameters, all in network-input pixels.

    Attributes:
        tile: tile side (y, x). Values ``>=`` the image side mean "one tile along that axis".
        halo: discarded context per inner tile side (y, x).
        blend: width of the linear cross-fade ramp after the halo.
        align: tile starts are multiples of this (Swin window size; task constraints).
    """

    tile: tuple[int, int]
    halo: tuple[int, int]
    blend: int = 8
    align: int = 8

    def __post_init__(self) -> None:
        for name, v in (("tile", self.tile), ("halo", self.halo)):
            if len(v) != 2 or any(int(a) != a for a in v):
                raise ValueError(f"TileSpec.{name} must be two integers, got {v!r}")
        if self.align < 1 or self.blend < 1:
            raise ValueError(f"align ({self.align}) and blend ({self.blend}) must be >= 1")
        if min(self.halo) < 0:
            raise ValueError(f"halo must be >= 0, got {self.halo}")

    def step(self, axis: int) -> int:
        """Distance between regular tile starts along ``axis`` (0 = y, 1 = x)."""
        return self.tile[axis] - 2 * self.halo[axis] - self.blend

    def check(self, shape: Sequence[int]) -> None:
        """Raise ``ValueError`` if the tile cannot hold halo + blend + core for an image ``shape``."""
        for axis in (0, 1):
            if self.tile[axis] >= shape[axis]:
                continue  # a single tile along this axis
            need = 2 * self.halo[axis] + self.blend + self.align
            if self.tile[axis] < need:
                raise ValueError(
                    f"tile {self.tile[axis]} is too small for overlap/halo {self.halo[axis]}: a tile needs "
                    f"at least 2*halo + blend + align = {need} pixels; increase --tile or decrease --overlap"
                )
            if self.tile[axis] % self.align or self.step(axis) % self.align:
                raise ValueError(
                    f"tile ({self.tile[axis]}) and tile - 2*halo - blend ({self.step(axis)}) must be "
                    f"multiples of {self.align}"
                )


def axis_tiles(length: int, tile: int, halo: int, blend: int, align: int) -> list[tuple[int, int]]:
    """Tile intervals ``[(start, stop), ...]`` covering ``[0, length)`` along one axis.

    Starts are multiples of ``align``; the last tile ends at ``length``. Consecutive tiles overlap
    by at least ``2*halo + blend`` so that every pixel gets a positive blending weight.
    """
    if tile >= length:
        return [(0, length)]
    step = tile - 2 * halo - blend
    if step < align:
        raise ValueError(f"tile {tile} too small for halo {halo} and blend {blend} (step {step} < {align})")
    starts: list[int] = []
    s = 0
    while s + tile < length:
        starts.append(s)
        s += step
    last = round_down(length - tile, align)
    # drop regular tiles that the (longer) last tile makes redundant
    while starts and starts[-1] >= last:
        starts.pop()
    starts.append(last)
    out = []
    for i, st in enumerate(starts):
        stop = st + tile if i < len(starts) - 1 else length
        out.append((st, stop))
    return out


def axis_weights(
    start: int, stop: int, length: int, halo: int, blend: int, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Un-normalised blending weights of one tile along one axis (1-D tensor of ``stop - start``).

    Zero over ``halo`` pixels at inner sides, a linear ramp ``(k + 0.5) / blend`` over ``blend``
    pixels, one elsewhere; sides on the image border get weight one up to the border.
    """
    n = stop - start
    w = torch.ones(n, dtype=torch.float64)
    ramp = (torch.arange(blend, dtype=torch.float64) + 0.5) / blend
    if start > 0:
        w[: min(halo, n)] = 0.0
        a, b = halo, min(halo + blend, n)
        if b > a:
            w[a:b] = torch.minimum(w[a:b], ramp[: b - a])
    if stop < length:
        w[max(n - halo, 0) :] = 0.0
        a, b = max(n - halo - blend, 0), max(n - halo, 0)
        if b > a:
            w[a:b] = torch.minimum(w[a:b], ramp.flip(0)[blend - (b - a) :])
    return w.to(dtype)


def _normalised_axis(length: int, tiles: list[tuple[int, int]], halo: int, blend: int) -> list[Tensor]:
    ws = [axis_weights(a, b, length, halo, blend, torch.float64) for a, b in tiles]
    total = torch.zeros(length, dtype=torch.float64)
    for (a, b), w in zip(tiles, ws):
        total[a:b] += w
    if bool((total <= 0).any()):  # pragma: no cover - guarded by axis_tiles
        raise RuntimeError("tiling leaves pixels without weight; this is a bug")
    return [(w / total[a:b]).to(torch.float32) for (a, b), w in zip(tiles, ws)]


def num_tiles(shape: Sequence[int], spec: TileSpec) -> int:
    """Number of tiles for an image of ``shape`` (y, x)."""
    ny = len(axis_tiles(shape[0], spec.tile[0], spec.halo[0], spec.blend, spec.align))
    nx = len(axis_tiles(shape[1], spec.tile[1], spec.halo[1], spec.blend, spec.align))
    return ny * nx


def _chunks(n: int, size: int) -> Iterator[tuple[int, int]]:
    for a in range(0, n, size):
        yield a, min(a + size, n)


def tiled_apply(
    fn: Callable[[Tensor], Tensor],
    x: Tensor,
    spec: TileSpec,
    *,
    scale: int = 1,
    batch_size: int = 1,
    device: Optional[torch.device | str] = None,
    progress: Optional[Callable[[int], object]] = None,
) -> Tensor:
    """Apply ``fn`` (``(n, C, h, w) -> (n, C', h*scale, w*scale)``) to ``x`` tile by tile.

    Args:
        fn: the (local, window-aligned) network part; called under ``torch.no_grad`` by the caller.
        x: ``(N, C, H, W)`` input on any device (tiles are moved to ``device``).
        spec: tiling parameters (:class:`TileSpec`), in input pixels.
        scale: output/input size ratio in y/x.
        batch_size: number of the ``N`` images run together per tile.
        device: where ``fn`` runs (default: ``x.device``); the result is on ``x.device``.
        progress: called with ``1`` after each (tile, batch) step.

    Returns:
        ``(N, C', H*scale, W*scale)`` float32 tensor on ``x.device``.
    """
    if x.dim() != 4:
        raise ValueError(f"tiled_apply expects (N, C, H, W), got shape {tuple(x.shape)}")
    N, _, H, W = x.shape
    spec.check((H, W))
    dev = torch.device(device) if device is not None else x.device
    ty = axis_tiles(H, spec.tile[0], spec.halo[0], spec.blend, spec.align)
    tx = axis_tiles(W, spec.tile[1], spec.halo[1], spec.blend, spec.align)
    s = int(scale)
    wy = _normalised_axis(H * s, [(a * s, b * s) for a, b in ty], spec.halo[0] * s, spec.blend * s)
    wx = _normalised_axis(W * s, [(a * s, b * s) for a, b in tx], spec.halo[1] * s, spec.blend * s)
    out: Optional[Tensor] = None
    single = len(ty) == 1 and len(tx) == 1
    for (y0, y1), wyi in zip(ty, wy):
        for (x0, x1), wxi in zip(tx, wx):
            # restrict accumulation to the non-zero-weight part of the tile
            ny = torch.nonzero(wyi).flatten()
            nx = torch.nonzero(wxi).flatten()
            ya, yb = int(ny[0]), int(ny[-1]) + 1
            xa, xb = int(nx[0]), int(nx[-1]) + 1
            w2 = (wyi[ya:yb, None] * wxi[None, xa:xb]).to(x.device)
            for n0, n1 in _chunks(N, max(1, int(batch_size))):
                t = x[n0:n1, :, y0:y1, x0:x1].to(dev)
                y = fn(t)
                if y.shape[-2:] != ((y1 - y0) * s, (x1 - x0) * s):
                    raise RuntimeError(
                        f"network returned {tuple(y.shape)} for a tile of {(y1 - y0, x1 - x0)} "
                        f"(expected y/x x{s})"
                    )
                y = y.to(x.device, torch.float32)
                if out is None:
                    out = torch.zeros((N, y.shape[1], H * s, W * s), dtype=torch.float32, device=x.device)
                if single:
                    out[n0:n1] = y
                else:
                    out[n0:n1, :, y0 * s + ya : y0 * s + yb, x0 * s + xa : x0 * s + xb] += (
                        y[:, :, ya:yb, xa:xb] * w2
                    )
                if progress is not None:
                    progress(1)
    assert out is not None
    return out
