"""Domain randomisation: training pairs drawn over the range of acquisitions real microscopes make.

A fixed synthetic set (one structure, one PSF, one photon budget) teaches a network one
microscope; real images then defeat it. Each task here has a :class:`Domain`: the ranges of the
physics that real acquisitions vary (PSF width and shape, photon budget, read noise, background
and its gradients, hot pixels) and a mixture of structure families. :func:`draw_pair` draws one
acquisition from the domain and renders it with the task's forward model
(:mod:`unifmir.data.forward`), so the image formation is the one documented there.

The ranges are the bundle's **operating range**: :meth:`Domain.describe` writes them as the
Markdown that bundle READMEs and rdf descriptions state, and a user's acquisition inside them is
what the model was trained for.

Structure families (2D; 3D stacks extrude or grow them in z, see :func:`object_3d`):
``puncta`` (diffraction-limited spots of widely spread brightness: FISH/telomere-like),
``blobs`` (nuclei-like, 3-30 px), ``ccp``, ``er``, ``microtubules``, ``actin``, ``junctions``
(epithelial cell outlines), ``bacteria`` (rods and cocci), ``texture`` (dense multi-scale
cytoplasm-like texture), ``nuclei`` (sparse flat-topped nuclei with nucleoli; denoise only, see
:data:`GENERAL_FAMILIES`). An object is a weighted sum of one to three families on a dim diffuse
background, modulated by a smooth illumination field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from scipy import ndimage

from unifmir.data import forward as fwd
from unifmir.data import synthetic as syn
from unifmir.tasks import get_task

__all__ = [
    "Domain",
    "DOMAINS",
    "FAMILIES_2D",
    "GENERAL_FAMILIES",
    "add_nucleoli",
    "object_2d",
    "object_3d",
    "add_background_gradient",
    "add_hot_pixels",
    "draw_pair",
    "get_domain",
]


# ------------------------------------------------------------------------------------------
# structure families


def _puncta(shape: tuple[int, ...], rng: np.random.Generator, scale: float) -> np.ndarray:
    """Spots of sigma 0.6-2.5 px (times ``scale``), density 1 per 100-2000 px, brightness log-uniform
    over two decades (dim spots next to bright ones: the case percentile scaling and denoisers miss)."""
    area = float(np.prod(shape))
    n = max(1, int(area / rng.uniform(100.0, 2000.0)))
    pts = rng.uniform(0, 1, (n, len(shape))) * np.array(shape, dtype=np.float64)
    b = np.exp(rng.uniform(math.log(0.01), 0.0, n))
    img = syn.splat(shape, pts, b)
    return ndimage.gaussian_filter(img, rng.uniform(0.6, 2.5) * scale, truncate=3.0).astype(np.float32)


def _blobs(shape: tuple[int, ...], rng: np.random.Generator, scale: float) -> np.ndarray:
    r = rng.uniform(3.0, 12.0) * scale
    return syn.nuclei(shape, rng, radius=(r, r * rng.uniform(1.2, 2.5)), texture=rng.uniform(0.0, 0.8),
                      fill=rng.uniform(0.1, 0.4))


def add_nucleoli(obj: np.ndarray, rng: np.random.Generator, scale: float, depth: float) -> np.ndarray:
    """Darken nucleolus-like spots (sigma 1.5-3.5 px x ``scale``; one per 250-900 bright pixels, at
    least one) inside ``obj``'s bright parts by up to ``depth`` (real nuclei are not uniform discs)."""
    inside = np.flatnonzero(obj.reshape(-1) > 0.3 * float(obj.max()))
    if inside.size == 0 or depth <= 0:
        return obj
    n = max(1, int(inside.size / rng.uniform(250.0, 900.0) / scale ** obj.ndim))
    pts = np.stack(np.unravel_index(rng.choice(inside, size=n), obj.shape), 1).astype(np.float64)
    sigma = rng.uniform(1.5, 3.5) * scale
    holes = ndimage.gaussian_filter(syn.splat(obj.shape, pts, np.ones(n)), sigma, truncate=3.0)
    holes /= float(holes.max()) + 1e-12  # in [0, 1)
    return (obj * (1.0 - depth * holes)).astype(np.float32)


def _nuclei(shape: tuple[int, ...], rng: np.random.Generator, scale: float) -> np.ndarray:
    """Sparse flat-topped nuclei (widefield/confocal nuclear stains): near-uniform interiors with a
    little chromatin texture, 1-2 px borders, dark nucleoli, brightness varying 7x between nuclei,
    5-50 % of the field covered."""
    r = rng.uniform(5.0, 20.0) * scale
    obj = syn.nuclei(shape, rng, radius=(r, r * rng.uniform(1.1, 1.8)), texture=rng.uniform(0.0, 0.3),
                     edge=rng.uniform(0.5, 2.0), brightness=(rng.uniform(0.15, 0.6), 1.0),
                     fill=rng.uniform(0.05, 0.5))
    return add_nucleoli(obj, rng, scale, rng.uniform(0.0, 0.7)) if rng.uniform() < 0.7 else obj


def _texture(shape: tuple[int, ...], rng: np.random.Generator, scale: float) -> np.ndarray:
    t = syn.smooth_noise(shape, rng, scale=rng.uniform(2.0, 16.0) * scale, octaves=3)
    return (t ** rng.uniform(1.0, 4.0)).astype(np.float32)


def _bacteria(shape: tuple[int, ...], rng: np.random.Generator, scale: float) -> np.ndarray:
    return syn.bacteria(shape, rng, pixel_size=0.06 / scale, mix=rng.uniform(0.2, 0.8))


def _junctions(shape: tuple[int, ...], rng: np.random.Generator, scale: float) -> np.ndarray:
    return syn.cell_junctions(shape, rng, cell_size=rng.uniform(8.0, 30.0) * scale, width=0.8 * scale)


def _curves(name: str) -> Callable[[tuple[int, ...], np.random.Generator, float], np.ndarray]:
    def draw(shape: tuple[int, ...], rng: np.random.Generator, scale: float) -> np.ndarray:
        return syn.STRUCTURE_GENERATORS_2D[name](shape, rng)

    draw.__name__ = f"_{name}"
    return draw


FAMILIES_2D: dict[str, Callable[[tuple[int, ...], np.random.Generator, float], np.ndarray]] = {
    "puncta": _puncta,
    "blobs": _blobs,
    "ccp": _curves("ccp"),
    "er": _curves("er"),
    "microtubules": _curves("microtubules"),
    "actin": _curves("actin"),
    "junctions": _junctions,
    "bacteria": _bacteria,
    "texture": _texture,
    "nuclei": _nuclei,
}
"""2D structure families: ``draw(shape, rng, scale)``; ``scale`` stretches feature sizes (the
object grid's pixels per nominal pixel)."""

GENERAL_FAMILIES: tuple[str, ...] = ("puncta", "blobs", "ccp", "er", "microtubules", "actin", "junctions",
                                     "bacteria", "texture")
"""The families every domain draws by default. ``nuclei`` was added later for the denoiser (real
nuclear stains are flat-topped with nucleoli, which ``blobs`` never renders); the other domains keep
the set their committed bundles were trained on."""


def _unit(x: np.ndarray) -> np.ndarray:
    m = float(x.max())
    return (x / m if m > 0 else x).astype(np.float32)


def object_2d(shape: tuple[int, int], rng: np.random.Generator, families: tuple[str, ...],
              scale: float = 1.0) -> np.ndarray:
    """A 2D object: 1-3 families (weights 0.2-1) + diffuse background (0-15 %) x illumination."""
    k = int(rng.integers(1, 4))
    picks = rng.choice(len(families), size=min(k, len(families)), replace=False)
    img = np.zeros(shape, dtype=np.float32)
    for i in picks:
        img += rng.uniform(0.2, 1.0) * _unit(FAMILIES_2D[families[int(i)]](shape, rng, scale))
    img = _unit(img)
    img += rng.uniform(0.0, 0.15) * syn.smooth_noise(shape, rng, scale=rng.uniform(16, 64) * scale, octaves=1)
    illum = 1.0 - rng.uniform(0.0, 0.6) * syn.smooth_noise(shape, rng, scale=max(shape) / 2, octaves=1)
    return _unit(img * illum)


def object_3d(shape: tuple[int, int, int], rng: np.random.Generator, families: tuple[str, ...],
              anisotropy: float) -> np.ndarray:
    """A ``(Z, Y, X)`` object: half the time nuclei-like blobs / puncta / filaments grown in 3D, half
    the time a 2D object extruded in z with a drift and a fade (thin samples, time series used as z)."""
    Z = shape[0]
    kind = rng.uniform()
    if kind < 0.2:
        r = rng.uniform(4.0, 14.0)
        obj = syn.nuclei(shape, rng, radius=(r, 1.8 * r), anisotropy=anisotropy, texture=rng.uniform(0, 0.8))
        if "nuclei" in families and rng.uniform() < 0.5:
            obj = add_nucleoli(obj, rng, 1.0, rng.uniform(0.0, 0.7))
    elif kind < 0.35:
        obj = _puncta(shape, rng, 1.0)
    elif kind < 0.45:
        obj = syn.filaments3d(shape, rng, anisotropy=anisotropy)
    else:
        base = object_2d(shape[1:], rng, families)
        fade = rng.uniform(0.5, 20.0)
        z = np.arange(Z, dtype=np.float32) - rng.uniform(0, Z)
        prof = np.exp(-0.5 * (z / fade) ** 2)
        dy, dx = rng.uniform(-1.0, 1.0, 2)
        obj = np.stack([ndimage.shift(base, (dy * i, dx * i), order=1, mode="reflect") * prof[i]
                        for i in range(Z)])
    obj = _unit(obj)
    obj += rng.uniform(0.0, 0.1) * syn.smooth_noise(shape, rng, scale=32.0, octaves=1)
    return _unit(obj)


# ------------------------------------------------------------------------------------------
# camera effects beyond the forward models' uniform background


def add_background_gradient(img: np.ndarray, rng: np.random.Generator, level: float) -> np.ndarray:
    """Add a smooth background (linear ramp + low-frequency field, peak ``level`` photo-electrons)
    with its own shot noise (a sum of Poisson variables is Poisson)."""
    shape = img.shape[-2:]
    yy, xx = np.meshgrid(np.linspace(0, 1, shape[0]), np.linspace(0, 1, shape[1]), indexing="ij")
    a, b = rng.uniform(-1, 1, 2)
    ramp = a * yy + b * xx
    field = ramp - ramp.min() + syn.smooth_noise(shape, rng, scale=max(shape) / 2, octaves=1)
    field = level * field / (field.max() + 1e-12)
    return (img + rng.poisson(np.broadcast_to(field, img.shape)).astype(np.float32)).astype(np.float32)


def add_hot_pixels(img: np.ndarray, rng: np.random.Generator, photons: float, fraction: float) -> np.ndarray:
    """``fraction`` of the camera pixels read an extra ``U(5, 50) x photons`` photo-electrons
    (sCMOS/EMCCD hot pixels); a stack shares its hot pixels across z (one sensor)."""
    out = np.array(img, dtype=np.float32, copy=True)
    plane = out.shape[-2] * out.shape[-1]
    n = int(rng.binomial(plane, fraction)) if fraction > 0 else 0
    if n == 0:
        return out
    idx = rng.choice(plane, size=n, replace=False)
    extra = (rng.uniform(5.0, 50.0, n) * photons).astype(np.float32)
    flat = out.reshape(-1, plane)
    flat[:, idx] += extra
    return out


# ------------------------------------------------------------------------------------------
# domains


def _loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


@dataclass(frozen=True)
class Domain:
    """The acquisitions one task's training pairs are drawn from (all ranges inclusive)."""

    task: str
    render: Callable[[np.random.Generator, "Domain", int], tuple[np.ndarray, np.ndarray, dict[str, Any]]]
    """``render(rng, domain, size)``: one ``(input, target, physics)`` pair through the task's forward model."""
    sigma_px: tuple[float, float]
    """Lateral PSF Gaussian sigma, in pixels of the target grid (SR: the fine grid)."""
    photons: tuple[float, float]
    """Peak photo-electrons of the brightest object pixel (drawn log-uniformly)."""
    read_noise: tuple[float, float] = (0.5, 4.0)
    background: tuple[float, float] = (0.0, 20.0)
    """Uniform background, photo-electrons."""
    gradient: float = 0.5
    """Probability of a smooth background gradient (peak up to 2x the photon budget's 20 %)."""
    hot_pixels: tuple[float, float] = (0.0, 2e-3)
    """Hot-pixel fraction range, drawn for half the pairs (the other half: none)."""
    clutter: tuple[float, float] = (0.0, 0.0)
    """Out-of-surface clutter brightness relative to the sheet (projection)."""
    airy: float = 0.3
    """Probability of an Airy (instead of Gaussian) PSF where the forward model has one (SR)."""
    axial_sigma_px: tuple[float, float] | None = None
    """Axial PSF sigma in z-slices (denoise)."""
    families: tuple[str, ...] = GENERAL_FAMILIES
    reuse: int = 2
    """Training items cut from one rendered pair (different crops, z positions and flips): a
    rendering costs more than a training step's share when it is a whole stack (denoise: a
    16-slice stack gives 12 five-slice windows; rendering it took 0.25-0.4 s, as long as 3-4
    optimiser steps of the small denoiser)."""

    def describe(self) -> str:
        """The operating range as Markdown (bundle README / rdf description)."""
        s0, s1 = self.sigma_px
        fw = 2 * math.sqrt(2 * math.log(2))
        parts = [f"lateral PSF sigma {s0:g}-{s1:g} px (FWHM {s0 * fw:.1f}-{s1 * fw:.1f} px"
                 + (", Gaussian or Airy" if self.airy > 0 and get_task(self.task).scale > 1 else ", Gaussian")
                 + (" on the output grid)" if get_task(self.task).scale > 1 else ")")]
        if self.axial_sigma_px:
            what = "sheet thickness (axial sigma)" if self.clutter[1] > 0 else "axial PSF sigma"
            parts.append(f"{what} {self.axial_sigma_px[0]:g}-{self.axial_sigma_px[1]:g} slices")
        if self.clutter[1] > 0:
            parts.append(f"out-of-surface clutter 0-{self.clutter[1]:g} x the surface brightness")
        parts += [f"{self.photons[0]:g}-{self.photons[1]:g} photo-electrons at the brightest pixel",
                  f"read noise {self.read_noise[0]:g}-{self.read_noise[1]:g} e-",
                  f"background 0-{self.background[1]:g} e- (with smooth gradients)",
                  f"up to {self.hot_pixels[1] * 100:g} % hot pixels",
                  "structures: " + ", ".join(self.families)]
        return "; ".join(parts)


def get_domain(task: str) -> Domain:
    name = get_task(task).name
    if name not in DOMAINS:
        raise ValueError(f"no randomised training domain for task {name!r} yet; domains exist for "
                         f"{', '.join(DOMAINS)} (use a synthetic folder made by `unifmir synth` instead)")
    return DOMAINS[name]


def _camera(rng: np.random.Generator, d: Domain) -> dict[str, float]:
    return {"photons": _loguniform(rng, *d.photons), "read_noise": float(rng.uniform(*d.read_noise)),
            "background": float(rng.uniform(*d.background))}


def _defects(lq: np.ndarray, rng: np.random.Generator, d: Domain, photons: float) -> tuple[np.ndarray, dict[str, float]]:
    info = {"gradient": 0.0, "hot_pixels": 0.0}
    if rng.uniform() < d.gradient:
        info["gradient"] = float(rng.uniform(0.0, 0.4) * photons)
        lq = add_background_gradient(lq, rng, info["gradient"])
    if rng.uniform() < 0.5:
        info["hot_pixels"] = float(rng.uniform(*d.hot_pixels))
        lq = add_hot_pixels(lq, rng, photons, info["hot_pixels"])
    return lq, info


def _sr(rng: np.random.Generator, d: Domain, size: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    scale = get_task("sr").scale
    sigma = float(rng.uniform(*d.sigma_px))
    na, wl = 1.3, 0.525
    px = 0.21 * wl / (na * sigma)  # sr_forward's sigma = 0.21 lambda / NA / pixel
    psf = "airy" if rng.uniform() < d.airy else "gaussian"
    cam = _camera(rng, d)
    obj = object_2d((size * scale, size * scale), rng, d.families, scale=sigma / 2.7)
    lq, hq, _ = fwd.sr_forward(obj, rng, scale=scale, na=na, wavelength=wl, pixel_size=px, psf=psf,
                               photons=cam["photons"], background=cam["background"], read_noise=cam["read_noise"])
    lq, info = _defects(lq, rng, d, cam["photons"])
    return lq, hq, {"sigma_px": sigma, "psf": psf, **cam, **info}


def _denoise(rng: np.random.Generator, d: Domain, size: int, depth: int = 16) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    s_xy = float(rng.uniform(*d.sigma_px))
    assert d.axial_sigma_px is not None
    s_z = float(rng.uniform(*d.axial_sigma_px))
    cam = _camera(rng, d)
    obj = object_3d((depth, size, size), rng, d.families, anisotropy=max(s_z, 0.3) / max(s_xy, 0.3))
    lq, hq, _ = fwd.denoise_forward(obj, rng, sigma=(s_z, s_xy), photons=cam["photons"],
                                    background=cam["background"], read_noise=cam["read_noise"])
    lq, info = _defects(lq, rng, d, cam["photons"])
    return lq, hq, {"sigma_px": s_xy, "axial_sigma_px": s_z, **cam, **info}


def _projection(rng: np.random.Generator, d: Domain, size: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    spec = get_task("projection")
    depth = int(spec.in_depth or 50)
    assert d.axial_sigma_px is not None
    lateral, axial = float(rng.uniform(*d.sigma_px)), float(rng.uniform(*d.axial_sigma_px))
    clutter = float(rng.uniform(*d.clutter)) if rng.uniform() < 0.8 else 0.0
    cam = _camera(rng, d)
    surface = object_2d((size, size), rng, d.families)
    height = syn.height_map((size, size), rng, depth, margin=max(4.0, 2 * axial))
    lq, hq, _ = fwd.projection_forward(surface, height, rng, depth=depth, lateral_sigma=lateral, axial_sigma=axial,
                                       clutter=clutter, photons=cam["photons"], background=cam["background"],
                                       read_noise=cam["read_noise"])
    lq, info = _defects(lq, rng, d, cam["photons"])
    return lq, hq, {"sigma_px": lateral, "axial_sigma_px": axial, "clutter": clutter, **cam, **info}


def _volume(shape: tuple[int, int, int], rng: np.random.Generator, families: tuple[str, ...]) -> np.ndarray:
    """A light-field sample volume: 60 % one to four thin layers (2D objects of the families at
    random depths, each with its own axial extent), 25 % neuron-like somata and neurites grown in
    3D, 15 % sub-resolution beads; unit peak."""
    Z = shape[0]
    kind = rng.uniform()
    if kind < 0.6:
        vol = np.zeros(shape, dtype=np.float32)
        z = np.arange(Z, dtype=np.float32)
        for _ in range(int(rng.integers(1, 5))):
            layer = object_2d(shape[1:], rng, families)
            zc, sz = rng.uniform(2.0, Z - 3.0), rng.uniform(0.5, 3.0)
            vol += rng.uniform(0.3, 1.0) * np.exp(-0.5 * ((z - zc) / sz) ** 2)[:, None, None] * layer[None]
    elif kind < 0.85:
        somata = syn.nuclei(shape, rng, n=max(2, shape[1] * shape[2] // int(rng.uniform(600, 3000))),
                            radius=(3.0, rng.uniform(4.0, 8.0)), anisotropy=1.5, texture=0.2)
        neurites = syn.filaments3d(shape, rng, n=max(2, shape[1] // int(rng.uniform(10, 40))), width=0.8,
                                   anisotropy=1.5, persistence=(50.0, 300.0))
        vol = np.maximum(somata, rng.uniform(0.3, 1.0) * neurites)
    else:
        n = max(3, int(shape[1] * shape[2] / rng.uniform(200.0, 1500.0)))
        pts = rng.uniform(0, 1, (n, 3)) * np.array(shape, dtype=np.float64)
        vol = ndimage.gaussian_filter(syn.splat(shape, pts, rng.uniform(0.3, 1.0, n)), (0.5, 1.0, 1.0))
    return _unit(vol)


def _volumetric(rng: np.random.Generator, d: Domain, size: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    spec = get_task("volumetric")
    n = int(spec.lenslets or 11)
    side = max(n, size // n * n)  # light-field sides are whole lenslets
    lateral = float(rng.uniform(*d.sigma_px))
    cam = _camera(rng, d)
    vol = _volume((int(spec.out_depth or 61), side, side), rng, d.families)
    lq, hq, _ = fwd.lightfield_forward(vol, rng, lenslets=n, lateral_sigma=lateral, photons=cam["photons"],
                                       background=cam["background"], read_noise=cam["read_noise"])
    lq, info = _defects(lq, rng, d, cam["photons"])
    return lq, hq, {"sigma_px": lateral, **cam, **info}


DOMAINS: dict[str, Domain] = {
    "sr": Domain("sr", _sr, sigma_px=(1.6, 3.4), photons=(5.0, 500.0)),
    "denoise": Domain("denoise", _denoise, sigma_px=(0.3, 1.8), axial_sigma_px=(0.2, 2.0), photons=(2.0, 200.0),
                      background=(0.0, 10.0), read_noise=(0.5, 3.0), reuse=8,
                      families=GENERAL_FAMILIES + ("nuclei",)),
    "projection": Domain("projection", _projection, sigma_px=(0.5, 2.0), axial_sigma_px=(1.0, 3.5), photons=(3.0, 200.0),
                         background=(0.0, 10.0), read_noise=(0.5, 3.0), clutter=(0.0, 1.0), hot_pixels=(0.0, 1e-3)),
    # light field (VCD-Net-like optics: fixed disparity 0.2 px per slice and view, 11x11 lenslets);
    # the camera blur is lateral only (the views are sheared projections, lightfield_forward)
    "volumetric": Domain("volumetric", _volumetric, sigma_px=(0.5, 2.0), photons=(20.0, 500.0),
                         background=(0.0, 10.0), read_noise=(0.5, 3.0), hot_pixels=(0.0, 5e-4), reuse=4),
}
"""Task name -> its training domain (tasks without one train on fixed synthetic sets)."""


def draw_pair(task: str, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """One pair ``(input, target, physics)`` of ``task`` drawn from its domain; ``size`` = input Y/X."""
    d = get_domain(task)
    return d.render(rng, d, int(size))
