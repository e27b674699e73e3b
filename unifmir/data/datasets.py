"""PyTorch datasets sampling training patches, shaped as the network sees them.

:class:`PatchDataset` reads a dataset folder (layout: :mod:`unifmir.data.pairs`) and yields
``{"input": Tensor[C, H, W], "target": Tensor[C', H', W']}`` (float32, normalised):

=============  ==============================================  =====================================
task           input (network view)                            target
=============  ==============================================  =====================================
sr             ``(1, p, p)``                                   ``(1, 2p, 2p)``
denoise        ``(5, p, p)``: slices ``z-2..z+2`` as channels   ``(1, p, p)``: slice ``z``
               (edge slices repeated)
isotropic      ``(1, p, p)``: an XZ or YZ slice (rows = Z) of   ``(1, p, p)``: the same slice of the
               the input linearly resampled to the target's z   target
               grid (:func:`unifmir.data.forward.upsample_z`)
projection     ``(50, p, p)``: the 50 slices as channels        ``(1, p, p)``
volumetric     ``(121, p/11, p/11)``: the 11x11 light-field      ``(61, p, p)``
               views (:func:`lightfield_to_views`), VCD-norm.    (VCD-normalised)
=============  ==============================================  =====================================

``p`` is ``patch_size`` (default: the registry's ``TaskSpec.patch_size``, in input pixels; for
volumetric in light-field pixels, a multiple of 11). Images smaller than a patch are
reflect-padded. Inputs and targets are normalised per image with
:func:`unifmir.data.normalize.normalize_for_task` (percentiles of the whole image/stack, computed
once per file on at most ~8 M samples; VCD for volumetric). Files are memory-mapped (uncompressed
TIFF via ``tifffile.memmap``, ``.npy`` via ``mmap_mode="r"``) and only the patch is read.

Augmentation (``augment=True``) uses only physically valid symmetries: flips and 90-degree
rotations of the lateral (Y, X) plane for sr, denoise, projection and volumetric (for light
fields the raw image is transformed, which mirrors lenslets and views consistently); for
isotropic XZ/YZ slices only flips (a rotation would swap axial and lateral blur).

Each item is a pure function of ``(seed, epoch, index)``: call :meth:`PatchDataset.set_epoch` to
draw new patches every epoch. Worker processes open their own memory maps.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator, Literal

import numpy as np
import torch
import torch.utils.data

from unifmir.data.io import (
    ImageError,
    check_finite_file,
    check_pair_shapes,
    check_single_channel,
    open_memmap,
    read_header,
    read_image,
)
from unifmir.data.normalize import NormStats, normalize_for_task
from unifmir.data.pairs import list_pairs, load_dataset_info
from unifmir.tasks import TaskSpec, get_task

__all__ = [
    "PatchDataset",
    "validate_dataset",
    "whole_image_pairs",
    "lightfield_to_views",
    "views_to_lightfield",
    "denoise_window",
]

_STATS_MAX_SAMPLES = 8_000_000


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def lightfield_to_views(img: Any, n: int = 11) -> Any:
    """Rearrange a raw light-field image ``(..., h*n, w*n)`` into views ``(..., n*n, h, w)``.

    View ``u*n + v`` collects pixel ``(u, v)`` of every lenslet: ``views[..., u*n+v, i, j] =
    img[..., i*n + u, j*n + v]`` (the VCD-Net ``lf_extract`` order). numpy or torch.
    """
    *lead, H, W = img.shape
    if H % n or W % n:
        raise ImageError(f"light-field image sides {H}x{W} must be multiples of the lenslet size {n}")
    h, w = H // n, W // n
    k = len(lead)
    x = img.reshape(*lead, h, n, w, n)
    perm = tuple(range(k)) + (k + 1, k + 3, k, k + 2)
    x = x.permute(*perm) if _is_torch(x) else x.transpose(perm)
    return x.reshape(*lead, n * n, h, w)


def views_to_lightfield(views: Any, n: int | None = None) -> Any:
    """Inverse of :func:`lightfield_to_views`: ``(..., n*n, h, w)`` -> ``(..., h*n, w*n)``."""
    *lead, c, h, w = views.shape
    if n is None:
        n = int(round(c**0.5))
    if n * n != c:
        raise ImageError(f"{c} views are not a square lenslet grid (n*n with n={n})")
    k = len(lead)
    x = views.reshape(*lead, n, n, h, w)
    perm = tuple(range(k)) + (k + 2, k, k + 3, k + 1)
    x = x.permute(*perm) if _is_torch(x) else x.transpose(perm)
    return x.reshape(*lead, h * n, w * n)


def denoise_window(stack: np.ndarray, z: int, k: int = 5) -> np.ndarray:
    """Slices ``z - k//2 .. z + k//2`` of ``stack`` (edges repeated), stacked on axis 0."""
    Z = stack.shape[0]
    idx = np.clip(np.arange(z - k // 2, z - k // 2 + k), 0, Z - 1)
    return np.asarray(stack[idx])


def _squeeze_to(arr: np.ndarray, ndim: int, path: Path) -> np.ndarray:
    if arr.ndim < ndim:  # singleton axes dropped by the writer (e.g. a 1-slice stack)
        arr = arr.reshape((1,) * (ndim - arr.ndim) + arr.shape)
    while arr.ndim > ndim and arr.shape[0] == 1:
        arr = arr[0]
    while arr.ndim > ndim and arr.shape[-3] == 1 and ndim >= 2:  # e.g. (Z, 1, Y, X)
        arr = arr.reshape(arr.shape[:-3] + arr.shape[-2:])
    if arr.ndim != ndim:
        raise ImageError(f"{path} has shape {arr.shape}; expected {ndim} dimensions for this task")
    return arr


def _pad_to(arr: np.ndarray, sizes: dict[int, int]) -> np.ndarray:
    """Reflect-pad (edge-pad for 1-pixel axes) ``arr`` so that axis ``a`` has at least ``sizes[a]``."""
    pads = [(0, 0)] * arr.ndim
    need = False
    for a, s in sizes.items():
        if arr.shape[a] < s:
            pads[a] = (0, s - arr.shape[a])
            need = True
    if not need:
        return arr
    arr = np.asarray(arr)
    for a, (_, extra) in enumerate(pads):
        while extra > 0:
            mode: Literal["reflect", "edge"] = "reflect" if arr.shape[a] > 1 else "edge"
            step = min(extra, arr.shape[a] - 1) if mode == "reflect" else extra
            pw = [(0, 0)] * arr.ndim
            pw[a] = (0, step)
            arr = np.pad(arr, pw, mode=mode)
            extra -= step
    return arr


class PatchDataset(torch.utils.data.Dataset):
    """Random training patches of one task from a dataset folder (see module docstring).

    Parameters: ``root`` dataset folder; ``task`` name; ``split`` ``train``/``test``;
    ``patch_size`` input patch side (default registry); ``seed``; ``length`` items per epoch
    (default: number of pairs); ``augment``; ``normalize`` (False returns raw float32 values);
    ``z_factor`` (isotropic; default dataset.yaml, then inferred from shapes, then registry).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        task: str | TaskSpec,
        split: str = "train",
        patch_size: int | None = None,
        seed: int = 0,
        length: int | None = None,
        augment: bool = True,
        normalize: bool = True,
        z_factor: int | None = None,
    ) -> None:
        self.spec = get_task(task)
        self.root = Path(root)
        self.info = load_dataset_info(self.root, self.spec.name)
        self.pairs = list_pairs(self.root, split)
        if not self.pairs:
            raise ImageError(f"{self.root / split} holds no image pairs")
        self.split = split
        self.patch_size = int(patch_size or self.spec.patch_size)
        if self.patch_size < 1:
            raise ValueError(f"patch_size must be positive, got {patch_size}")
        n = self.spec.lenslets
        if n and self.patch_size % n:
            raise ValueError(
                f"volumetric patch_size must be a multiple of {n} light-field pixels, got {self.patch_size}"
            )
        self.seed = int(seed)
        self.length = int(length) if length is not None else len(self.pairs)
        self.augment = augment
        self.normalize = normalize
        self.z_factor = z_factor or self.info.z_factor
        self.epoch = 0
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._stats: dict[int, tuple[NormStats | None, NormStats | None]] = {}
        self._pid = os.getpid()

    def __getstate__(self) -> dict[str, Any]:
        # worker processes (spawn) reopen their own memory maps instead of pickling arrays
        state = self.__dict__.copy()
        state["_cache"] = {}
        return state

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        """Select the patches of ``epoch`` (items depend on ``(seed, epoch, index)``)."""
        self.epoch = int(epoch)

    # -- file access ------------------------------------------------------------------------
    def _arrays(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        if os.getpid() != self._pid:  # forked worker: reopen maps
            self._cache.clear()
            self._pid = os.getpid()
        if k not in self._cache:
            p_in, p_tg = self.pairs[k]
            a = _squeeze_to(open_memmap(p_in), len(self.spec.input_axes), p_in)
            b = _squeeze_to(open_memmap(p_tg), len(self.spec.output_axes), p_tg)
            check_pair_shapes(a.shape, b.shape, self.spec, z_factor=self.z_factor, name=p_in.name)
            if len(self._cache) > 64:
                self._cache.pop(next(iter(self._cache)))
            self._cache[k] = (a, b)
        return self._cache[k]

    def _norm_stats(self, k: int) -> tuple[NormStats | None, NormStats | None]:
        if not self.normalize:
            return None, None
        if k not in self._stats:
            a, b = self._arrays(k)
            self._stats[k] = (self._stats_of(a), self._stats_of(b))
        return self._stats[k]

    def _stats_of(self, arr: np.ndarray) -> NormStats:
        step = max(1, int(np.ceil(arr.size / _STATS_MAX_SAMPLES)))
        sample = arr[::step] if arr.ndim >= 3 and step > 1 else arr
        if sample.size > _STATS_MAX_SAMPLES:
            sample = np.asarray(sample).reshape(-1)[::step]
        _, stats = normalize_for_task(np.asarray(sample, dtype=np.float32), self.spec)
        return stats

    @staticmethod
    def _apply(x: np.ndarray, stats: NormStats | None) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if stats is None:
            return x
        if stats.kind == "vcd":
            return x / np.float32(stats.hi) - 1.0
        return (x - np.float32(stats.lo)) / np.float32(stats.hi - stats.lo + stats.eps)

    # -- sampling ---------------------------------------------------------------------------
    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, int(index)])

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} items")
        rng = self._rng(index)
        a, b, sa, sb = self._source(index)
        x, y = getattr(self, f"_sample_{self.spec.name}")(a, b, rng)
        x, y = self._apply(x, sa), self._apply(y, sb)
        return {
            "input": torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
            "target": torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)),
        }

    def _source(self, index: int) -> tuple[np.ndarray, np.ndarray, NormStats | None, NormStats | None]:
        """The pair item ``index`` is cropped from and its normalisation statistics."""
        k = index % len(self.pairs)
        return (*self._arrays(k), *self._norm_stats(k))

    def _crop2d(self, rng, H: int, W: int, p: int, grid: int = 1) -> tuple[int, int]:
        y0 = int(rng.integers(0, max(H - p, 0) // grid + 1)) * grid
        x0 = int(rng.integers(0, max(W - p, 0) // grid + 1)) * grid
        return y0, x0

    def _lateral_aug(self, rng, *arrs: np.ndarray) -> list[np.ndarray]:
        if not self.augment:
            return list(arrs)
        k = int(rng.integers(4))
        fy, fx = bool(rng.integers(2)), False
        out = []
        for a in arrs:
            a = np.rot90(a, k, axes=(-2, -1))
            if fy:
                a = a[..., ::-1, :]
            out.append(a)
        return out

    def _sample_sr(self, a, b, rng):
        p, s = self.patch_size, self.spec.scale
        a = _pad_to(a, {0: p, 1: p})
        b = _pad_to(b, {0: s * p, 1: s * p})
        y0, x0 = self._crop2d(rng, a.shape[0], a.shape[1], p)
        x = np.asarray(a[y0 : y0 + p, x0 : x0 + p])[None]
        y = np.asarray(b[s * y0 : s * (y0 + p), s * x0 : s * (x0 + p)])[None]
        return self._lateral_aug(rng, x, y)

    def _sample_denoise(self, a, b, rng):
        p, k = self.patch_size, self.spec.context_slices
        Z, H, W = a.shape
        z = int(rng.integers(Z))
        y0, x0 = self._crop2d(rng, H, W, p)
        idx = np.clip(np.arange(z - k // 2, z - k // 2 + k), 0, Z - 1)
        x = np.stack([np.asarray(a[i, y0 : y0 + p, x0 : x0 + p]) for i in idx])
        y = np.asarray(b[z, y0 : y0 + p, x0 : x0 + p])[None]
        x, y = _pad_to(x, {1: p, 2: p}), _pad_to(y, {1: p, 2: p})
        return self._lateral_aug(rng, x, y)

    def _iso_factor(self, a, b) -> int:
        """1 when the input is already on the target's z grid, else the dataset's z factor
        (``z_factor`` argument, then dataset.yaml, then the registry; checked by check_pair)."""
        if a.shape[0] == b.shape[0]:
            return 1
        return int(self.z_factor or self.spec.z_factor or 1)

    def _sample_isotropic(self, a, b, rng):
        from unifmir.data.forward import upsample_z

        p = self.patch_size
        f = self._iso_factor(a, b)
        Z, H, W = b.shape
        if rng.integers(2):  # XZ slice at a random y
            yy = int(rng.integers(H))
            xs, ys = np.asarray(a[:, yy, :]), np.asarray(b[:, yy, :])
        else:  # YZ slice at a random x
            xx = int(rng.integers(W))
            xs, ys = np.asarray(a[:, :, xx]), np.asarray(b[:, :, xx])
        xs = upsample_z(xs, f, depth=Z)
        xs, ys = _pad_to(xs, {0: p, 1: p}), _pad_to(ys, {0: p, 1: p})
        z0, l0 = self._crop2d(rng, xs.shape[0], xs.shape[1], p)
        x = xs[z0 : z0 + p, l0 : l0 + p][None]
        y = ys[z0 : z0 + p, l0 : l0 + p][None]
        if self.augment:
            if rng.integers(2):
                x, y = x[:, ::-1], y[:, ::-1]
            if rng.integers(2):
                x, y = x[:, :, ::-1], y[:, :, ::-1]
        return x, y

    def _sample_projection(self, a, b, rng):
        p = self.patch_size
        _, H, W = a.shape
        y0, x0 = self._crop2d(rng, H, W, p)
        x = np.asarray(a[:, y0 : y0 + p, x0 : x0 + p])
        y = np.asarray(b[y0 : y0 + p, x0 : x0 + p])[None]
        x, y = _pad_to(x, {1: p, 2: p}), _pad_to(y, {1: p, 2: p})
        return self._lateral_aug(rng, x, y)

    def _sample_volumetric(self, a, b, rng):
        p, n = self.patch_size, self.spec.lenslets
        H, W = a.shape
        if H < p or W < p:
            raise ImageError(
                f"light-field image {H}x{W} is smaller than the patch {p}; use patch_size <= {min(H, W) // n * n}"
            )
        y0, x0 = self._crop2d(rng, H, W, p, grid=n)
        lf = np.asarray(a[y0 : y0 + p, x0 : x0 + p])
        vol = np.asarray(b[:, y0 : y0 + p, x0 : x0 + p])
        lf, vol = self._lateral_aug(rng, lf, vol)
        return lightfield_to_views(np.ascontiguousarray(lf), n), vol


def _squeezed_shape(shape: tuple[int, ...], ndim: int) -> tuple[int, ...] | None:
    """``shape`` with singleton axes dropped (or prepended) to ``ndim`` dims, as :func:`_squeeze_to` does."""
    shape = tuple(shape)
    if len(shape) < ndim:
        return (1,) * (ndim - len(shape)) + shape
    while len(shape) > ndim and shape[0] == 1:
        shape = shape[1:]
    while len(shape) > ndim and shape[-3] == 1:
        shape = shape[:-3] + shape[-2:]
    return shape if len(shape) == ndim else None


def _checked_image(path: Path, axes: str, role: str, check_values: bool) -> tuple[int, ...]:
    """Shape (in ``axes``) of one dataset image after checking channels, dims, dtype and values."""
    head = read_header(path)
    check_single_channel(path, head.shape, head.file_axes)
    if head.dtype.kind not in "biuf":
        raise ImageError(f"{path} has non-numeric pixels ({head.dtype}); save the {role} as integer or float")
    shape = _squeezed_shape(head.shape, len(axes))
    if shape is None:
        raise ImageError(
            f"{path} has shape {head.shape} (file axes {head.file_axes!r}), but a {role} of this task is a "
            f"{len(axes)}-D image with axes {axes!r}; store one {axes} image per file"
        )
    if 0 in shape:
        raise ImageError(f"{path} is empty (shape {head.shape}); remove it or write the image again")
    if check_values:
        try:
            check_finite_file(path)
        except (OSError, ValueError) as err:
            if isinstance(err, ImageError):
                raise
            raise ImageError(f"cannot read the pixels of {path} ({err}); is the file truncated?") from None
    return shape


def validate_dataset(
    root: str | os.PathLike,
    task: str | TaskSpec,
    splits: tuple[str, ...] = ("train",),
    *,
    z_factor: int | None = None,
    patch_size: int | None = None,
    check_values: bool = True,
    progress: bool = False,
) -> dict[str, int]:
    """Check every pair of ``root``'s ``splits`` for ``task`` before any work starts.

    For each file: readable, single channel (no RGB samples or channels), the task's number of
    dimensions, numeric pixels, not empty and (``check_values``) finite; for each pair: the
    shapes the task needs (:func:`unifmir.data.io.check_pair_shapes`); for ``volumetric`` the
    light-field image must hold one ``patch_size`` patch. Every split must hold at least one pair.
    Raises :class:`ImageError` / ``FileNotFoundError`` naming the file and the fix; returns the
    number of pairs per split. ``progress`` shows a tqdm bar when there are more than 50 pairs.
    """
    spec = get_task(task)
    root = Path(root)
    info = load_dataset_info(root, spec.name)
    zf = z_factor or info.z_factor
    if info.stream is not None:  # the train split is drawn on the fly (unifmir.data.stream)
        splits = tuple(s for s in splits if s != "train")
    pairs = {split: list_pairs(root, split) for split in splits}
    for split, found in pairs.items():
        if not found:
            raise ImageError(
                f"{root / split} holds no image pairs; put input/NAME and target/NAME files there "
                "(see `unifmir synth` for the layout)"
            )
    total = sum(len(v) for v in pairs.values())
    bar = None
    if progress and total > 50:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=f"checking {root.name}", unit="pair", leave=False)
    try:
        for split, found in pairs.items():
            for p_in, p_tg in found:
                a = _checked_image(p_in, spec.input_axes, "input", check_values)
                b = _checked_image(p_tg, spec.output_axes, "target", check_values)
                check_pair_shapes(a, b, spec, z_factor=zf, name=f"{p_in} and its target {p_tg.name}")
                if spec.lenslets and patch_size and min(a) < patch_size:
                    raise ImageError(
                        f"{p_in}: the light-field image {a} is smaller than the training patch {patch_size}; "
                        f"use --patch-size <= {min(a) // spec.lenslets * spec.lenslets} or larger images"
                    )
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return {split: len(found) for split, found in pairs.items()}


def whole_image_pairs(
    root: str | os.PathLike, task: str | TaskSpec, split: str = "test", with_names: bool = False
) -> Iterator[Any]:
    """Iterate full ``(input, target)`` float32 numpy pairs (user-facing axes, not normalised)
    of ``root/split``; ``with_names=True`` yields ``(name, input, target)``."""
    spec = get_task(task)
    load_dataset_info(root, spec.name)
    for p_in, p_tg in list_pairs(root, split):
        a, _ = read_image(p_in, spec.input_axes)
        b, _ = read_image(p_tg, spec.output_axes)
        a = np.asarray(a, dtype=np.float32)
        b = np.asarray(b, dtype=np.float32)
        if with_names:
            from unifmir.data.io import strip_suffix

            yield strip_suffix(p_in), a, b
        else:
            yield a, b
