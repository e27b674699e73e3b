"""Empirical receptive field of a network (impulse response), cached per model structure.

How it is measured (:func:`measure_receptive_field`):

1. The network part that is tiled (a callable ``(n, C, h, w) -> (n, C', h*s, w*s)``) is run in
   float64 on a random strip of ``L x 32`` pixels (for the y extent; ``32 x L`` for x), twice in one
   batch: once as is and once with an ``align``-pixel band across the whole strip replaced by new
   random values. The band starts on the window grid (a multiple of ``align``), so it covers every
   phase of the shifted-window grid.
2. The output rows where the two results differ by more than ``rel_tol`` (1e-12) times the
   largest difference are the rows the band influences. The distance from the band to the
   farthest such row, converted to input pixels, is the receptive-field radius along that axis.
   (A pixel outside the influence region is computed by exactly the same arithmetic in both
   runs; the threshold only discards effects below float64 round-off, e.g. the ``-100``-masked
   attention weights ``~exp(-100)`` between wrapped regions of shifted windows, which are far
   below any tolerance.)
3. If the influence reaches the strip's end, the strip length is doubled (64, 128, ... up to
   ``max_length``). If it still reaches the end, the network is *non-local* (e.g. global
   attention) and the result is ``None``: such a network cannot be tiled exactly.

By symmetry of "input j influences output i", the radius bounds how far a tile's output may be
affected by what lies outside the tile, so a halo of at least the radius (rounded up to the
window multiple) gives tiled == whole-image results. For the SwinIR body the theoretical bound
is ``(window - 1) * n_swin_blocks + n_3x3_convs`` pixels; the measured value is at most that.

Results are cached in memory and on disk (``$UNIFMIR_CACHE`` or ``~/.cache/unifmir``,
file ``receptive_field.json``), keyed by a fingerprint of the module's class names and
parameter/buffer shapes and value digests plus the probe settings.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Callable, Optional, TypeVar

import torch
from torch import Tensor, nn

from unifmir._atomic import atomic_path

__all__ = [
    "measure_receptive_field",
    "receptive_field",
    "model_fingerprint",
    "cache_dir",
    "clear_cache",
]

_MEMORY_CACHE: dict[str, Optional[tuple[int, int]]] = {}

M = TypeVar("M", bound=nn.Module)


def cache_dir() -> Path:
    """Directory of the on-disk cache (:func:`unifmir._cache.cache_root`)."""
    from unifmir._cache import cache_root

    return cache_root()


def clear_cache() -> None:
    """Forget the in-memory cache (the disk cache is left alone)."""
    _MEMORY_CACHE.clear()


def model_fingerprint(module: nn.Module, extra: str = "") -> str:
    """sha256 of the module tree: class names, parameter/buffer names, shapes and value digests.

    The digests (sum and sum of squares of each tensor) are part of the key because the
    thresholded influence extent depends on the weights (trained networks spread further than
    freshly initialised ones).
    """
    h = hashlib.sha256()
    for name, m in module.named_modules():
        h.update(f"{name}:{type(m).__name__};".encode())
    with torch.no_grad():
        for name, t in list(module.named_parameters()) + list(module.named_buffers()):
            digest = ""
            if t.is_floating_point() and t.numel():
                td = t.detach().to("cpu", torch.float64)
                digest = f"{float(td.sum()):.12e},{float((td * td).sum()):.12e}"
            h.update(f"{name}:{tuple(t.shape)}:{digest};".encode())
    h.update(extra.encode())
    return h.hexdigest()


def _influence_extent(
    fn: Callable[[Tensor], Tensor],
    in_channels: int,
    axis: int,
    length: int,
    width: int,
    align: int,
    scale: int,
    dtype: torch.dtype,
    device: torch.device,
    rel_tol: float,
    generator: torch.Generator,
) -> tuple[int, bool]:
    """Radius (input px) of the influence of a band at the strip centre; and whether it hit an end."""
    shape = (1, in_channels, length, width) if axis == 0 else (1, in_channels, width, length)
    base = torch.rand(shape, generator=generator, dtype=torch.float64)
    pert = base.clone()
    c = (length // 2) // align * align
    band = torch.rand((1, in_channels, align, width), generator=generator, dtype=torch.float64)
    if axis == 0:
        pert[:, :, c : c + align, :] = band
    else:
        pert[:, :, :, c : c + align] = band.transpose(2, 3)
    x = torch.cat([base, pert]).to(device=device, dtype=dtype)
    with torch.no_grad():
        y = fn(x).to(torch.float64)
    d = (y[0] - y[1]).abs()
    prof = d.sum(dim=(0, 2)) if axis == 0 else d.sum(dim=(0, 1))
    mx = float(prof.max())
    if mx == 0.0:
        return 0, False
    idx = torch.nonzero(prof > rel_tol * mx).flatten()
    r0, r1 = int(idx[0]), int(idx[-1]) + 1
    s = scale
    above = -(-(c * s - r0) // s)  # ceil division, in input pixels
    below = -(-(r1 - (c + align) * s) // s)
    hit = r0 == 0 or r1 == length * s
    return max(above, below, 0), hit


def measure_receptive_field(
    fn: Callable[[Tensor], Tensor],
    in_channels: int,
    *,
    scale: int = 1,
    align: int = 8,
    width: int = 32,
    start_length: int = 64,
    max_length: int = 2048,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
    rel_tol: float = 1e-12,
    seed: int = 0,
) -> Optional[tuple[int, int]]:
    """Measure the receptive-field radius ``(ry, rx)`` in input pixels of ``fn`` (see module doc).

    ``fn`` must accept ``dtype`` inputs (convert the module with ``.double()`` first). Returns
    ``None`` when the influence is not bounded within ``max_length`` pixels (non-local network).
    """
    g = torch.Generator().manual_seed(seed)
    dev = torch.device(device)
    result: list[int] = []
    for axis in (0, 1):
        length = max(start_length, 2 * align)
        while True:
            r, hit = _influence_extent(fn, in_channels, axis, length, width, align, scale, dtype, dev, rel_tol, g)
            if not hit:
                result.append(r)
                break
            if length >= max_length:
                return None
            length = min(2 * length, max_length)
    return result[0], result[1]


def receptive_field(
    module: M,
    fn: Optional[Callable[[M, Tensor], Tensor]] = None,
    *,
    in_channels: int,
    part: str = "forward",
    scale: int = 1,
    align: int = 8,
    max_length: int = 2048,
    use_disk_cache: bool = True,
) -> Optional[tuple[int, int]]:
    """Cached receptive field of ``module`` (or of ``fn(module_copy, x)``, a part of it).

    The measurement runs on a float64 copy of ``module`` on the CPU, so ``module`` itself is not
    touched. ``fn`` selects the part that is tiled (default: ``module(x)``) and ``part`` names it
    in the cache key. Returns ``(ry, rx)``
    input pixels or ``None`` for a non-local network.
    """
    key = model_fingerprint(module, f"|{part}|{in_channels}|{scale}|{align}|{max_length}")
    if key in _MEMORY_CACHE:
        return _MEMORY_CACHE[key]
    path = cache_dir() / "receptive_field.json"
    disk: dict[str, Optional[list[int]]] = {}
    if use_disk_cache and path.is_file():
        try:
            disk = json.loads(path.read_text())
        except (OSError, ValueError):
            disk = {}
        if key in disk:
            v = disk[key]
            res = None if v is None else (int(v[0]), int(v[1]))
            _MEMORY_CACHE[key] = res
            return res
    probe = copy.deepcopy(module).to("cpu").double().eval()
    call: Callable[[Tensor], Tensor]
    if fn is None:
        call = probe
    else:
        def call(x: Tensor) -> Tensor:
            return fn(probe, x)

    res = measure_receptive_field(call, in_channels, scale=scale, align=align, max_length=max_length)
    del probe
    _MEMORY_CACHE[key] = res
    if use_disk_cache:
        try:
            disk[key] = None if res is None else [res[0], res[1]]
            with atomic_path(path, overwrite=True) as tmp:
                tmp.write_text(json.dumps(disk, indent=0, sort_keys=True))
        except OSError:  # a read-only home must not break prediction
            pass
    return res
