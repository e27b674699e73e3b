"""Crops, conditions and degradations of the real-image benchmark (documented physics).

The real images are the *objects*; each is degraded with the image-formation models the suite's
bundles were trained on, imported from :mod:`unifmir.data.forward` (same PSF, camera and
sampling code), at several photon budgets and PSF widths around the training physics. The object
is the image minus its 0.1th percentile (the camera offset and the darkest background), clipped at
zero; the target is what the forward model calls the target. Every random draw comes from a
``numpy.random.Generator`` seeded per (task, condition, crop), so a run is reproducible.

Tasks (``T`` = time used as the third axis, stated in the crop label):

* **sr** -- ``sr_forward`` on a 256x256 object (the fine grid): Gaussian PSF of sigma ``s`` fine px
  (``sr_forward``'s NA/wavelength/pixel formula, pixel size set so that sigma = ``s``), 2x2 camera
  binning, Poisson-Gaussian camera at ``photons`` peak photo-electrons; target = the object under a
  PSF 2x narrower (``s/2``). Training physics: ``s`` = 2.71 px (NA 1.3, 525 nm, 31.3 nm pixels),
  100 photons, background 10, read noise 2 e-.
* **denoise** -- ``denoise_forward`` on a ``Z x Y x X`` object: 3D Gaussian PSF from NA, wavelength
  and voxel size, Poisson-Gaussian camera at ``photons``; target = the noise-free blurred object.
  Training physics (``unifmir-denoise``): NA 1.1, 520 nm, 1.0 x 0.2 um voxels (sigma 0.33 / 0.50
  voxels), 5 photons, background 1, read noise 1.5 e-.
* **isotropic** -- ``isotropic_forward`` with ``lateral_sigma=0`` (the real image keeps its own
  lateral blur): axial Gaussian blur of sigma ``a`` slices, keep slices ``0, 4, 8, ...`` (z factor
  4), camera noise; target = the object at full z sampling. Training physics: axial sigma 4.84
  voxels on an object blurred laterally by 0.91 (4.75 relative to the target), 50 photons,
  background 5, read noise 2 e-.
* **projection** -- ``projection_forward``: the real 2D image is the surface texture of a curved
  sheet ``z = h(y, x)`` (``unifmir.data.synthetic.height_map``) in a 50-slice stack, axial profile
  sigma ``a`` slices, lateral blur ``l`` px, optional out-of-surface clutter (the forward model's
  dim blobs more than 4 slices from the sheet), camera noise; target = the surface image blurred by
  ``l``. Training physics: ``l`` = 1, ``a`` = 1.5, clutter 0.7, 20 photons, background 3, read 2.
* **volumetric** -- ``lightfield_forward`` (11x11 lenslets, disparity 0.2) of a 61-slice volume
  made of three real 2D crops of one image lying in thin layers (Gaussian axial profile, sigma 1.5
  slices) near slices 12, 30 and 48; target = the volume. Training physics: lateral blur 1,
  200 photons, background 2, read noise 1 e-.

Hot pixels (SR and denoise): 0.05 % of the camera pixels, at uniformly drawn positions, read an
extra ``U(5, 50) x photons`` photo-electrons (hot pixels of sCMOS/EMCCD cameras are 10-1000x the
dark level; here 5-50x the brightest signal), added after the camera noise.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from unifmir.data import forward as fwd
from unifmir.data import synthetic as syn

__all__ = [
    "Condition",
    "Crop",
    "CONDITIONS",
    "HOT_PIXEL_FRACTION",
    "make_crops",
    "degrade",
    "rng_for",
    "to_object",
]

HOT_PIXEL_FRACTION = 5e-4
"""0.05 % of the camera pixels."""
SR_NA, SR_WAVELENGTH = 1.3, 0.525


@dataclass(frozen=True)
class Condition:
    """One degradation of one task."""

    task: str
    name: str
    """Short label used in tables."""
    params: dict[str, Any]
    training: bool = False
    """Whether these are the committed recipes' training physics."""
    hot_pixels: bool = False

    @property
    def label(self) -> str:
        return self.name + (" (training physics)" if self.training else "")


@dataclass
class Crop:
    """One object (ground-truth source) cut from a real image."""

    image: str
    """Key of :data:`real_images_data.IMAGES`."""
    label: str
    obj: np.ndarray = field(repr=False)


CONDITIONS: dict[str, list[Condition]] = {
    "sr": [
        Condition("sr", "PSF sigma 2.7 px, 100 photons", {"sigma": 2.71, "photons": 100.0}, training=True),
        Condition("sr", "PSF sigma 2.0 px, 100 photons", {"sigma": 2.0, "photons": 100.0}),
        Condition("sr", "PSF sigma 2.7 px, 20 photons", {"sigma": 2.71, "photons": 20.0}),
        Condition("sr", "PSF sigma 2.7 px, 100 photons, 0.05 % hot pixels", {"sigma": 2.71, "photons": 100.0},
                  hot_pixels=True),
    ],
    "denoise": [
        Condition("denoise", "NA 1.1 (sigma 0.33/0.50 vx), 5 photons",
                  {"na": 1.1, "pixel_size": (1.0, 0.2), "photons": 5.0}, training=True),
        Condition("denoise", "NA 1.1, 20 photons", {"na": 1.1, "pixel_size": (1.0, 0.2), "photons": 20.0}),
        Condition("denoise", "NA 0.8, 0.1 um px (sigma 0.73/1.37 vx), 5 photons",
                  {"na": 0.8, "pixel_size": (1.0, 0.1), "photons": 5.0}),
        Condition("denoise", "NA 1.1, 20 photons, 0.05 % hot pixels",
                  {"na": 1.1, "pixel_size": (1.0, 0.2), "photons": 20.0}, hot_pixels=True),
    ],
    "isotropic": [
        Condition("isotropic", "axial sigma 4.75 slices, 50 photons", {"axial_sigma": 4.75, "photons": 50.0},
                  training=True),
        Condition("isotropic", "axial sigma 2.5 slices, 50 photons", {"axial_sigma": 2.5, "photons": 50.0}),
        Condition("isotropic", "axial sigma 4.75 slices, 15 photons", {"axial_sigma": 4.75, "photons": 15.0}),
    ],
    "projection": [
        Condition("projection", "sheet sigma 1.5 sl, clutter 0.7, 20 photons",
                  {"axial_sigma": 1.5, "lateral_sigma": 1.0, "clutter": 0.7, "photons": 20.0}, training=True),
        Condition("projection", "sheet sigma 1.5 sl, clutter 0.7, 5 photons",
                  {"axial_sigma": 1.5, "lateral_sigma": 1.0, "clutter": 0.7, "photons": 5.0}),
        Condition("projection", "sheet sigma 3 sl, lateral 1.5 px, clutter 0.7, 20 photons",
                  {"axial_sigma": 3.0, "lateral_sigma": 1.5, "clutter": 0.7, "photons": 20.0}),
        Condition("projection", "sheet sigma 1.5 sl, no clutter, 20 photons",
                  {"axial_sigma": 1.5, "lateral_sigma": 1.0, "clutter": 0.0, "photons": 20.0}),
    ],
    "volumetric": [
        Condition("volumetric", "lateral blur 1 px, 200 photons", {"lateral_sigma": 1.0, "photons": 200.0},
                  training=True),
        Condition("volumetric", "lateral blur 1 px, 50 photons", {"lateral_sigma": 1.0, "photons": 50.0}),
        Condition("volumetric", "lateral blur 2 px, 200 photons", {"lateral_sigma": 2.0, "photons": 200.0}),
    ],
}


def rng_for(*parts: object) -> np.random.Generator:
    """A generator seeded from the names of (task, condition, crop): fixed across runs."""
    return np.random.default_rng(zlib.crc32("|".join(map(str, parts)).encode()))


def to_object(x: np.ndarray) -> np.ndarray:
    """Real image -> object: minus its 0.1th percentile, clipped at zero, float32."""
    x = np.asarray(x, dtype=np.float32)
    return np.clip(x - np.percentile(x, 0.1), 0, None).astype(np.float32)


# ------------------------------------------------------------------------------------------
# crops


def _tiles(shape: tuple[int, int], tile: tuple[int, int]) -> list[tuple[int, int]]:
    """Top-left corners of a regular grid of tiles covering ``shape`` (last tiles flush)."""
    out = []
    ny = max(1, math.ceil(shape[0] / tile[0]))
    nx = max(1, math.ceil(shape[1] / tile[1]))
    ys = np.linspace(0, shape[0] - tile[0], ny).round().astype(int)
    xs = np.linspace(0, shape[1] - tile[1], nx).round().astype(int)
    for y in ys:
        for x in xs:
            out.append((int(y), int(x)))
    return out


def _brightest(img2d: np.ndarray, tile: tuple[int, int], k: int) -> list[tuple[int, int]]:
    """The ``k`` tiles of the grid with the highest mean intensity (content, not method, decides)."""
    cands = _tiles(img2d.shape, tile)
    means = [float(img2d[y:y + tile[0], x:x + tile[1]].mean()) for y, x in cands]
    order = np.argsort(means)[::-1][:k]
    return sorted(cands[i] for i in order)


def _mirror_z(vol: np.ndarray, depth: int) -> np.ndarray:
    """Extend a stack along axis 0 by its mirror image (``0..Z-1, Z-2..``) to ``depth`` slices."""
    ext = np.concatenate([vol, vol[-2::-1]], axis=0)
    if ext.shape[0] < depth:
        raise ValueError(f"cannot mirror {vol.shape[0]} slices to {depth}")
    return ext[:depth]


def _frame_mean(stack: np.ndarray, t0: int, n: int = 5) -> np.ndarray:
    return stack[t0:t0 + n].mean(axis=0)


def make_crops(task: str, images: dict[str, np.ndarray], quick: bool = False) -> list[Crop]:
    """The objects of ``task`` cut from the real images (see the module docstring).

    ``quick`` keeps one crop per image (a smoke run). Sizes are chosen to be valid bundle inputs
    (multiples of the bundles' size steps; 11x11 lenslets for the light field).
    """
    return _CROPPERS[task](images, quick)


def _sr_crops(images: dict[str, np.ndarray], quick: bool) -> list[Crop]:
    out: list[Crop] = []
    t = (256, 256)
    k = 1 if quick else 4
    h = images["hybiss"]
    for y, x in _brightest(h, t, k):
        out.append(Crop("hybiss", f"y{y} x{x}", to_object(h[y:y + 256, x:x + 256])))
    c = images["cells"]
    for f in ((0,) if quick else (0, 29)):
        for y, x in _brightest(c[f], t, 1 if quick else 2):
            out.append(Crop("cells", f"t{f} y{y} x{x}", to_object(c[f, y:y + 256, x:x + 256])))
    # telomeres (133x162 frames): a 2x-binned frame (66x81) is below the bundles' minimum input
    # (72x72); a user would have to pad it, so it is not used for SR.
    return out


def _denoise_crops(images: dict[str, np.ndarray], quick: bool) -> list[Crop]:
    out: list[Crop] = []
    n3 = images["nuclei3d"]
    for z0, z1 in (((0, 31),) if quick else ((0, 16), (15, 31))):
        out.append(Crop("nuclei3d", f"z{z0}-{z1 - 1} y2 x0", to_object(n3[z0:z1, 2:58, 0:56])))
    tel = images["telomeres"]
    for t0 in ((0,) if quick else (0, 184)):
        out.append(Crop("telomeres", f"T{t0}-{t0 + 15} y0 x0", to_object(tel[t0:t0 + 16, :128, :160])))
    c = images["cells"]
    for t0 in ((0,) if quick else (0, 14)):
        for y, x in _brightest(c[t0:t0 + 16].mean(0), (128, 128), 1):
            out.append(Crop("cells", f"T{t0}-{t0 + 15} y{y} x{x}", to_object(c[t0:t0 + 16, y:y + 128, x:x + 128])))
    return out


def _isotropic_crops(images: dict[str, np.ndarray], quick: bool) -> list[Crop]:
    out: list[Crop] = []
    # lateral sides kept small (64-96 px): the isotropic bundle runs its network on every XZ and
    # YZ slice, ~1 min per 16x128x152 input on a loaded 2-core CPU
    tel = images["telomeres"]
    for t0, y0, x0 in (((0, 0, 0),) if quick else ((0, 0, 0), (68, 64, 64), (136, 0, 64))):
        out.append(Crop("telomeres", f"T{t0}-{t0 + 63} as z, y{y0} x{x0}",
                        to_object(tel[t0:t0 + 64, y0:y0 + 64, x0:x0 + 96])))
    n3 = images["nuclei3d"]
    out.append(Crop("nuclei3d", "z mirrored to 56, y2 x0", to_object(_mirror_z(n3[:, 2:58, 0:56], 56))))
    if not quick:
        c = images["cells"]
        for y, x in _brightest(c.mean(0), (96, 96), 2):
            out.append(Crop("cells", f"T mirrored to 56 as z, y{y} x{x}",
                            to_object(_mirror_z(c[:, y:y + 96, x:x + 96], 56))))
    return out


def _projection_crops(images: dict[str, np.ndarray], quick: bool) -> list[Crop]:
    out: list[Crop] = []
    h = images["hybiss"]
    for y, x in _brightest(h, (128, 128), 1 if quick else 2):
        out.append(Crop("hybiss", f"y{y} x{x}", to_object(h[y:y + 128, x:x + 128])))
    c = images["cells"]
    for f in ((0,) if quick else (0, 15)):
        for y, x in _brightest(c[f], (128, 128), 1):
            out.append(Crop("cells", f"t{f} y{y} x{x}", to_object(c[f, y:y + 128, x:x + 128])))
    tel = images["telomeres"]
    for t0 in ((0,) if quick else (0, 100)):
        out.append(Crop("telomeres", f"mean T{t0}-{t0 + 4} y0 x0", to_object(_frame_mean(tel, t0)[:128, :160])))
    return out


VOL_SIDE = 121  # 11 x 11 lenslets
VOL_LAYERS = (12, 30, 48)
VOL_LAYER_SIGMA = 1.5


def _layered_volume(layers: list[np.ndarray], rng: np.random.Generator, depth: int = 61) -> np.ndarray:
    z = np.arange(depth, dtype=np.float32)[:, None, None]
    vol = np.zeros((depth,) + layers[0].shape, dtype=np.float32)
    for zc, img in zip(VOL_LAYERS, layers):
        zc = zc + float(rng.uniform(-3, 3))
        img = img / max(float(img.max()), 1e-12)
        vol += img[None] * np.exp(-((z - zc) ** 2) / (2 * VOL_LAYER_SIGMA**2))
    return vol


def _volumetric_crops(images: dict[str, np.ndarray], quick: bool) -> list[Crop]:
    out: list[Crop] = []
    s = VOL_SIDE
    nvol = 1 if quick else 2
    sources: dict[str, list[tuple[str, np.ndarray]]] = {}
    h = images["hybiss"]
    sources["hybiss"] = [(f"y{y} x{x}", h[y:y + s, x:x + s]) for y, x in _brightest(h, (s, s), 3 * nvol)]
    c = images["cells"]
    sources["cells"] = []
    for f in (0, 10, 20, 29, 5, 15)[: 3 * nvol]:
        (y, x), = _brightest(c[f], (s, s), 1)
        sources["cells"].append((f"t{f} y{y} x{x}", c[f, y:y + s, x:x + s]))
    tel = images["telomeres"]
    sources["telomeres"] = [(f"mean T{t}-{t + 4}", _frame_mean(tel, t)[:s, :s]) for t in
                            (0, 33, 66, 99, 132, 165)[: 3 * nvol]]
    for key, layers in sources.items():
        for v in range(nvol):
            part = layers[3 * v:3 * v + 3]
            rng = rng_for("volumetric-layers", key, v)
            vol = _layered_volume([to_object(a) for _, a in part], rng)
            out.append(Crop(key, "layers " + "; ".join(lbl for lbl, _ in part), vol))
    return out


_CROPPERS: dict[str, Callable[[dict[str, np.ndarray], bool], list[Crop]]] = {
    "sr": _sr_crops,
    "denoise": _denoise_crops,
    "isotropic": _isotropic_crops,
    "projection": _projection_crops,
    "volumetric": _volumetric_crops,
}


# ------------------------------------------------------------------------------------------
# degradations


def add_hot_pixels(img: np.ndarray, rng: np.random.Generator, photons: float,
                   fraction: float = HOT_PIXEL_FRACTION) -> np.ndarray:
    """``fraction`` of the pixels read an extra ``U(5, 50) x photons`` photo-electrons."""
    out = np.array(img, dtype=np.float32, copy=True)
    n = max(1, int(round(fraction * out.size)))
    idx = rng.choice(out.size, size=n, replace=False)
    out.reshape(-1)[idx] += (rng.uniform(5.0, 50.0, n) * photons).astype(np.float32)
    return out


def _sr(obj, cond, rng):
    s = float(cond.params["sigma"])
    px = 0.21 * SR_WAVELENGTH / (SR_NA * s)  # sr_forward's sigma = 0.21 lambda / NA / pixel
    lq, target, _ = fwd.sr_forward(obj, rng, scale=2, na=SR_NA, wavelength=SR_WAVELENGTH, pixel_size=px,
                                   photons=cond.params["photons"], background=10.0, read_noise=2.0)
    return lq, target


def _denoise(obj, cond, rng):
    p = cond.params
    lq, target, _ = fwd.denoise_forward(obj, rng, na=p["na"], wavelength=0.52, pixel_size=p["pixel_size"],
                                        photons=p["photons"], background=1.0, read_noise=1.5)
    return lq, target


def _isotropic(obj, cond, rng):
    p = cond.params
    lq, target, _ = fwd.isotropic_forward(obj, rng, z_factor=4, lateral_sigma=0.0, axial_sigma=p["axial_sigma"],
                                          photons=p["photons"], background=5.0, read_noise=2.0)
    return lq, target


def _projection(obj, cond, rng):
    p = cond.params
    h = syn.height_map(obj.shape, rng, 50, margin=6.0)
    lq, target, _ = fwd.projection_forward(obj, h, rng, depth=50, lateral_sigma=p["lateral_sigma"],
                                           axial_sigma=p["axial_sigma"], clutter=p["clutter"],
                                           photons=p["photons"], background=3.0, read_noise=2.0)
    return lq, target


def _volumetric(obj, cond, rng):
    p = cond.params
    lf, target, _ = fwd.lightfield_forward(obj, rng, lenslets=11, disparity=0.2,
                                           lateral_sigma=p["lateral_sigma"], photons=p["photons"],
                                           background=2.0, read_noise=1.0)
    return lf, target


_DEGRADE = {"sr": _sr, "denoise": _denoise, "isotropic": _isotropic, "projection": _projection,
            "volumetric": _volumetric}


def degrade(crop: Crop, cond: Condition) -> tuple[np.ndarray, np.ndarray]:
    """``(degraded input, target)`` of ``crop`` under ``cond`` (seeded by their names)."""
    rng = rng_for(cond.task, cond.name, crop.image, crop.label)
    lq, target = _DEGRADE[cond.task](crop.obj, cond, rng)
    if cond.hot_pixels:
        lq = add_hot_pixels(lq, rng, float(cond.params["photons"]))
    return lq.astype(np.float32), target.astype(np.float32)
