"""Synthetic fluorescent ground-truth structures (2D and 3D), seeded and vectorised.

Every generator takes an output ``shape`` and a ``numpy.random.Generator`` and returns a
``float32`` fluorophore-density map whose isolated structures peak near 1 (overlaps add up).
Sizes are in pixels of the returned grid unless a ``pixel_size`` (micrometres) is taken.
Curves are drawn by splatting densely sampled points (bilinear weights, ``numpy.bincount``)
followed by one Gaussian blur that sets the structure's width, so cost scales with the
number of pixels plus the total curve length, never with a Python loop over pixels.

Structures:

* :func:`filaments` / :func:`filaments3d` -- microtubule/F-actin-like smooth curves; stiffness is a
  persistence length (directions decorrelate as ``exp(-s / persistence)``), density a count.
* :func:`ccps` -- clathrin-coated-pit-like rings (diameter ~100-200 nm) and dots.
* :func:`er_network` -- ER-like tubular polygonal network (Delaunay edges, bent) with faint sheets.
* :func:`nuclei` -- nuclei-like textured ellipsoidal blobs in 2D or 3D.
* :func:`ecoli` -- E. coli-like rods (spherocylinders) with membrane, nucleoid or MreB-like
  helical patch patterns; :func:`saureus` -- S. aureus-like cocci in grape-like clusters with
  division septa; :func:`bacteria` -- a mixture of both.
* :func:`cell_junctions` + :func:`height_map` -- an epithelium's apical junction network and the
  curved surface it lies on (projection task).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
from scipy import ndimage

__all__ = [
    "splat",
    "smooth_noise",
    "resize_linear",
    "filaments",
    "filaments3d",
    "ccps",
    "er_network",
    "nuclei",
    "ecoli",
    "saureus",
    "bacteria",
    "cell_junctions",
    "height_map",
    "microtubules",
    "actin",
    "STRUCTURE_GENERATORS_2D",
]

_SQRT2PI = math.sqrt(2.0 * math.pi)


def _shape(shape: int | Sequence[int], ndim: int | None = None) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),) * (ndim or 2)
    shape = tuple(int(s) for s in shape)
    if ndim is not None and len(shape) != ndim:
        raise ValueError(f"expected a {ndim}D shape, got {shape}")
    if any(s < 1 for s in shape):
        raise ValueError(f"shape must be positive, got {shape}")
    return shape


def splat(shape: Sequence[int], coords: np.ndarray, weights: np.ndarray | float = 1.0) -> np.ndarray:
    """Add point masses at sub-pixel ``coords`` (``(..., ndim)``) with linear interpolation weights.

    Points outside the grid are dropped. Vectorised with ``numpy.bincount``.
    """
    shape = tuple(int(s) for s in shape)
    nd = len(shape)
    c = np.asarray(coords, dtype=np.float64).reshape(-1, nd)
    w = np.broadcast_to(np.asarray(weights, dtype=np.float64), np.asarray(coords).shape[:-1]).reshape(-1)
    base = np.floor(c).astype(np.int64)
    frac = c - base
    size = int(np.prod(shape))
    out = np.zeros(size, dtype=np.float64)
    strides = np.array([int(np.prod(shape[i + 1 :])) for i in range(nd)], dtype=np.int64)
    for corner in range(1 << nd):
        offs = np.array([(corner >> (nd - 1 - i)) & 1 for i in range(nd)], dtype=np.int64)
        idx = base + offs
        ww = w * np.prod(np.where(offs == 1, frac, 1.0 - frac), axis=1)
        ok = np.all((idx >= 0) & (idx < np.array(shape)), axis=1)
        flat = idx[ok] @ strides
        out += np.bincount(flat, weights=ww[ok], minlength=size)
    return out.reshape(shape)


def _interp_matrix(n_out: int, n_in: int) -> np.ndarray:
    """``(n_out, n_in)`` linear-interpolation matrix mapping ``n_in`` samples onto ``n_out``."""
    pos = np.linspace(0, n_in - 1, n_out)
    i0 = np.clip(np.floor(pos).astype(int), 0, max(n_in - 2, 0))
    fr = pos - i0
    m = np.zeros((n_out, n_in), dtype=np.float32)
    m[np.arange(n_out), i0] = 1 - fr
    if n_in > 1:
        m[np.arange(n_out), i0 + 1] += fr
    return m


def resize_linear(arr: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """(Bi/tri)linear resize of ``arr`` to ``shape`` with corner alignment (sample ``k`` of the
    input lands on ``k * (N_out - 1) / (N_in - 1)``); torch's interpolation for 2D/3D."""
    arr = np.asarray(arr, dtype=np.float32)
    shape = tuple(int(s) for s in shape)
    if arr.shape == shape:
        return arr.copy()
    if arr.ndim in (2, 3):
        import torch

        mode = "bilinear" if arr.ndim == 2 else "trilinear"
        with torch.no_grad():
            t = torch.from_numpy(np.ascontiguousarray(arr))[None, None]
            res = torch.nn.functional.interpolate(t, size=shape, mode=mode, align_corners=True)
        return res[0, 0].numpy()
    out = arr
    for ax, n in enumerate(shape):
        if out.shape[ax] != n:
            m = _interp_matrix(n, out.shape[ax])
            out = np.moveaxis(np.tensordot(m, np.moveaxis(out, ax, 0), axes=(1, 0)), 0, ax)
    return np.ascontiguousarray(out, dtype=np.float32)


def smooth_noise(
    shape: Sequence[int], rng: np.random.Generator, scale: float = 8.0, octaves: int = 2
) -> np.ndarray:
    """Smooth random texture in [0, 1] with correlation length ~``scale`` pixels.

    Drawn on a coarse grid (``scale / 2`` times smaller) and linearly upsampled: cheap for 3D.
    """
    shape = tuple(int(s) for s in shape)
    out = np.zeros(shape, dtype=np.float32)
    amp = 1.0
    for o in range(octaves):
        f = max(scale / (2**o) / 2.0, 1.0)
        small = tuple(max(int(math.ceil(n / f)) + 1, 2) for n in shape)
        g = ndimage.gaussian_filter(rng.standard_normal(small).astype(np.float32), 1.0, mode="wrap")
        out += amp * resize_linear(g, shape)
        amp *= 0.5
    lo, hi = float(out.min()), float(out.max())
    return (out - lo) / (hi - lo + 1e-12)


# --------------------------------------------------------------------------------------------
# curves


def _walk2d(
    rng: np.random.Generator, n: int, n_steps: int, step: float, persistence: np.ndarray, shape
) -> np.ndarray:
    """Worm-like chains: ``(n, n_steps, 2)`` points with tangent-angle diffusion ``step/persistence``."""
    start = rng.uniform(0, 1, (n, 1, 2)) * np.array(shape, dtype=np.float64)
    theta0 = rng.uniform(0, 2 * np.pi, (n, 1))
    dtheta = rng.standard_normal((n, n_steps)) * np.sqrt(2.0 * step / persistence[:, None])
    theta = theta0 + np.cumsum(dtheta, axis=1)
    d = np.stack([np.sin(theta), np.cos(theta)], axis=-1) * step
    # centre each chain on its start point so that it crosses the field
    pts = np.cumsum(d, axis=1)
    pts -= pts[:, n_steps // 2 : n_steps // 2 + 1]
    return start + pts


def filaments(
    shape: int | Sequence[int],
    rng: np.random.Generator,
    n: int | None = None,
    persistence: float | tuple[float, float] = (50.0, 500.0),
    length: float | tuple[float, float] | None = None,
    width: float = 1.0,
    step: float = 0.5,
    brightness: tuple[float, float] = (0.6, 1.0),
) -> np.ndarray:
    """2D microtubule/actin-like filaments (worm-like chains).

    ``n`` filaments (default: density ~ one per 40 pixels of image side, i.e. ``2.5*side/100``...);
    ``persistence`` is the persistence length in pixels (a range draws one per filament: stiff
    microtubules ~ hundreds, floppy actin ~ tens); ``length`` their contour length (default
    0.5-1.5 image sides); ``width`` the Gaussian sigma of the drawn line. An isolated filament
    peaks at its brightness (0.6-1 by default).
    """
    shape = _shape(shape, 2)
    side = float(max(shape))
    if n is None:
        n = max(1, int(round(side / 20.0)))
    per = np.asarray(persistence, dtype=np.float64)
    per = rng.uniform(per[0], per[1], n) if per.ndim and per.size == 2 else np.full(n, float(per))
    if length is None:
        length = (0.5 * side, 1.5 * side)
    ln = np.asarray(length, dtype=np.float64)
    ln = rng.uniform(ln[0], ln[1], n) if ln.ndim and ln.size == 2 else np.full(n, float(ln))
    n_steps = int(math.ceil(ln.max() / step)) + 1
    pts = _walk2d(rng, n, n_steps, step, per, shape)
    s = np.arange(n_steps)[None, :] * step
    mid = (n_steps // 2) * step
    keep = np.abs(s - mid) <= ln[:, None] / 2
    b = rng.uniform(brightness[0], brightness[1], n)
    w = keep * b[:, None] * step
    img = splat(shape, pts, w)
    img = ndimage.gaussian_filter(img, width, truncate=3.0) * (_SQRT2PI * width)
    return img.astype(np.float32)


def microtubules(shape, rng, n=None, **kw) -> np.ndarray:
    """Stiff, sparse filaments (persistence 200-2000 px)."""
    kw.setdefault("persistence", (200.0, 2000.0))
    kw.setdefault("width", 1.2)
    return filaments(shape, rng, n=n, **kw)


def actin(shape, rng, n=None, **kw) -> np.ndarray:
    """Dense, floppy, thinner filaments (persistence 15-80 px, 2.5x the default density)."""
    shape = _shape(shape, 2)
    if n is None:
        n = max(1, int(round(2.5 * max(shape) / 20.0)))
    kw.setdefault("persistence", (15.0, 80.0))
    kw.setdefault("width", 0.9)
    kw.setdefault("length", (0.2 * max(shape), 0.8 * max(shape)))
    return filaments(shape, rng, n=n, **kw)


def filaments3d(
    shape: Sequence[int],
    rng: np.random.Generator,
    n: int | None = None,
    persistence: float | tuple[float, float] = (30.0, 300.0),
    length: tuple[float, float] | None = None,
    width: float | Sequence[float] = 1.0,
    step: float = 0.5,
    anisotropy: float = 1.0,
) -> np.ndarray:
    """3D worm-like chains in a ``(Z, Y, X)`` grid; ``anisotropy`` divides z displacements
    (voxel z-size / xy-size) so that curves stay isotropic in physical space."""
    shape = _shape(shape, 3)
    side = float(max(shape[1:]))
    if n is None:
        n = max(1, int(round(side / 25.0)))
    per = np.asarray(persistence, dtype=np.float64)
    per = rng.uniform(per[0], per[1], n) if per.ndim and per.size == 2 else np.full(n, float(per))
    if length is None:
        length = (0.5 * side, 1.5 * side)
    ln = rng.uniform(length[0], length[1], n)
    n_steps = int(math.ceil(ln.max() / step)) + 1
    d = rng.standard_normal((n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    kicks = rng.standard_normal((n_steps, n, 3)) * np.sqrt(step / per)[None, :, None]
    dirs = np.empty((n_steps, n, 3))
    for k in range(n_steps):  # normalised random walk on the sphere; O(n_steps) tiny vector ops
        d = d + kicks[k]
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        dirs[k] = d
    pts = np.cumsum(dirs.transpose(1, 0, 2) * step, axis=1)
    pts -= pts[:, n_steps // 2 : n_steps // 2 + 1]
    pts[..., 0] /= anisotropy
    start = rng.uniform(0, 1, (n, 1, 3)) * np.array(shape, dtype=np.float64)
    pts = start + pts
    s = np.arange(n_steps)[None, :] * step
    keep = np.abs(s - (n_steps // 2) * step) <= ln[:, None] / 2
    b = rng.uniform(0.6, 1.0, n)
    img = splat(shape, pts, keep * b[:, None] * step)
    wv = np.broadcast_to(np.asarray(width, dtype=np.float64), (3,)).copy()
    wv[0] = wv[0] / anisotropy if np.ndim(width) == 0 else wv[0]
    img = ndimage.gaussian_filter(img, wv, truncate=3.0)
    img *= 2.0 * math.pi * float(np.prod(wv)) / float(np.max(wv))  # ~ unit peak for a line
    return img.astype(np.float32)


# --------------------------------------------------------------------------------------------
# punctate and tubular structures


def ccps(
    shape: int | Sequence[int],
    rng: np.random.Generator,
    n: int | None = None,
    radius: tuple[float, float] = (1.5, 4.0),
    ring_fraction: float = 0.6,
    width: float = 0.8,
) -> np.ndarray:
    """Clathrin-coated-pit-like structures: rings of ``radius`` pixels and dots (``1-ring_fraction``).

    Default density: one pit per ~300 pixels (2D).
    """
    shape = _shape(shape, 2)
    if n is None:
        n = max(1, int(np.prod(shape) / 300))
    k = 24
    centres = rng.uniform(0, 1, (n, 1, 2)) * np.array(shape, dtype=np.float64)
    r = rng.uniform(radius[0], radius[1], (n, 1))
    r = np.where(rng.uniform(0, 1, (n, 1)) < ring_fraction, r, 0.0)
    phi = rng.uniform(0, 2 * np.pi, (n, 1)) + np.linspace(0, 2 * np.pi, k, endpoint=False)[None, :]
    pts = centres + r[..., None] * np.stack([np.sin(phi), np.cos(phi)], axis=-1)
    b = rng.uniform(0.4, 1.0, (n, 1))
    # per-point weights giving every ring (line density * sqrt(2 pi) sigma) and every dot
    # (mass * 2 pi sigma^2) a peak equal to its brightness after the Gaussian blur
    w = np.where(r > 0, 2 * np.pi * r / k * _SQRT2PI * width, 2 * np.pi * width**2 / k)
    img = splat(shape, pts, np.broadcast_to(b * w, pts.shape[:2]))
    img = ndimage.gaussian_filter(img, width, truncate=3.0)
    return img.astype(np.float32)


def er_network(
    shape: int | Sequence[int],
    rng: np.random.Generator,
    n_nodes: int | None = None,
    keep: float = 0.75,
    width: float = 1.0,
    bend: float = 0.15,
    sheets: float = 0.3,
    step: float = 1.0,
) -> np.ndarray:
    """ER-like network: Delaunay edges between random nodes (fraction ``keep`` kept), each drawn
    as a bent tubule (quadratic Bezier, ``bend`` x length), plus faint sheets of amplitude ``sheets``."""
    from scipy.spatial import Delaunay

    shape = _shape(shape, 2)
    if n_nodes is None:
        n_nodes = max(8, int(np.prod(shape) / 600))
    pad = 0.1 * np.array(shape, dtype=np.float64)
    nodes = rng.uniform(-pad, np.array(shape) + pad, (n_nodes, 2))
    tri = Delaunay(nodes)
    e = np.concatenate([tri.simplices[:, [0, 1]], tri.simplices[:, [1, 2]], tri.simplices[:, [0, 2]]])
    e = np.unique(np.sort(e, axis=1), axis=0)
    ln_all = np.linalg.norm(nodes[e[:, 1]] - nodes[e[:, 0]], axis=1)
    e = e[(rng.uniform(0, 1, len(e)) < keep) & (ln_all < 2.0 * np.median(ln_all))]
    p0, p1 = nodes[e[:, 0]], nodes[e[:, 1]]
    seg = p1 - p0
    ln = np.linalg.norm(seg, axis=1)
    normal = np.stack([-seg[:, 1], seg[:, 0]], axis=1) / np.maximum(ln, 1e-9)[:, None]
    ctrl = (p0 + p1) / 2 + normal * (rng.standard_normal(len(e)) * bend * ln)[:, None]
    m = int(math.ceil(ln.max() / step)) + 1 if len(e) else 2
    t = np.linspace(0, 1, m)[None, :, None]
    pts = (1 - t) ** 2 * p0[:, None] + 2 * (1 - t) * t * ctrl[:, None] + t**2 * p1[:, None]
    w = (ln / (m - 1))[:, None] * rng.uniform(0.5, 1.0, (len(e), 1))
    img = splat(shape, pts, np.broadcast_to(w, pts.shape[:2]))
    img = ndimage.gaussian_filter(img, width, truncate=3.0) * (_SQRT2PI * width)
    img = np.minimum(img, 1.5)
    if sheets > 0:
        tex = smooth_noise(shape, rng, scale=max(shape) / 6.0, octaves=1)
        img += sheets * np.clip((tex - 0.65) / 0.35, 0, 1)
    return img.astype(np.float32)


def nuclei(
    shape: Sequence[int],
    rng: np.random.Generator,
    n: int | None = None,
    radius: tuple[float, float] = (6.0, 14.0),
    elongation: float = 0.3,
    texture: float = 0.5,
    edge: float = 1.0,
    anisotropy: float = 1.0,
    brightness: tuple[float, float] = (0.5, 1.0),
    fill: float = 0.25,
) -> np.ndarray:
    """Nuclei-like blobs in 2D ``(Y, X)`` or 3D ``(Z, Y, X)``, fully vectorised.

    Each nucleus is a Gaussian bump (two bumps ``elongation x radius`` apart along a random
    direction for elongated nuclei) whose amplitude sets where a soft threshold cuts it, giving
    radii uniform in ``radius`` (pixels) and ~``edge``-pixel soft borders; neighbours touching
    merge like clustered nuclei. The bump field is computed on a coarse grid and linearly
    upsampled before thresholding. A chromatin-like texture modulates intensity by ``texture``
    and a smooth field varies the brightness between nuclei within ``brightness``.
    ``anisotropy`` = z voxel size / xy voxel size (3D). Default count: ``fill`` of the volume.
    """
    shape = tuple(int(s) for s in shape)
    nd = len(shape)
    if nd not in (2, 3):
        raise ValueError(f"nuclei: shape must be 2D or 3D, got {shape}")
    spacing = np.ones(nd)
    if nd == 3:
        spacing[0] = anisotropy
    r_lo, r_hi = float(radius[0]), float(radius[1])
    r_mean = (r_lo + r_hi) / 2
    if n is None:
        vol_phys = float(np.prod(np.array(shape) * spacing))
        unit = (math.pi * r_mean**2) if nd == 2 else (4 / 3 * math.pi * r_mean**3)
        n = max(1, int(fill * vol_phys / unit))
    sigma = r_mean / 1.2  # physical pixels
    t = 1.0  # threshold
    R = rng.uniform(r_lo, r_hi, n)
    elong = rng.uniform(0, elongation, n) * R
    amp = t * np.exp(np.maximum(R**2 - elong**2, 0.25 * R**2) / (2 * sigma**2))
    # coarse grid: ~sigma/2.5 pixels per coarse pixel (physical), never coarser than the grid
    d = np.maximum(np.floor(sigma / 2.5 / spacing), 1.0)
    cshape = tuple(int(math.ceil(s / f)) + 1 for s, f in zip(shape, d))
    centres = rng.uniform(0, 1, (n, nd)) * np.array(shape)  # voxel coordinates
    direc = rng.standard_normal((n, nd))
    direc /= np.linalg.norm(direc, axis=1, keepdims=True)
    off = direc * (elong / 2)[:, None] / spacing[None, :]
    pts = np.concatenate([centres + off, centres - off]) / d
    w = np.concatenate([amp, amp]) / 2 * 1.0
    field = splat(cshape, pts, w)
    sig_c = sigma / spacing / d
    norm = float(np.prod(np.sqrt(2 * np.pi) * sig_c))
    field = ndimage.gaussian_filter(field, sig_c, truncate=3.0) * norm
    # coarse grid point k sits at voxel k*d: resize the first (shape/d) span to the full grid
    span = tuple(int(round((s - 1) / f)) + 1 for s, f in zip(shape, d))
    field = field[tuple(slice(0, k) for k in span)]
    full = resize_linear(field, shape) if field.shape != shape else field.astype(np.float32)
    slope = t * r_mean / sigma**2 * edge  # d(field)/dr at the border, per `edge` px
    slope = max(slope, 1e-6)
    with np.errstate(over="ignore"):
        val = 1.0 / (1.0 + np.exp(-(full - t) / slope))
    floor = 1.0 / (1.0 + math.exp(min(t / slope, 700.0)))  # value far from any nucleus
    val = np.clip((val - floor) / (1.0 - floor), 0.0, None)
    if texture > 0:
        tex = smooth_noise(shape, rng, scale=max(2.0, r_lo / 2), octaves=1)
        val *= 1.0 - texture + texture * tex * 1.6
    bright = smooth_noise(shape, rng, scale=2 * r_mean, octaves=1)
    val *= brightness[0] + (brightness[1] - brightness[0]) * bright
    return np.clip(val, 0, None).astype(np.float32)


# --------------------------------------------------------------------------------------------
# bacteria (DeepBacs-style)


def _place(rng, shape, n, min_dist) -> np.ndarray:
    """Up to ``n`` random centres at least ``min_dist`` apart (dart throwing in batches; stops
    early once a batch of candidates adds nothing, i.e. the field is full)."""
    pts = np.empty((0, 2))
    for _ in range(8):
        cand = rng.uniform(0, 1, (2 * n + 8, 2)) * np.array(shape, dtype=np.float64)
        # drop candidates too close to already accepted points (vectorised), then resolve the rest
        if len(pts):
            d2 = ((cand[:, None, :] - pts[None, :, :]) ** 2).sum(-1).min(1)
            cand = cand[d2 >= min_dist**2]
        added = 0
        for c in cand:
            if len(pts) == 0 or np.min(np.sum((pts - c) ** 2, axis=1)) >= min_dist**2:
                pts = np.vstack([pts, c])
                added += 1
                if len(pts) >= n:
                    return pts
        if added == 0:
            break
    return pts


def ecoli(
    shape: int | Sequence[int],
    rng: np.random.Generator,
    n: int | None = None,
    pixel_size: float = 0.05,
    length_um: tuple[float, float] = (2.0, 4.0),
    width_um: tuple[float, float] = (0.8, 1.0),
    pattern: str = "mixed",
    membrane_width_um: float = 0.06,
    centres: np.ndarray | None = None,
) -> np.ndarray:
    """E. coli-like rods (spherocylinders) seen from above.

    ``pattern``: ``membrane`` (outline of the cell envelope), ``nucleoid`` (DNA: one or two
    elongated central blobs), ``mreb`` (MreB-like patches on the membrane in a helical,
    diagonal-stripe arrangement), ``mixed`` (one of the three per image). All cells carry faint
    cytoplasmic background. Sizes in micrometres; ``pixel_size`` in micrometres per pixel.
    """
    shape = _shape(shape, 2)
    patterns = ("membrane", "nucleoid", "mreb")
    if pattern == "mixed":
        pattern = patterns[int(rng.integers(len(patterns)))]
    if pattern not in patterns:
        raise ValueError(f"unknown E. coli pattern {pattern!r}; choose one of {patterns} or 'mixed'")
    lmax = length_um[1] / pixel_size
    if n is None:
        n = max(1, int(np.prod(shape) * pixel_size**2 / 8.0))
    if centres is None:
        centres = _place(rng, shape, n, min_dist=0.55 * lmax)
    img = np.zeros(shape, dtype=np.float64)
    spots: list[np.ndarray] = []
    mw = max(membrane_width_um / pixel_size, 0.7)
    for c in centres:
        L = rng.uniform(*length_um) / pixel_size
        R = rng.uniform(*width_um) / pixel_size / 2
        th = rng.uniform(0, np.pi)
        u = np.array([np.sin(th), np.cos(th)])  # axis (y, x)
        half = (L - 2 * R) / 2
        ext = int(math.ceil(L / 2 + 4 * mw + 2))
        y0, x0 = int(c[0]) - ext, int(c[1]) - ext
        ys = np.arange(max(0, y0), min(shape[0], y0 + 2 * ext + 1))
        xs = np.arange(max(0, x0), min(shape[1], x0 + 2 * ext + 1))
        if len(ys) == 0 or len(xs) == 0:
            continue
        dy = ys[:, None] - c[0]
        dx = xs[None, :] - c[1]
        along = dy * u[0] + dx * u[1]
        perp = -dy * u[1] + dx * u[0]
        t = np.clip(along, -half, half)
        d = np.sqrt((along - t) ** 2 + perp**2)  # distance to the cell's axis segment
        inside = 1.0 / (1.0 + np.exp((d - R) / 0.7))
        b = rng.uniform(0.6, 1.0)
        val = 0.08 * inside
        if pattern == "membrane":
            val = val + np.exp(-((d - R + mw) ** 2) / (2 * mw**2))
        elif pattern == "nucleoid":
            k = 1 if L < 0.75 * lmax else 2
            cs = [0.0] if k == 1 else [-half / 2, half / 2]
            a = max(half / (1.5 * k), R * 0.6)
            for cc in cs:
                val = val + 0.9 * np.exp(-((along - cc) ** 2) / (2 * a**2) - perp**2 / (2 * (0.45 * R) ** 2))
        else:  # mreb: patches on the envelope along a helix (period ~ 0.7 um)
            m = int(rng.integers(8, 16))
            s = np.sort(rng.uniform(-half - 0.5 * R, half + 0.5 * R, m))
            phase = 2 * np.pi * s / (0.7 / pixel_size) + rng.uniform(0, 2 * np.pi)
            p = (R - mw) * np.sin(phase)
            pos = np.stack([c[0] + s * u[0] - p * u[1], c[1] + s * u[1] + p * u[0]], axis=1)
            spots.append(np.concatenate([pos, np.full((m, 1), b * rng.uniform(0.6, 1.0))], axis=1))
            val = val + 0.15 * np.exp(-((d - R + mw) ** 2) / (2 * mw**2))
        img[np.ix_(ys, xs)] = np.maximum(img[np.ix_(ys, xs)], b * val)
    if spots:
        sp = np.concatenate(spots)
        sig = max(0.08 / pixel_size, 0.8)
        dots = ndimage.gaussian_filter(splat(shape, sp[:, :2], sp[:, 2]), sig) * (2 * np.pi * sig**2)
        img += dots
    return img.astype(np.float32)


def saureus(
    shape: int | Sequence[int],
    rng: np.random.Generator,
    n_clusters: int | None = None,
    pixel_size: float = 0.05,
    diameter_um: tuple[float, float] = (0.8, 1.1),
    cluster_size: tuple[int, int] = (1, 7),
    septum_fraction: float = 0.35,
    membrane_width_um: float = 0.06,
    centres: np.ndarray | None = None,
) -> np.ndarray:
    """S. aureus-like cocci in grape-like clusters (each new coccus touches a random member),
    membrane-labelled, with a division septum across ``septum_fraction`` of the cells."""
    shape = _shape(shape, 2)
    dmax = diameter_um[1] / pixel_size
    if n_clusters is None:
        n_clusters = max(1, int(np.prod(shape) * pixel_size**2 / 6.0))
    if centres is None:
        centres = _place(rng, shape, n_clusters, min_dist=3.2 * dmax)
    mw = max(membrane_width_um / pixel_size, 0.7)
    cells: list[tuple[np.ndarray, float]] = []
    for cc in centres:  # grow each cluster: every new coccus touches a random member
        k = int(rng.integers(cluster_size[0], cluster_size[1] + 1))
        cluster = [(cc, rng.uniform(*diameter_um) / pixel_size / 2)]
        for _ in range(k - 1):
            for _try in range(10):
                (pc, pr) = cluster[int(rng.integers(len(cluster)))]
                r = rng.uniform(*diameter_um) / pixel_size / 2
                a = rng.uniform(0, 2 * np.pi)
                nc = pc + 0.92 * (pr + r) * np.array([np.sin(a), np.cos(a)])
                if all(np.linalg.norm(nc - oc) >= 0.85 * (r + orr) for oc, orr in cluster):
                    cluster.append((nc, r))
                    break
        cells.extend(cluster)
    if not cells:
        return np.zeros(shape, np.float32)
    # render all cells at once: membrane rings, septa and a faint interior, splatted then blurred
    m = len(cells)
    c = np.array([cl[0] for cl in cells])
    R = np.array([cl[1] for cl in cells]) - mw  # membrane centre line
    b = rng.uniform(0.6, 1.0, m)
    k = 96
    phi = np.linspace(0, 2 * np.pi, k, endpoint=False)[None, :] + rng.uniform(0, 2 * np.pi, (m, 1))
    ring = c[:, None, :] + R[:, None, None] * np.stack([np.sin(phi), np.cos(phi)], axis=-1)
    ring_w = (b * 2 * np.pi * R / k)[:, None] * np.ones((1, k))
    q = 24
    has_septum = rng.uniform(size=m) < septum_fraction
    ang = rng.uniform(0, np.pi, m)
    t = np.linspace(-1, 1, q)[None, :] * R[:, None]
    sept = c[:, None, :] + t[..., None] * np.stack([np.cos(ang), np.sin(ang)], axis=-1)[:, None, :]
    sept_w = (0.8 * b * has_septum * 2 * R / q)[:, None] * np.ones((1, q))
    lines = splat(shape, np.concatenate([ring, sept], axis=1), np.concatenate([ring_w, sept_w], axis=1))
    img = ndimage.gaussian_filter(lines, mw, truncate=3.0) * (_SQRT2PI * mw)
    inner = splat(shape, c, b * 0.06 * 2 * np.pi * (R / 2) ** 2)
    img += ndimage.gaussian_filter(inner, float(np.mean(R)) / 2, truncate=3.0)
    return img.astype(np.float32)


def bacteria(
    shape: int | Sequence[int], rng: np.random.Generator, pixel_size: float = 0.05, mix: float = 0.5
) -> np.ndarray:
    """A field with both E. coli-like rods (membrane-labelled) and S. aureus-like cocci clusters.

    Rods and clusters share one set of non-overlapping sites (3.6 um apart); each site holds a rod
    with probability ``mix``, otherwise a cocci cluster (1-4 cells)."""
    shape = _shape(shape, 2)
    area = np.prod(shape) * pixel_size**2
    sites = _place(rng, shape, max(2, int(area / 7.0)), min_dist=3.6 / pixel_size)
    is_rod = rng.uniform(size=len(sites)) < mix
    a = ecoli(shape, rng, pixel_size=pixel_size, pattern="membrane", centres=sites[is_rod])
    b = saureus(shape, rng, pixel_size=pixel_size, centres=sites[~is_rod], cluster_size=(1, 4))
    return np.maximum(a, b)


# --------------------------------------------------------------------------------------------
# epithelium (projection)


def cell_junctions(
    shape: int | Sequence[int],
    rng: np.random.Generator,
    cell_size: float = 12.0,
    width: float = 0.8,
    texture: float = 0.3,
) -> np.ndarray:
    """Apical cell junctions of an epithelium (E-cadherin-like): the edges of a jittered Voronoi
    tessellation with cells ``cell_size`` pixels across, computed for all pixels at once from the
    two nearest seeds (``scipy.spatial.cKDTree``)."""
    from scipy.spatial import cKDTree

    shape = _shape(shape, 2)
    ny = int(math.ceil(shape[0] / cell_size)) + 2
    nx = int(math.ceil(shape[1] / cell_size)) + 2
    gy, gx = np.meshgrid(np.arange(-1, ny - 1), np.arange(-1, nx - 1), indexing="ij")
    seeds = np.stack([gy.ravel(), gx.ravel()], 1).astype(np.float64) * cell_size
    seeds[:, 1] += (gy.ravel() % 2) * cell_size / 2  # hexagonal-ish packing
    seeds += rng.uniform(-0.35, 0.35, seeds.shape) * cell_size
    tree = cKDTree(seeds)
    yy, xx = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    q = np.stack([yy.ravel(), xx.ravel()], 1).astype(np.float64)
    dist_k, idx_k = tree.query(q, k=2)  # (n, 2) arrays for k=2
    dist, idx = np.asarray(dist_k), np.asarray(idx_k)
    p1, p2 = seeds[idx[:, 0]], seeds[idx[:, 1]]
    # distance to the bisector between the two nearest seeds
    dd = (dist[:, 1] ** 2 - dist[:, 0] ** 2) / (2 * np.linalg.norm(p2 - p1, axis=1) + 1e-12)
    img = np.exp(-(dd**2) / (2 * width**2)).reshape(shape)
    if texture > 0:
        img *= 1 - texture + texture * smooth_noise(shape, rng, scale=cell_size)
    return img.astype(np.float32)


def height_map(
    shape: int | Sequence[int],
    rng: np.random.Generator,
    depth: int,
    margin: float = 8.0,
    smoothness: float | None = None,
) -> np.ndarray:
    """A smooth curved surface ``z = h(y, x)`` (in slices) within ``[margin, depth - 1 - margin]``:
    a tilted dome plus smooth random undulations (correlation length ``smoothness`` pixels)."""
    shape = _shape(shape, 2)
    if smoothness is None:
        smoothness = max(shape) / 2.0
    yy, xx = np.meshgrid(np.linspace(-1, 1, shape[0]), np.linspace(-1, 1, shape[1]), indexing="ij")
    cy, cx = rng.uniform(-0.5, 0.5, 2)
    dome = -((yy - cy) ** 2 + (xx - cx) ** 2) * rng.uniform(0.5, 1.5)
    tilt = rng.uniform(-0.5, 0.5) * yy + rng.uniform(-0.5, 0.5) * xx
    und = smooth_noise(shape, rng, scale=smoothness, octaves=1) * rng.uniform(0.3, 0.8)
    h = dome + tilt + und
    h = (h - h.min()) / (h.max() - h.min() + 1e-12)
    lo, hi = margin, depth - 1 - margin
    span = (hi - lo) * rng.uniform(0.4, 1.0)
    off = lo + rng.uniform(0, (hi - lo) - span)
    return (off + h * span).astype(np.float32)


STRUCTURE_GENERATORS_2D: dict[str, Callable[..., np.ndarray]] = {
    "ccp": ccps,
    "er": er_network,
    "microtubules": microtubules,
    "actin": actin,
}
