"""Per-task image-formation (forward) models producing synthetic training pairs.

Each task registers one :class:`Generator` in :data:`GENERATORS` (:func:`register_generator`):
a forward model ``forward(object, rng, **physics)`` applying the physics to a given ground-truth
object (so that tests can feed a point source; ``sr_forward`` ... ``projection_forward``, and
``lightfield_forward`` for the volumetric task), a pair function ``<task>_pair(rng, size=..,
structure=.., **physics)`` drawing the object from :mod:`unifmir.data.synthetic` first, the
structures it can draw and its default size. :func:`make_pair` dispatches on the task name and
returns ``(input, target)`` in the task's user-facing axes (``TaskSpec.input_axes`` /
``output_axes``); :func:`synthesize` returns the full :class:`SynthPair` (pixel sizes,
parameters, expected photon counts).

Physics shared by all tasks
---------------------------
* **PSF**: a Gaussian approximation of the widefield/confocal PSF. Lateral
  ``sigma_xy = 0.21 * wavelength / NA`` (Zhang, Zerubia & Olivo-Marin, Appl. Opt. 2007);
  axial ``sigma_z = FWHM_z / 2.355`` with ``FWHM_z = 0.88 * wavelength / (n - sqrt(n^2 - NA^2))``.
  ``psf="airy"`` (SR) uses the exact 2D Airy pattern ``(2 J1(v)/v)^2``, ``v = 2 pi NA r / wavelength``.
* **Camera**: the blurred object is scaled so that its brightest pixel receives ``photons``
  photo-electrons on top of a uniform ``background``; the recorded value is
  ``Poisson(photons * s + background) + Normal(0, read_noise)`` (Poisson-Gaussian model of an
  sCMOS/EMCCD in photo-electron units, gain 1, offset removed). ``noise=False`` returns the
  expectation. Inputs are therefore in photo-electrons; targets are high-SNR (noise-free) images
  scaled to a peak of 1. Percentile normalisation makes the units irrelevant to the network.

Tasks
-----
* ``sr`` -- object on the fine (target) grid; input = widefield PSF blur, camera-pixel
  integration over ``scale x scale`` fine pixels, camera noise; target = the object seen with a
  PSF ``resolution_gain`` (2) times narrower (SIM-like), on the fine grid.
* ``denoise`` -- 3D stack seen through a 3D PSF; input = low-photon camera noise; target = the
  same stack noise-free (or at ``target_photons``).
* ``isotropic`` -- isotropic ground-truth volume; input = anisotropic PSF (axial sigma several
  times the lateral one) then z-subsampling by ``z_factor`` (``Z_in = ceil(Z / z_factor)``, slice
  ``k`` of the input is slice ``k * z_factor`` of the target) plus noise; target = the volume seen
  with an isotropic PSF (lateral sigma on all axes) at full z sampling.
* ``projection`` -- a curved epithelial sheet ``z = h(y, x)`` carrying a junction pattern, inside
  ``in_depth`` (50) slices: ``V(z, y, x) = S(y, x) * exp(-(z - h)^2 / (2 sigma_z^2))`` plus
  out-of-surface clutter (dim blobs more than ``clutter_gap`` slices away from the sheet, which
  defeat a maximum projection), blur and noise; target = the clean 2D surface image ``S``.
* ``volumetric`` -- a 61-slice volume to an 11 x 11-lenslet light-field image, modelled as
  **views = sheared projections**: view ``(u, v)`` (offsets ``du, dv`` from the lenslet centre)
  sums, over slices ``z``, plane ``z`` laterally shifted by ``disparity * (z - z0) * (du, dv)``
  pixels and integrated over each lenslet's ``11 x 11`` footprint (in-focus plane ``z0``: no
  parallax). Views outside the circular lenslet pupil are dark. The raw image interleaves the
  views: pixel ``(11 i + u, 11 j + v)`` is view ``(u, v)`` at lenslet ``(i, j)`` (see
  :func:`unifmir.data.datasets.lightfield_to_views`). Diffraction is ignored beyond a lateral
  Gaussian blur: a documented approximation of wave-optics light-field PSFs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from scipy import ndimage

from unifmir.data import synthetic as syn
from unifmir.tasks import get_task


def _fact(value: int | None, task: str, name: str) -> int:
    """A task fact (``TaskSpec`` field) that this task's generator needs; the registry sets it."""
    if value is None:
        raise ValueError(f"task {task!r} has no {name} in the task registry (unifmir.tasks.TASKS)")
    return int(value)

__all__ = [
    "SynthPair",
    "Generator",
    "GENERATORS",
    "register_generator",
    "make_pair",
    "synthesize",
    "STRUCTURES",
    "DEFAULT_STRUCTURE",
    "DEFAULT_SIZE",
    "psf_sigma_lateral",
    "psf_sigma_axial",
    "airy_kernel",
    "camera_noise",
    "bin_pixels",
    "upsample_z",
    "sr_forward",
    "sr_pair",
    "denoise_forward",
    "denoise_pair",
    "isotropic_forward",
    "isotropic_pair",
    "projection_forward",
    "projection_pair",
    "lightfield_forward",
    "volumetric_pair",
]

BACTERIA = ("ecoli", "saureus", "bacteria")


@dataclass
class SynthPair:
    """One synthetic pair with its metadata (pixel sizes in micrometres)."""

    input: np.ndarray
    target: np.ndarray
    input_axes: str
    target_axes: str
    input_pixel_size: dict[str, float]
    target_pixel_size: dict[str, float]
    params: dict[str, Any] = field(default_factory=dict)
    expected: np.ndarray | None = None
    """Noise-free expectation of the input (photo-electrons), for statistics checks."""


@dataclass(frozen=True)
class Generator:
    """The synthetic-data generator of one task."""

    pair: Callable[..., SynthPair]
    """``pair(rng, size=.., structure=.., **physics)``: draw an object and apply ``forward``."""
    forward: Callable[..., Any]
    """The image-formation model applied to a given ground-truth object."""
    structures: tuple[str, ...]
    """Structures the generator can draw (``None`` = the first one)."""
    size: int
    """Default Y/X size of the generated *input* (volumetric: light-field side, a multiple of 11).
    A generator default only (not a task fact); >= the registry's training patch size."""


GENERATORS: dict[str, Generator] = {}
"""Task name -> its generator, filled by :func:`register_generator` (one entry per ``TASKS`` key)."""

_PairFn = Callable[..., SynthPair]


def register_generator(
    task: str, *, forward: Callable[..., Any], structures: tuple[str, ...], size: int
) -> Callable[[_PairFn], _PairFn]:
    """Decorator registering a pair function as the generator of ``task`` (a ``TASKS`` name)."""

    def register(pair: _PairFn) -> _PairFn:
        name = get_task(task).name
        if name in GENERATORS:
            raise ValueError(f"task {name!r} already has a generator ({GENERATORS[name].pair.__name__})")
        GENERATORS[name] = Generator(pair, forward, tuple(structures), int(size))
        return pair

    return register


# ------------------------------------------------------------------------------------------
# physics helpers


def psf_sigma_lateral(na: float, wavelength: float, pixel_size: float) -> float:
    """Gaussian sigma (pixels) approximating the lateral widefield PSF: ``0.21 lambda / NA``."""
    if na <= 0 or wavelength <= 0 or pixel_size <= 0:
        raise ValueError("NA, wavelength and pixel size must be positive")
    return 0.21 * wavelength / na / pixel_size


def psf_sigma_axial(na: float, wavelength: float, pixel_size: float, n: float = 1.33) -> float:
    """Gaussian sigma (pixels of ``pixel_size``) of the axial PSF:
    ``FWHM = 0.88 lambda / (n - sqrt(n^2 - NA^2))``, ``sigma = FWHM / 2.355``."""
    if not 0 < na < n:
        raise ValueError(f"NA must lie in (0, n={n}), got {na}")
    fwhm = 0.88 * wavelength / (n - math.sqrt(n * n - na * na))
    return fwhm / (2.0 * math.sqrt(2.0 * math.log(2.0))) / pixel_size


def airy_kernel(na: float, wavelength: float, pixel_size: float, radius: int | None = None) -> np.ndarray:
    """Normalised 2D Airy intensity pattern ``(2 J1(v) / v)^2`` sampled on ``pixel_size`` pixels
    (supersampled 5x per pixel), out to 3 Airy radii unless ``radius`` (pixels) is given."""
    from scipy.special import j1

    r_airy = 0.61 * wavelength / na / pixel_size
    if radius is None:
        radius = int(math.ceil(3 * r_airy)) + 1
    ss = 5
    c = (np.arange((2 * radius + 1) * ss) - ((2 * radius + 1) * ss - 1) / 2) / ss
    yy, xx = np.meshgrid(c, c, indexing="ij")
    v = 2 * np.pi * na * np.hypot(yy, xx) * pixel_size / wavelength
    with np.errstate(invalid="ignore", divide="ignore"):
        k = np.where(v > 1e-8, (2 * j1(v) / np.where(v > 1e-8, v, 1.0)) ** 2, 1.0)
    k = k.reshape(2 * radius + 1, ss, 2 * radius + 1, ss).mean(axis=(1, 3))
    return (k / k.sum()).astype(np.float32)


def _blur(x: np.ndarray, sigma) -> np.ndarray:
    sig = np.broadcast_to(np.asarray(sigma, dtype=np.float64), (x.ndim,))
    if not np.any(sig > 0):
        return x.astype(np.float32, copy=False)
    return ndimage.gaussian_filter(x.astype(np.float32, copy=False), sig, mode="reflect", truncate=3.5)


def _blur_subsample_z(x: np.ndarray, sigma: float, factor: int) -> np.ndarray:
    """Gaussian blur along axis 0 (``reflect`` borders, as ``scipy.ndimage``) evaluated only at
    slices ``0, factor, 2 factor, ...``: one small matrix product instead of a full filter."""
    Z = x.shape[0]
    rows = np.arange(0, Z, factor)
    if sigma <= 0:
        return np.asarray(x[rows], dtype=np.float32)
    R = int(3.5 * sigma + 0.5)
    offs = np.arange(-R, R + 1)
    w = np.exp(-0.5 * (offs / sigma) ** 2)
    w /= w.sum()
    src = rows[:, None] + offs[None, :]
    period = 2 * Z
    src = np.mod(src, period)
    src = np.where(src >= Z, period - 1 - src, src)  # 'reflect': d c b a | a b c d | d c b a
    K = np.zeros((len(rows), Z), dtype=np.float32)
    np.add.at(K, (np.repeat(np.arange(len(rows)), len(offs)), src.ravel()), np.tile(w, len(rows)))
    flat = np.asarray(x, dtype=np.float32).reshape(Z, -1)
    return (K @ flat).reshape((len(rows),) + x.shape[1:])


def camera_noise(
    expected: np.ndarray, rng: np.random.Generator, read_noise: float = 0.0, noise: bool = True
) -> np.ndarray:
    """Poisson-Gaussian camera: ``Poisson(expected) + Normal(0, read_noise)`` (photo-electrons)."""
    if np.any(expected < 0):
        raise ValueError("expected photon counts must be non-negative")
    if not noise:
        return expected.astype(np.float32)
    out = rng.poisson(expected).astype(np.float32)
    if read_noise > 0:
        out += np.float32(read_noise) * rng.standard_normal(expected.shape, dtype=np.float32)
    return out


def _to_photons(clean: np.ndarray, photons: float, background: float) -> np.ndarray:
    if photons <= 0 or background < 0:
        raise ValueError(f"photons must be > 0 and background >= 0, got {photons}, {background}")
    peak = float(clean.max())
    s = clean / peak if peak > 0 else clean
    return (photons * np.clip(s, 0, None) + background).astype(np.float32)


def _unit_peak(x: np.ndarray) -> np.ndarray:
    m = float(x.max())
    return (x / m if m > 0 else x).astype(np.float32)


def bin_pixels(x: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor x factor`` blocks of the last two axes (camera pixel integration)."""
    h, w = x.shape[-2] // factor * factor, x.shape[-1] // factor * factor
    x = x[..., :h, :w]
    return x.reshape(*x.shape[:-2], h // factor, factor, w // factor, factor).mean(axis=(-3, -1))


def upsample_z(x: np.ndarray, factor: int, depth: int | None = None) -> np.ndarray:
    """Linear interpolation along axis 0 of a z-subsampled stack back to the fine grid.

    Input slice ``k`` sits at fine slice ``k * factor``; ``depth`` (default
    ``(Z - 1) * factor + 1``) fine slices are returned, clamped beyond the last input slice. This is
    also the classical baseline of the isotropic task. Works on numpy arrays of any trailing shape.
    """
    x = np.asarray(x)
    zin = x.shape[0]
    if depth is None:
        depth = (zin - 1) * factor + 1
    if factor == 1 and depth == zin:
        return x.astype(np.float32, copy=False)
    pos = np.clip(np.arange(depth) / factor, 0, zin - 1)
    i0 = np.minimum(np.floor(pos).astype(int), max(zin - 2, 0))
    fr = (pos - i0).astype(np.float32).reshape((-1,) + (1,) * (x.ndim - 1))
    i1 = np.minimum(i0 + 1, zin - 1)
    a = x[i0].astype(np.float32)
    b = x[i1].astype(np.float32)
    return a * (1 - fr) + b * fr


def _check_structure(task: str, structure: str | None) -> str:
    structure = structure or DEFAULT_STRUCTURE[task]
    if structure not in STRUCTURES[task]:
        raise ValueError(
            f"unknown structure {structure!r} for task {task!r}; choose one of "
            f"{', '.join(STRUCTURES[task])}"
        )
    return structure


def _check_size(size: int, minimum: int = 8) -> int:
    if int(size) != size or size < minimum:
        raise ValueError(f"size must be an integer >= {minimum}, got {size!r}")
    return int(size)


# ------------------------------------------------------------------------------------------
# SR


def _object_2d(structure: str, shape, rng, pixel_size: float) -> np.ndarray:
    if structure == "biosr":
        structure = ("ccp", "er", "microtubules", "actin")[int(rng.integers(4))]
    if structure in syn.STRUCTURE_GENERATORS_2D:
        return syn.STRUCTURE_GENERATORS_2D[structure](shape, rng)
    if structure == "ecoli":
        return syn.ecoli(shape, rng, pixel_size=pixel_size)
    if structure == "saureus":
        return syn.saureus(shape, rng, pixel_size=pixel_size)
    if structure == "bacteria":
        return syn.bacteria(shape, rng, pixel_size=pixel_size)
    raise ValueError(f"no 2D generator for structure {structure!r}")


def sr_forward(
    obj: np.ndarray,
    rng: np.random.Generator,
    *,
    scale: int | None = None,
    na: float = 1.3,
    wavelength: float = 0.525,
    pixel_size: float = 0.0313,
    psf: str = "gaussian",
    resolution_gain: float = 2.0,
    photons: float = 100.0,
    background: float = 10.0,
    read_noise: float = 2.0,
    noise: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Widefield acquisition of a 2D object given on the fine (target) grid.

    ``pixel_size``: fine-grid pixel (micrometres; the camera pixel is ``scale`` times larger).
    Returns ``(input, target, expected)``: input ``(H/scale, W/scale)`` photo-electrons, target
    ``(H, W)`` at unit peak (object blurred by the PSF narrowed by ``resolution_gain``),
    expected = noise-free input.
    """
    scale = scale or get_task("sr").scale
    obj = np.asarray(obj, dtype=np.float32)
    if obj.ndim != 2 or obj.shape[0] % scale or obj.shape[1] % scale:
        raise ValueError(f"sr object must be 2D with sides divisible by {scale}, got {obj.shape}")
    sigma = psf_sigma_lateral(na, wavelength, pixel_size)
    if psf == "gaussian":
        wf = _blur(obj, sigma)
    elif psf == "airy":
        from scipy.signal import fftconvolve

        wf = fftconvolve(np.pad(obj, 3 * int(sigma) + 8, mode="reflect"), airy_kernel(na, wavelength, pixel_size), mode="same")
        p = 3 * int(sigma) + 8
        wf = wf[p:-p, p:-p].astype(np.float32)
    else:
        raise ValueError(f"psf must be 'gaussian' or 'airy', got {psf!r}")
    expected = _to_photons(bin_pixels(wf, scale), photons, background)
    lq = camera_noise(expected, rng, read_noise, noise)
    target = _unit_peak(_blur(obj, sigma / resolution_gain))
    return lq, target, expected


@register_generator(
    "sr", forward=sr_forward, size=256,
    structures=("biosr", "ccp", "er", "microtubules", "actin", "ecoli", "saureus", "bacteria"),
)
def sr_pair(rng: np.random.Generator, *, size: int | None = None, structure: str | None = None, **physics) -> SynthPair:
    """SR pair: input ``(size, size)``, target ``(scale*size, scale*size)`` (see :func:`sr_forward`)."""
    spec = get_task("sr")
    size = _check_size(size or DEFAULT_SIZE["sr"])
    structure = _check_structure("sr", structure)
    px = float(physics.get("pixel_size", 0.0313))
    obj = _object_2d(structure, (size * spec.scale,) * 2, rng, px)
    lq, hq, ex = sr_forward(obj, rng, scale=spec.scale, **physics)
    return SynthPair(
        lq, hq, spec.input_axes, spec.output_axes,
        {"Y": px * spec.scale, "X": px * spec.scale}, {"Y": px, "X": px},
        {"structure": structure, "size": size, **_defaults(sr_forward, physics, skip=("scale",))},
        ex,
    )


# ------------------------------------------------------------------------------------------
# denoise


def denoise_forward(
    obj: np.ndarray,
    rng: np.random.Generator,
    *,
    na: float = 1.1,
    wavelength: float = 0.52,
    refractive_index: float = 1.33,
    pixel_size: tuple[float, float] = (1.0, 0.2),
    photons: float = 5.0,
    background: float = 1.0,
    read_noise: float = 1.5,
    target_photons: float | None = None,
    noise: bool = True,
    sigma: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Low-photon 3D acquisition of a ``(Z, Y, X)`` object. ``pixel_size = (z, xy)`` micrometres.

    Input: 3D Gaussian PSF, ``photons`` peak photo-electrons + ``background``, Poisson-Gaussian
    noise. Target: the blurred stack at unit peak, noise-free unless ``target_photons`` is given
    (then a high-SNR acquisition rescaled to unit peak). Returns ``(input, target, expected)``.
    ``sigma = (z, xy)`` gives the PSF's Gaussian sigmas in voxels directly (the randomised domain
    draws them) instead of deriving them from ``na``, ``wavelength`` and ``pixel_size``.
    """
    obj = np.asarray(obj, dtype=np.float32)
    if obj.ndim != 3:
        raise ValueError(f"denoise object must be (Z, Y, X), got shape {obj.shape}")
    if sigma is None:
        pz, pxy = pixel_size
        sigma = (psf_sigma_axial(na, wavelength, pz, refractive_index), psf_sigma_lateral(na, wavelength, pxy))
    clean = _blur(obj, (sigma[0], sigma[1], sigma[1]))
    expected = _to_photons(clean, photons, background)
    lq = camera_noise(expected, rng, read_noise, noise)
    if target_photons is None:
        hq = _unit_peak(clean)
    else:
        t = camera_noise(_to_photons(clean, target_photons, 0.0), rng, 0.0, noise)
        hq = (t / float(target_photons)).astype(np.float32)
    return lq, hq, expected


@register_generator("denoise", forward=denoise_forward, size=128, structures=("nuclei", "ecoli", "saureus", "bacteria"))
def denoise_pair(
    rng: np.random.Generator,
    *,
    size: int | None = None,
    structure: str | None = None,
    depth: int | None = None,
    **physics,
) -> SynthPair:
    """Denoising pair: noisy ``(depth, size, size)`` stack -> clean stack.

    ``nuclei`` (Planaria/Tribolium-like, 16 slices of 1 um, 0.2 um pixels, 5 photons) or bacteria
    (``ecoli``/``saureus``/``bacteria``: cells lying flat, 8 slices of 0.25 um, 0.08 um pixels,
    12 photons at the brightest spot (membrane/nucleoid ~2-10) and 1 e- read noise by default --
    a DeepBacs-like low-light E. coli setting).
    """
    spec = get_task("denoise")
    size = _check_size(size or DEFAULT_SIZE["denoise"])
    structure = _check_structure("denoise", structure)
    if structure in BACTERIA:
        physics.setdefault("pixel_size", (0.25, 0.08))
        physics.setdefault("photons", 12.0)
        physics.setdefault("read_noise", 1.0)
        physics.setdefault("na", 1.4)
        physics.setdefault("refractive_index", 1.518)
        depth = depth or 8
        pz, pxy = physics["pixel_size"]
        img = _object_2d(structure, (size, size), rng, pxy)
        z = np.arange(depth, dtype=np.float32)[:, None, None]
        zc = (depth - 1) / 2 + rng.uniform(-0.5, 0.5)
        obj = img[None] * np.exp(-((z - zc) ** 2) / (2 * (0.3 / pz) ** 2))
    else:
        depth = depth or 16
        pz, pxy = physics.get("pixel_size", (1.0, 0.2))
        obj = syn.nuclei((depth, size, size), rng, radius=(5.0, 12.0), anisotropy=pz / pxy)
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    lq, hq, ex = denoise_forward(obj, rng, **physics)
    pz, pxy = physics.get("pixel_size", (1.0, 0.2))
    ps = {"Z": float(pz), "Y": float(pxy), "X": float(pxy)}
    return SynthPair(
        lq, hq, spec.input_axes, spec.output_axes, ps, dict(ps),
        {"structure": structure, "size": size, "depth": depth, **_defaults(denoise_forward, physics)},
        ex,
    )


# ------------------------------------------------------------------------------------------
# isotropic


def isotropic_forward(
    obj: np.ndarray,
    rng: np.random.Generator,
    *,
    z_factor: int | None = None,
    na: float = 0.8,
    wavelength: float = 0.52,
    refractive_index: float = 1.33,
    pixel_size: float = 0.15,
    lateral_sigma: float | None = None,
    axial_sigma: float | None = None,
    photons: float = 50.0,
    background: float = 5.0,
    read_noise: float = 2.0,
    noise: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Anisotropic acquisition of an isotropically sampled ``(Z, Y, X)`` object (voxel
    ``pixel_size`` micrometres on every axis).

    PSF sigmas (voxels) default to the NA/wavelength formulas (axial/lateral ~ 5 at NA 0.8); pass
    ``lateral_sigma``/``axial_sigma`` to override. Input = anisotropic blur, slices ``0, f, 2f..``
    (``f = z_factor``, default from the task registry), camera noise -> ``ceil(Z/f)`` slices.
    Target = the object blurred by ``lateral_sigma`` on all three axes, all ``Z`` slices, unit peak.
    """
    f = int(z_factor or _fact(get_task("isotropic").z_factor, "isotropic", "z_factor"))
    if f < 1:
        raise ValueError(f"z_factor must be >= 1, got {f}")
    obj = np.asarray(obj, dtype=np.float32)
    if obj.ndim != 3:
        raise ValueError(f"isotropic object must be (Z, Y, X), got shape {obj.shape}")
    sl = lateral_sigma if lateral_sigma is not None else psf_sigma_lateral(na, wavelength, pixel_size)
    sa = axial_sigma if axial_sigma is not None else psf_sigma_axial(na, wavelength, pixel_size, refractive_index)
    aniso = _blur(_blur_subsample_z(obj, sa, f), (0.0, sl, sl))  # lateral blur commutes
    expected = _to_photons(aniso, photons, background)
    lq = camera_noise(expected, rng, read_noise, noise)
    hq = _unit_peak(_blur(obj, (sl, sl, sl)))
    return lq, hq, expected


@register_generator("isotropic", forward=isotropic_forward, size=128, structures=("tissue", "nuclei", "filaments"))
def isotropic_pair(
    rng: np.random.Generator,
    *,
    size: int | None = None,
    structure: str | None = None,
    depth: int | None = None,
    **physics,
) -> SynthPair:
    """Isotropic-reconstruction pair: ``(ceil(depth/f), size, size)`` -> ``(depth, size, size)``
    (``depth`` defaults to ``size``). Structures: ``tissue`` (liver-like nuclei + sinusoid-like
    tubes), ``nuclei``, ``filaments``."""
    spec = get_task("isotropic")
    size = _check_size(size or DEFAULT_SIZE["isotropic"])
    depth = int(depth or size)
    structure = _check_structure("isotropic", structure)
    shape = (depth, size, size)
    if structure == "nuclei":
        obj = syn.nuclei(shape, rng)
    elif structure == "filaments":
        obj = syn.filaments3d(shape, rng, n=max(4, size // 6), width=1.2)
    else:
        obj = np.maximum(
            syn.nuclei(shape, rng, n=max(1, int(depth * size * size / 40000)), radius=(6.0, 10.0)),
            0.7 * syn.filaments3d(shape, rng, n=max(4, size // 8), width=1.5, persistence=(20.0, 100.0)),
        )
    physics.setdefault("z_factor", spec.z_factor)
    lq, hq, ex = isotropic_forward(obj, rng, **physics)
    px = float(physics.get("pixel_size", 0.15))
    f = int(physics["z_factor"])
    return SynthPair(
        lq, hq, spec.input_axes, spec.output_axes,
        {"Z": px * f, "Y": px, "X": px}, {"Z": px, "Y": px, "X": px},
        {"structure": structure, "size": size, "depth": depth, **_defaults(isotropic_forward, physics)},
        ex,
    )


# ------------------------------------------------------------------------------------------
# projection


def projection_forward(
    surface: np.ndarray,
    height: np.ndarray,
    rng: np.random.Generator,
    *,
    depth: int | None = None,
    lateral_sigma: float = 1.0,
    axial_sigma: float = 1.5,
    clutter: float = 0.7,
    clutter_gap: float = 4.0,
    photons: float = 20.0,
    background: float = 3.0,
    read_noise: float = 2.0,
    noise: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stack of a curved sheet: ``surface`` ``(Y, X)`` image lying at ``z = height(y, x)``.

    Returns ``(input (depth, Y, X), target (Y, X), expected)``; ``depth`` = registry ``in_depth``.
    ``clutter`` is the peak brightness of out-of-surface blobs (relative to the sheet), placed only
    where ``|z - h| > clutter_gap`` slices.
    """
    depth = int(depth or _fact(get_task("projection").in_depth, "projection", "in_depth"))
    surface = np.asarray(surface, dtype=np.float32)
    height = np.asarray(height, dtype=np.float32)
    if surface.ndim != 2 or surface.shape != height.shape:
        raise ValueError("surface and height must be 2D arrays of the same shape")
    z = np.arange(depth, dtype=np.float32)[:, None, None]
    dz = z - height[None]
    sheet = _blur(surface, lateral_sigma)[None] * np.exp(-(dz**2) / (2 * axial_sigma**2))
    vol = sheet
    if clutter > 0:
        shape = (depth,) + surface.shape
        blobs = syn.nuclei(
            shape, rng, n=max(1, int(np.prod(shape) / 6000)), radius=(2.0, 5.0), texture=0.3,
            brightness=(0.3, 1.0),
        )
        blobs *= np.abs(dz) > clutter_gap
        vol = vol + clutter * _blur(blobs, (axial_sigma, lateral_sigma, lateral_sigma))
    expected = _to_photons(vol, photons, background)
    lq = camera_noise(expected, rng, read_noise, noise)
    hq = _unit_peak(_blur(surface, lateral_sigma))
    return lq, hq, expected


@register_generator("projection", forward=projection_forward, size=128, structures=("epithelium",))
def projection_pair(
    rng: np.random.Generator,
    *,
    size: int | None = None,
    structure: str | None = None,
    cell_size: float = 10.0,
    pixel_size: tuple[float, float] = (1.0, 0.2),
    **physics,
) -> SynthPair:
    """Projection pair: ``(in_depth, size, size)`` stack -> ``(size, size)`` surface image
    (fly-wing-like epithelium: junction network of ``cell_size``-pixel cells on a curved sheet)."""
    spec = get_task("projection")
    size = _check_size(size or DEFAULT_SIZE["projection"])
    structure = _check_structure("projection", structure)
    surface = syn.cell_junctions((size, size), rng, cell_size=cell_size)
    h = syn.height_map((size, size), rng, _fact(spec.in_depth, spec.name, "in_depth"), margin=6.0)
    lq, hq, ex = projection_forward(surface, h, rng, depth=spec.in_depth, **physics)
    pz, pxy = pixel_size
    return SynthPair(
        lq, hq, spec.input_axes, spec.output_axes,
        {"Z": float(pz), "Y": float(pxy), "X": float(pxy)}, {"Y": float(pxy), "X": float(pxy)},
        {"structure": structure, "size": size, "cell_size": cell_size, "pixel_size": list(pixel_size),
         **_defaults(projection_forward, physics, skip=("depth",))},
        ex,
    )


# ------------------------------------------------------------------------------------------
# volumetric (light field)


def lightfield_forward(
    volume: np.ndarray,
    rng: np.random.Generator,
    *,
    lenslets: int | None = None,
    disparity: float = 0.2,
    focal_slice: float | None = None,
    lateral_sigma: float = 1.0,
    aperture: str = "circular",
    photons: float = 200.0,
    background: float = 2.0,
    read_noise: float = 1.0,
    noise: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Light-field image of a ``(Z, H, W)`` volume (``H, W`` multiples of ``lenslets``).

    View ``(u, v)`` = sum over ``z`` of plane ``z`` shifted by ``disparity * (z - focal_slice) *
    (u - c, v - c)`` pixels (``c`` = centre view; shifts rounded to whole pixels) and box-integrated
    over each lenslet footprint (integral images, one gather per slice). ``aperture="circular"``
    darkens views outside the inscribed circle of the lenslet. Returns ``(lf (H, W), target
    (Z, H, W) unit peak, expected)``.
    """
    n = int(lenslets or _fact(get_task("volumetric").lenslets, "volumetric", "lenslets"))
    vol = np.asarray(volume, dtype=np.float32)
    if vol.ndim != 3 or vol.shape[1] % n or vol.shape[2] % n:
        raise ValueError(f"volume must be (Z, H, W) with H, W multiples of {n}, got {vol.shape}")
    Z, H, W = vol.shape
    h, w = H // n, W // n
    zc = (Z - 1) / 2 if focal_slice is None else float(focal_slice)
    planes = _blur(vol, (0.0, lateral_sigma, lateral_sigma)) if lateral_sigma > 0 else vol
    c = (n - 1) / 2
    du = np.arange(n) - c
    max_shift = int(math.ceil(abs(disparity) * max(zc, Z - 1 - zc) * c)) + 1
    p = max_shift
    padded = np.pad(planes, ((0, 0), (p, p + n), (p, p + n)))
    integ = np.zeros((Z, padded.shape[1] + 1, padded.shape[2] + 1), dtype=np.float64)
    integ[:, 1:, 1:] = padded.cumsum(1).cumsum(2)
    views = np.zeros((n, n, h, w), dtype=np.float64)
    iy = (np.arange(h) * n + p)[None, None, :, None]
    ix = (np.arange(w) * n + p)[None, None, None, :]
    for z in range(Z):
        s = np.rint(disparity * (z - zc) * du).astype(int)
        y0 = iy + s[:, None, None, None]
        x0 = ix + s[None, :, None, None]
        y0b, x0b = np.broadcast_arrays(y0, x0)
        I = integ[z]
        views += I[y0b + n, x0b + n] - I[y0b, x0b + n] - I[y0b + n, x0b] + I[y0b, x0b]
    if aperture == "circular":
        mask = (du[:, None] ** 2 + du[None, :] ** 2) <= (n / 2.0) ** 2
        views *= mask[:, :, None, None]
    elif aperture != "square":
        raise ValueError(f"aperture must be 'circular' or 'square', got {aperture!r}")
    lf_clean = views.transpose(2, 0, 3, 1).reshape(H, W).astype(np.float32)
    expected = _to_photons(lf_clean, photons, background)
    lf = camera_noise(expected, rng, read_noise, noise)
    return lf, _unit_peak(vol), expected


@register_generator("volumetric", forward=lightfield_forward, size=176, structures=("neurons", "beads"))
def volumetric_pair(
    rng: np.random.Generator,
    *,
    size: int | None = None,
    structure: str | None = None,
    pixel_size: tuple[float, float] = (0.5, 0.34),
    **physics,
) -> SynthPair:
    """Volumetric pair: light-field image ``(size, size)`` (a multiple of ``lenslets``) ->
    ``(out_depth, size, size)`` volume of sparse ``neurons`` (somata + neurites) or ``beads``."""
    spec = get_task("volumetric")
    lenslets = _fact(spec.lenslets, spec.name, "lenslets")
    size = _check_size(size or DEFAULT_SIZE["volumetric"], minimum=lenslets)
    if size % lenslets:
        raise ValueError(
            f"volumetric size must be a multiple of {lenslets} (lenslets), got {size}"
        )
    structure = _check_structure("volumetric", structure)
    shape = (_fact(spec.out_depth, spec.name, "out_depth"), size, size)
    aniso = pixel_size[0] / pixel_size[1]
    if structure == "beads":
        n = max(3, size * size // 800)
        pts = rng.uniform(0, 1, (n, 3)) * np.array(shape)
        vol = syn.splat(shape, pts, rng.uniform(0.5, 1.0, n))
        vol = _blur(vol, (0.5, 1.0, 1.0)) * (2 * np.pi) ** 1.5 * 0.5
    else:
        somata = syn.nuclei(
            shape, rng, n=max(2, size * size // 1500), radius=(3.0, 6.0), anisotropy=aniso,
            texture=0.2,
        )
        neurites = syn.filaments3d(shape, rng, n=max(2, size // 30), width=0.8, anisotropy=aniso,
                                   persistence=(50.0, 300.0))
        vol = np.maximum(somata, 0.6 * neurites)
    lf, hq, ex = lightfield_forward(vol, rng, lenslets=spec.lenslets, **physics)
    pz, pxy = pixel_size
    return SynthPair(
        lf, hq, spec.input_axes, spec.output_axes,
        {"Y": float(pxy), "X": float(pxy)}, {"Z": float(pz), "Y": float(pxy), "X": float(pxy)},
        {"structure": structure, "size": size, "pixel_size": list(pixel_size),
         **_defaults(lightfield_forward, physics, skip=("lenslets",))},
        ex,
    )


# ------------------------------------------------------------------------------------------
# dispatch


def _defaults(fn: Callable, given: dict[str, Any], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The physics parameters actually used (defaults overridden by ``given``), YAML-friendly."""
    import inspect

    out: dict[str, Any] = {}
    for name, par in inspect.signature(fn).parameters.items():
        if par.kind is not inspect.Parameter.KEYWORD_ONLY or name in skip:
            continue
        v = given.get(name, par.default)
        if isinstance(v, tuple):
            v = list(v)
        if isinstance(v, (np.floating, np.integer)):
            v = v.item()
        out[name] = v
    return out


STRUCTURES: dict[str, tuple[str, ...]] = {t: g.structures for t, g in GENERATORS.items()}
"""Structures each task's generator can draw (``None`` = the first one)."""
DEFAULT_STRUCTURE: dict[str, str] = {t: v[0] for t, v in STRUCTURES.items()}
DEFAULT_SIZE: dict[str, int] = {t: g.size for t, g in GENERATORS.items()}
"""Default Y/X size of each task's generated input (:attr:`Generator.size`)."""


def synthesize(
    task: str, rng: np.random.Generator, *, size: int | None = None, structure: str | None = None, **params
) -> SynthPair:
    """Draw one synthetic :class:`SynthPair` for ``task`` (see the module docstring for physics)."""
    spec = get_task(task)
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator (numpy.random.default_rng(seed))")
    return GENERATORS[spec.name].pair(rng, size=size, structure=structure, **params)


def make_pair(
    task: str, rng: np.random.Generator, *, size: int | None = None, structure: str | None = None, **params
) -> tuple[np.ndarray, np.ndarray]:
    """Return one synthetic ``(input, target)`` pair (float32) in the task's user-facing axes.

    * ``sr``: ``(size, size)`` -> ``(2 size, 2 size)``
    * ``denoise``: ``(Z, size, size)`` noisy -> same shape clean
    * ``isotropic``: ``(ceil(Z/z_factor), size, size)`` -> ``(Z, size, size)``
    * ``projection``: ``(50, size, size)`` -> ``(size, size)``
    * ``volumetric``: light-field ``(size, size)`` (multiple of 11) -> ``(61, size, size)``

    ``structure`` picks the content (:data:`STRUCTURES`; bacteria: ``ecoli``, ``saureus``,
    ``bacteria``); other keyword arguments go to the task's ``*_pair``/``*_forward`` function.
    """
    p = synthesize(task, rng, size=size, structure=structure, **params)
    return p.input, p.target
