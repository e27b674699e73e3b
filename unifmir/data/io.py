"""Reading, writing and validating microscopy images (TIFF, OME-TIFF and ``.npy``).

Every array handled by the package carries an explicit axes string made of the OME/bioimage.io
letters ``T C Z Y X`` (for example ``YX``, ``ZYX`` or ``CZYX``). Physical pixel sizes are kept in
micrometres in a ``{"Z": .., "Y": .., "X": ..}`` dictionary.

* :func:`read_image` reads TIFF/OME-TIFF/``.npy`` and returns ``(array, ImageMeta)``; axes and pixel
  sizes come from the OME-XML metadata when present (ImageJ spacing/resolution as a fallback).
* :func:`write_image` writes an OME-TIFF (axes + ``PhysicalSizeX/Y/Z``) or ``.npy`` atomically and
  refuses to replace an existing file unless ``overwrite=True``.
* :func:`validate_image` / :func:`check_pair` raise :class:`ImageError` (a ``ValueError``) with a
  message that says what is wrong and how to fix it.
"""

from __future__ import annotations

import os
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from unifmir._atomic import atomic_path
from unifmir.tasks import TaskSpec, get_task

__all__ = [
    "ImageError",
    "ImageMeta",
    "read_image",
    "write_image",
    "validate_image",
    "validate_axes",
    "check_pair",
    "check_pair_shapes",
    "default_axes",
    "open_memmap",
    "IMAGE_SUFFIXES",
    "strip_suffix",
    "ImageHeader",
    "read_header",
    "check_single_channel",
    "check_finite_file",
]

VALID_AXES = "TCZYX"
IMAGE_SUFFIXES = (".ome.tif", ".ome.tiff", ".tif", ".tiff", ".npy")


class ImageError(ValueError):
    """A problem with the content of an image (shape, axes, values) supplied by the user."""


@dataclass
class ImageMeta:
    """Axes and physical pixel sizes (micrometres per pixel, keyed by axis letter)."""

    axes: str
    pixel_size: dict[str, float] = field(default_factory=dict)


def strip_suffix(path: str | os.PathLike) -> str:
    """File name without its image suffix (``a.ome.tif`` -> ``a``)."""
    name = Path(path).name
    low = name.lower()
    for suf in IMAGE_SUFFIXES:
        if low.endswith(suf):
            return name[: -len(suf)]
    return Path(name).stem


def default_axes(ndim: int) -> str:
    """The axes assumed for an array without metadata: 2 -> ``YX``, 3 -> ``ZYX``, 4 -> ``CZYX``."""
    table = {2: "YX", 3: "ZYX", 4: "CZYX", 5: "TCZYX"}
    if ndim not in table:
        raise ImageError(
            f"cannot guess the axes of a {ndim}-dimensional array; pass axes explicitly "
            f"(e.g. axes='ZYX')"
        )
    return table[ndim]


def _take_one_channel(path: Path, axis: int, ndim: int) -> str:
    """A one-line recipe that writes channel 0 of ``path`` to a new single-channel file."""
    index = "[..., 0]" if axis == ndim - 1 else ("[0]" if axis == 0 else f".take(0, axis={axis})")
    out = f"{strip_suffix(path)}_c0.tif"
    return (f"python -c \"import tifffile; tifffile.imwrite('{out}', tifffile.imread('{path}'){index})\" "
            "(or Fiji: Image > Color > Split Channels)")


def check_single_channel(path: str | os.PathLike, shape: tuple[int, ...], file_axes: str, letters: str = "SC") -> None:
    """Raise :class:`ImageError` if the file holds several colour samples (RGB) or channels.

    ``file_axes`` are the file's own axis letters (tifffile's: ``S`` = samples per pixel, ``C`` =
    channels); ``letters`` selects which of the two are checked. The message names the file and
    shows how to keep one channel.
    """
    path = Path(path)
    for letter, what in (("S", "an RGB/multichannel image"), ("C", "a multichannel image")):
        if letter in letters and letter in file_axes.upper():
            k = file_axes.upper().index(letter)
            if k < len(shape) and shape[k] > 1:
                raise ImageError(
                    f"{path} is {what} ({shape[k]} channels; shape {tuple(shape)}, file axes {file_axes!r}), but "
                    f"unifmir works on single-channel images: take one channel with "
                    f"{_take_one_channel(path, k, len(shape))}"
                )


def validate_axes(axes: str) -> str:
    """Check an axes string (letters from ``TCZYX``, each once, ending in ``YX``); return it upper-cased."""
    if not isinstance(axes, str) or not axes:
        raise ImageError(f"axes must be a non-empty string such as 'YX' or 'ZYX', got {axes!r}")
    up = axes.upper()
    bad = sorted(set(up) - set(VALID_AXES))
    if bad:
        raise ImageError(
            f"axes {axes!r} contain unknown letters {''.join(bad)!r}; use letters from {VALID_AXES!r}"
        )
    if len(set(up)) != len(up):
        raise ImageError(f"axes {axes!r} repeat a letter; each of {VALID_AXES!r} may appear once")
    if not up.endswith("YX"):
        raise ImageError(f"axes {axes!r} must end with 'YX' (images are stored row-major, Y then X)")
    return up


def validate_image(
    array: Any,
    axes: str,
    name: str = "image",
    channels: int | None = None,
    min_size: int = 1,
) -> np.ndarray:
    """Check that ``array`` is a finite, non-empty numeric array with the given axes.

    ``channels`` (when given) is the required size of the ``C`` axis. Returns the array as a
    numpy array (a view when possible). Raises :class:`ImageError` naming ``name``.
    """
    axes = validate_axes(axes)
    if hasattr(array, "detach"):  # torch tensor
        array = array.detach().cpu().numpy()
    arr = np.asarray(array)
    if arr.dtype.kind not in "biuf":
        raise ImageError(
            f"{name} has non-numeric dtype {arr.dtype}; images must be integer or floating point "
            f"(convert with numpy.asarray(x, dtype='float32'))"
        )
    if arr.ndim != len(axes):
        raise ImageError(
            f"{name} has {arr.ndim} dimension(s) (shape {arr.shape}) but axes {axes!r} need "
            f"{len(axes)}; pass the right axes or reshape the image"
        )
    if arr.size == 0:
        raise ImageError(f"{name} is empty (shape {arr.shape}); every axis needs at least one pixel")
    small = [f"{a}={s}" for a, s in zip(axes, arr.shape) if a in "YX" and s < min_size]
    if small:
        raise ImageError(f"{name} is too small ({', '.join(small)}); need at least {min_size} pixels")
    if channels is not None:
        if "C" not in axes:
            if channels != 1:
                raise ImageError(
                    f"{name} has no channel axis but {channels} channels are required; "
                    f"add a 'C' axis of size {channels}"
                )
        else:
            c = arr.shape[axes.index("C")]
            if c != channels:
                raise ImageError(
                    f"{name} has {c} channel(s) on axis 'C' but {channels} are required"
                )
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        n_nan = int(np.isnan(arr).sum())
        n_inf = int(np.isinf(arr).sum())
        raise ImageError(
            f"{name} contains {n_nan} NaN and {n_inf} infinite value(s); replace them "
            f"(e.g. numpy.nan_to_num) before use"
        )
    return arr


def _ome_pixels(xml: str) -> tuple[dict[str, float], str | None]:
    """Physical sizes (converted to micrometres) and DimensionOrder of the first OME image."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return {}, None
    pixels = None
    for el in root.iter():
        if el.tag.endswith("Pixels"):
            pixels = el
            break
    if pixels is None:
        return {}, None
    factors = {"µm": 1.0, "um": 1.0, "micron": 1.0, "nm": 1e-3, "mm": 1e3, "m": 1e6, "Å": 1e-4}
    sizes: dict[str, float] = {}
    for ax in "XYZ":
        val = pixels.get(f"PhysicalSize{ax}")
        if val is None:
            continue
        unit = pixels.get(f"PhysicalSize{ax}Unit", "µm")
        try:
            sizes[ax] = float(val) * factors.get(unit, 1.0)
        except ValueError:
            continue
    return sizes, pixels.get("DimensionOrder")


def _imagej_sizes(tf: Any) -> dict[str, float]:
    sizes: dict[str, float] = {}
    ij = tf.imagej_metadata or {}
    if "spacing" in ij:
        try:
            sizes["Z"] = float(ij["spacing"])
        except (TypeError, ValueError):
            pass
    try:
        page = tf.pages[0]
        for ax, tag in (("X", "XResolution"), ("Y", "YResolution")):
            t = page.tags.get(tag)
            if t is not None:
                num, den = t.value
                if num:
                    sizes[ax] = float(den) / float(num)
    except Exception:  # pragma: no cover - metadata is best effort
        pass
    return sizes


def _squeeze_to(arr: np.ndarray, file_axes: str, axes: str | None) -> tuple[np.ndarray, str]:
    """Drop singleton axes so the array matches ``axes`` (or a guess when ``axes`` is None)."""
    file_axes = file_axes.upper()
    if axes is not None:
        axes = validate_axes(axes)
        if arr.ndim == len(axes):
            return arr, axes
        if arr.ndim < len(axes):  # singleton axes dropped by the writer (e.g. a 1-slice stack)
            return arr.reshape((1,) * (len(axes) - arr.ndim) + arr.shape), axes
        keep = [i for i, s in enumerate(arr.shape) if s != 1]
        sq = arr.reshape([arr.shape[i] for i in keep])
        if sq.ndim == len(axes):
            return sq, axes
        raise ImageError(
            f"image of shape {arr.shape} (file axes {file_axes!r}) cannot be read with axes "
            f"{axes!r}: it has {sq.ndim} non-singleton dimension(s), axes need {len(axes)}"
        )
    # guess: map tifffile's generic letters, drop singleton non-spatial axes
    mapping = {"I": "Z", "Q": "Z", "S": "Z", "T": "T", "C": "C", "Z": "Z", "Y": "Y", "X": "X"}
    letters = [mapping.get(a, "Z") for a in file_axes]
    keep = [i for i, (a, s) in enumerate(zip(letters, arr.shape)) if s != 1 or a in "YX"]
    arr = arr.reshape([arr.shape[i] for i in keep])
    letters = [letters[i] for i in keep]
    if len(set(letters)) != len(letters) or "".join(letters[-2:]) != "YX":
        return arr, default_axes(arr.ndim)
    return arr, "".join(letters)


def open_memmap(path: str | os.PathLike) -> np.ndarray:
    """Memory-map an uncompressed TIFF or ``.npy`` file; fall back to reading it.

    Returns the raw array with all its dimensions (no axes handling): used by the datasets to
    avoid loading large stacks into RAM.
    """
    path = Path(path)
    if path.suffix.lower() == ".npy":
        return np.load(path, mmap_mode="r", allow_pickle=False)
    import tifffile

    try:
        return tifffile.memmap(path, mode="r")
    except Exception:
        return tifffile.imread(path)


def read_image(
    path: str | os.PathLike, axes: str | None = None, mmap: bool = False
) -> tuple[np.ndarray, ImageMeta]:
    """Read a TIFF/OME-TIFF or ``.npy`` image; return ``(array, ImageMeta)``.

    ``axes`` forces the axes (singleton dimensions are squeezed to match); otherwise they come
    from the OME/ImageJ metadata, or from the number of dimensions (2: ``YX``, 3: ``ZYX``,
    4: ``CZYX``). Pixel sizes (micrometres) are read from OME ``PhysicalSizeX/Y/Z`` or ImageJ
    resolution tags when present. ``mmap=True`` memory-maps uncompressed files when possible.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"image file {path} does not exist")
    if path.is_dir():
        raise ImageError(f"{path} is a directory, not an image file; give the image files inside it (e.g. {path}/*.tif)")
    suffix = path.suffix.lower()
    sizes: dict[str, float] = {}
    if suffix == ".npy":
        try:
            arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except ValueError as err:
            raise ImageError(f"{path} is not a plain numeric .npy array ({err})") from None
        file_axes = default_axes(arr.ndim) if axes is None and arr.ndim in (2, 3, 4, 5) else "Q" * arr.ndim
        if axes is None and arr.ndim == 3 and arr.shape[-1] in (3, 4) and min(arr.shape[:2]) >= 8:
            raise ImageError(
                f"{path} has shape {arr.shape}: it looks like an RGB/multichannel image (last axis "
                f"{arr.shape[-1]}), but unifmir works on single-channel images: take one channel with "
                f"python -c \"import numpy as np; np.save('{strip_suffix(path)}_c0.npy', np.load('{path}')[..., 0])\"; "
                "if it really is a z-stack with 3-4 pixels along X, pass the axes (--axes ZYX)"
            )
        if axes is None:
            if arr.ndim not in (2, 3, 4, 5):
                default_axes(arr.ndim)  # raises
            axes_out = file_axes
        else:
            arr, axes_out = _squeeze_to(arr, file_axes, axes)
    elif suffix in (".tif", ".tiff"):
        import tifffile

        try:
            with tifffile.TiffFile(path) as tf:
                series = tf.series[0]
                file_axes = series.axes
                if tf.is_ome and tf.ome_metadata:
                    sizes, _ = _ome_pixels(tf.ome_metadata)
                elif tf.is_imagej:
                    sizes = _imagej_sizes(tf)
                arr = None
                if mmap:
                    try:
                        arr = tifffile.memmap(path, mode="r")
                        if arr.shape != tuple(series.shape):
                            arr = None
                    except Exception:
                        arr = None
                if arr is None:
                    arr = series.asarray()
        except (tifffile.TiffFileError, ValueError, IndexError, EOFError, struct.error) as err:
            raise ImageError(f"{path} is not a readable TIFF file ({err}); is it truncated or another format?") from None
        if axes is None or "C" not in validate_axes(axes):  # colour samples are never z-slices
            check_single_channel(path, tuple(arr.shape), file_axes, letters="S")
        arr, axes_out = _squeeze_to(arr, file_axes, axes)
    else:
        raise ImageError(
            f"unsupported image format {path.suffix!r} for {path}; use .tif/.tiff/.ome.tif or .npy"
        )
    sizes = {k: v for k, v in sizes.items() if k in axes_out}
    return arr, ImageMeta(axes=axes_out, pixel_size=sizes)


@dataclass
class ImageHeader:
    """Shape, dtype and axes of an image file, read without loading its pixels."""

    path: Path
    shape: tuple[int, ...]
    dtype: np.dtype
    file_axes: str
    """The file's own axis letters (tifffile's; ``.npy``: the default for its number of dimensions)."""


def read_header(path: str | os.PathLike) -> ImageHeader:
    """Read an image file's :class:`ImageHeader` (TIFF series metadata or the ``.npy`` header).

    Raises ``FileNotFoundError`` / :class:`ImageError` (unreadable, unsupported, a folder).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"image file {path} does not exist")
    if path.is_dir():
        raise ImageError(f"{path} is a directory, not an image file; give the image files inside it (e.g. {path}/*.tif)")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise ImageError(f"{path} is not a plain numeric .npy array ({err}); save it with numpy.save") from None
        axes = default_axes(arr.ndim) if arr.ndim in (2, 3, 4, 5) else "Q" * arr.ndim
        return ImageHeader(path, tuple(int(s) for s in arr.shape), arr.dtype, axes)
    if suffix in (".tif", ".tiff"):
        import tifffile

        try:
            with tifffile.TiffFile(path) as tf:
                series = tf.series[0]
                return ImageHeader(path, tuple(int(s) for s in series.shape), np.dtype(series.dtype), series.axes)
        except (tifffile.TiffFileError, ValueError, IndexError, EOFError, struct.error, TypeError) as err:
            raise ImageError(f"{path} is not a readable TIFF file ({err}); is it truncated or another format?") from None
    raise ImageError(f"unsupported image format {path.suffix!r} for {path}; use .tif/.tiff/.ome.tif or .npy")


def check_finite_file(path: str | os.PathLike, array: Any = None) -> None:
    """Raise :class:`ImageError` naming ``path`` if its floating-point pixels hold NaN/Inf.

    ``array`` is the (possibly memory-mapped) content; it is read block by block along the first
    axis so that large stacks are not loaded at once.
    """
    path = Path(path)
    arr = open_memmap(path) if array is None else array
    if np.dtype(arr.dtype).kind != "f":
        return
    n_nan = n_inf = 0
    first: tuple[int, ...] | None = None
    step = max(1, int(8_000_000 // max(1, int(np.prod(arr.shape[1:], dtype=np.int64)))))
    for i in range(0, arr.shape[0] if arr.ndim else 1, step):
        block = np.asarray(arr[i : i + step]) if arr.ndim else np.asarray(arr)
        bad = ~np.isfinite(block)
        if bad.any():
            n_nan += int(np.isnan(block).sum())
            n_inf += int(np.isinf(block).sum())
            if first is None:
                idx = np.argwhere(bad)[0]
                first = tuple(int(v) for v in idx)
                if arr.ndim:
                    first = (first[0] + i,) + first[1:]
    if n_nan or n_inf:
        raise ImageError(
            f"{path} contains {n_nan} NaN and {n_inf} infinite value(s) (first at index {first}); replace them "
            "(e.g. numpy.nan_to_num) or remove this image (and its pair) from the dataset"
        )


def write_image(
    path: str | os.PathLike,
    array: Any,
    axes: str,
    pixel_size: dict[str, float] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``array`` as OME-TIFF (``.tif``/``.tiff``) or ``.npy``, atomically; return the path.

    OME metadata record the axes and ``PhysicalSizeX/Y/Z`` in micrometres (``pixel_size`` maps
    axis letters to sizes). ``float16`` is stored as ``float32`` and ``bool`` as ``uint8`` (OME has
    no such pixel types). ``.npy`` files keep only the array. Raises ``FileExistsError`` if the
    file exists and ``overwrite`` is false.
    """
    path = Path(path)
    axes = validate_axes(axes)
    arr = validate_image(array, axes, name=f"array for {path.name}")
    if arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    elif arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    arr = np.ascontiguousarray(arr)
    suffix = path.suffix.lower()
    if suffix not in (".tif", ".tiff", ".npy"):
        raise ImageError(f"cannot write {path}: use a .tif/.tiff (OME-TIFF) or .npy file name")
    with atomic_path(path, overwrite=overwrite) as tmp:
        if suffix == ".npy":
            with open(tmp, "wb") as fh:
                np.save(fh, arr, allow_pickle=False)
        else:
            import tifffile

            metadata: dict[str, Any] = {"axes": axes}
            for ax, val in (pixel_size or {}).items():
                ax = ax.upper()
                if ax not in "XYZ":
                    raise ImageError(f"pixel_size key {ax!r} must be one of 'X', 'Y', 'Z'")
                if not (np.isfinite(val) and val > 0):
                    raise ImageError(f"pixel size along {ax} must be a positive number, got {val!r}")
                if ax in axes:
                    metadata[f"PhysicalSize{ax}"] = float(val)
                    metadata[f"PhysicalSize{ax}Unit"] = "µm"
            tifffile.imwrite(tmp, arr, ome=True, metadata=metadata)
    return path


def _shape_of(arr: Any) -> tuple[int, ...]:
    return tuple(int(s) for s in arr.shape)


def check_pair(
    lq: Any, hq: Any, task: str | TaskSpec, z_factor: int | None = None, name: str = "pair"
) -> None:
    """Check that a low-quality input and high-quality target form a valid pair for ``task``.

    Both are in the task's user-facing axes (``spec.input_axes`` / ``spec.output_axes``):

    * ``sr``: target Y/X are ``scale`` times the input's;
    * ``denoise``: equal shapes;
    * ``isotropic``: equal Y/X; target depth equals the input's (input already resampled) or the
      input is the target's grid subsampled by ``z_factor``: ``ceil(Z_target / z_factor)`` slices;
    * ``projection``: input has ``in_depth`` slices, target Y/X equal the input's;
    * ``volumetric``: input Y/X are multiples of ``lenslets`` and equal the target's Y/X, and the
      target has ``out_depth`` slices.

    Values are validated too (numeric, finite, non-empty). Raises :class:`ImageError`.
    """
    spec = get_task(task)
    lq = validate_image(lq, spec.input_axes, name=f"{name} input")
    hq = validate_image(hq, spec.output_axes, name=f"{name} target")
    check_pair_shapes(_shape_of(lq), _shape_of(hq), spec, z_factor=z_factor, name=name)


def check_pair_shapes(
    ls: tuple[int, ...], hs: tuple[int, ...], task: str | TaskSpec, z_factor: int | None = None,
    name: str = "pair",
) -> None:
    """The shape part of :func:`check_pair` (no data needed, e.g. for memory-mapped files)."""
    spec = get_task(task)
    ls, hs = tuple(int(s) for s in ls), tuple(int(s) for s in hs)
    if len(ls) != len(spec.input_axes) or len(hs) != len(spec.output_axes):
        raise ImageError(
            f"{name} for task {spec.name!r}: input shape {ls} / target shape {hs} must have axes "
            f"{spec.input_axes!r} / {spec.output_axes!r}"
        )
    pre = f"{name} for task {spec.name!r}: input shape {ls} and target shape {hs}"
    if spec.input_axes == spec.output_axes == "YX":
        want = tuple(s * spec.scale for s in ls)
        if hs != want:
            raise ImageError(f"{pre} do not match; the target must be {spec.scale}x the input {want}")
    elif spec.in_depth is not None:
        if ls[0] != spec.in_depth:
            raise ImageError(f"{pre}: the input must have exactly {spec.in_depth} z-slices, has {ls[0]}")
        if hs != ls[1:]:
            raise ImageError(f"{pre} do not match; the target must have the input's Y/X size {ls[1:]}")
    elif spec.out_depth is not None:
        n = spec.lenslets or 1
        if ls[0] % n or ls[1] % n:
            raise ImageError(
                f"{pre}: the light-field image's sides must be multiples of {n} (lenslets), got {ls}"
            )
        if hs[0] != spec.out_depth:
            raise ImageError(f"{pre}: the target must have exactly {spec.out_depth} z-slices, has {hs[0]}")
        if hs[1:] != ls:
            raise ImageError(f"{pre} do not match; the target Y/X must equal the input's {ls}")
    elif spec.z_factor is not None:
        if hs[1:] != ls[1:]:
            raise ImageError(f"{pre} do not match in Y/X")
        f = z_factor or spec.z_factor
        if hs[0] != ls[0] and -(-hs[0] // f) != ls[0]:
            raise ImageError(
                f"{pre}: the input depth must equal the target's or be the target's subsampled by "
                f"the z factor {f} ({-(-hs[0] // f)} slices); set z_factor in dataset.yaml (or pass "
            f"z_factor=) if your stacks use another factor"
            )
    else:
        if hs != ls:
            raise ImageError(f"{pre} do not match; input and target must have the same shape")

