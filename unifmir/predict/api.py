"""``unifmir.predict``: restore an image of any size with a UniFMIR network (tiled, eager/TorchScript).

Pipeline for one image (:func:`predict`):

1. check the image against the task (axes, number of z-slices, light-field size);
2. normalise it as in training (:func:`unifmir.predict.modules.normalize_input`);
3. the task module (:mod:`unifmir.predict.modules`) rearranges it into 2-D network inputs
   (``views``) and runs the non-local ``global_stage`` on the whole image;
4. the local SwinIR stage runs tile by tile (:func:`unifmir.predict.tiling.tiled_apply`) with a
   halo of at least its measured receptive field (:mod:`unifmir.predict.receptive`), tiles aligned
   to the window grid, so that the result equals the whole-image prediction (within 1e-4);
5. ``finish`` merges the outputs; the output is de-normalised with the input's statistics
   (``output_units="input"``, the default) or returned in the network's normalised units
   (``output_units="normalized"``: exactly what the exported bioimage.io bundle returns).

Memory model (documented estimate used to pick the tile size automatically): one image of the
local stage needs about ``4 * (C_in + 20*E + 2*heads*ws^2 + s^2*(4*F + C_out))`` bytes per input
pixel, with ``E`` the Swin embedding width, ``heads`` the attention heads, ``ws`` the window,
``F`` the tail width (``num_feat``) and ``s`` the scale: the live activations of one Swin block
(input, shortcut, LayerNorm, rolled copy, windows, qkv, attention output, MLP hidden ~ 20 E) plus
the attention matrices and the up-sampling tail. Half of the available memory
(``MemAvailable`` from ``/proc/meminfo`` on the CPU, ``torch.cuda.mem_get_info`` free memory on
CUDA) is the budget for ``batch x tile^2`` pixels, where a tile includes its halo.
"""

from __future__ import annotations

import logging
import math
import os
import weakref
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from unifmir.model.network import NETWORK_CLASSES, input_channels, network_task, upscale
from unifmir.model.single import SwinIRNet, VolumetricNet
from unifmir.predict.borders import crop_borders, input_halo, pad_symmetric, yx_halo
from unifmir.predict.modules import (
    DenoiseStack, IsotropicStack, TaskModule, build_task_module, denormalize_output, normalize_input,
)
from unifmir.predict.precision import autocast, resolve_precision
from unifmir.predict.receptive import receptive_field
from unifmir.predict.tiling import TileSpec, num_tiles, round_down, round_up, tiled_apply
from unifmir.tasks import TaskSpec, get_task, other_task

__all__ = [
    "predict",
    "load_model",
    "prepare_module",
    "check_network",
    "check_axes",
    "check_input",
    "plan_tiles",
    "halo_for",
    "border_halo",
    "bytes_per_pixel",
    "available_memory",
    "output_pixel_size",
    "cast_output",
    "MIN_SIDE",
    "OUTPUT_UNITS",
    "PADDINGS",
]

PADDINGS: tuple[str, ...] = ("symmetric", "none")
"""Image borders in :func:`predict`: mirror-padded by the bundle's halo (what bioimageio.core
does with the exported bundle) or left to the network (zero-padded convolutions)."""

OUTPUT_UNITS: tuple[str, ...] = ("input", "normalized")
"""Units of :func:`predict`'s output: the input's intensity range (de-normalised with the input's
statistics) or the network's normalised units (what the bioimage.io bundles return)."""

MIN_SIDE = 8
"""Smallest y/x size (network-input pixels) accepted: the Swin window."""

BLEND = 8
"""Width of the linear cross-fade after the halo (input pixels)."""

_SCRIPTED: "weakref.WeakKeyDictionary[nn.Module, tuple[Any, torch.jit.ScriptModule]]" = weakref.WeakKeyDictionary()


# ------------------------------------------------------------------------------------------
# model
# ------------------------------------------------------------------------------------------


def load_model(source: Any, task: Optional[str] = None) -> nn.Module:
    """A network from a module, our checkpoint or an official checkpoint (path), in eval mode.

    A multi-task model given as a module is reduced to ``task``'s single-task network.
    """
    if isinstance(source, nn.Module):
        net = source
        if isinstance(net, NETWORK_CLASSES) and network_task(net) is None:  # the multi-task network
            if task is None:
                raise ValueError("a multi-task model needs task=... (which task to run)")
            from unifmir.model.checkpoints import extract_task

            net = extract_task(net, get_task(task).name)
        return net.eval()
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():  # a file, or a bioimage.io bundle folder
            raise FileNotFoundError(f"model checkpoint {path} does not exist")
        from unifmir.model.checkpoints import load_any

        return load_any(path, task=None if task is None else get_task(task).name).eval()
    raise TypeError(f"model must be an nn.Module or a checkpoint path, got {type(source).__name__}")


def prepare_module(
    model: Any, task: Optional[str] = None, *, z_factor: Optional[int] = None, chunk: int = 8
) -> TaskModule:
    """Load ``model`` (see :func:`load_model`) and wrap it into its task module (eval mode).

    Raises ``ValueError`` before anything runs when the network cannot serve the task (its input
    channels or scale contradict the task registry, :meth:`TaskSpec.network_mismatch`) or when a
    loaded checkpoint holds NaN/Inf weights.
    """
    net = load_model(model, task)
    opts: dict[str, Any] = {}
    name = task if task is not None else (net.task if isinstance(net, TaskModule) else network_task(net))
    if name is not None and not isinstance(net, TaskModule):
        check_network(net, name, source=model if isinstance(model, (str, os.PathLike)) else None)
    if name is not None and get_task(name).z_factor is not None:
        opts["factor"] = z_factor
    tm = build_task_module(net, task, chunk=chunk, **opts)
    if z_factor is not None and isinstance(tm, IsotropicStack):
        tm.factor = int(z_factor)
    return tm.eval()


def check_network(net: nn.Module, task: str | TaskSpec | None, source: Any = None) -> None:
    """Raise ``ValueError`` if ``net`` cannot serve ``task`` (not checked when ``None``) or, when
    ``source`` (the file it was loaded from) is given, if it holds NaN/Inf weights."""
    spec = get_task(task) if task is not None else None
    problem = spec.network_mismatch(input_channels(net), upscale(net)) if spec is not None else None
    where = f"the model {source}" if source is not None else "the network"
    if problem and spec is not None:
        raise ValueError(f"{where} cannot serve task {spec.name!r}: {problem}; use a {spec.name} checkpoint "
                         "(or the task it was trained for)")
    if source is not None:
        with torch.no_grad():
            bad = [k for k, v in net.state_dict().items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
        if bad:
            shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
            raise ValueError(
                f"{where} holds NaN/Inf weights ({len(bad)} tensor(s): {shown}); it is damaged or was saved "
                "from a diverged training run. Use another checkpoint (e.g. the run's best.pt) or retrain"
            )


def _scripted(tm: TaskModule) -> torch.jit.ScriptModule:
    """TorchScript version of ``tm`` (cached; re-scripted when its device or z factor changed)."""
    p = next(iter(tm.parameters()), None)
    key = (str(p.device) if p is not None else "cpu", tm.factor if isinstance(tm, IsotropicStack) else None, tm.chunk)
    hit = _SCRIPTED.get(tm)
    if hit is None or hit[0] != key:
        hit = (key, torch.jit.script(tm))
        _SCRIPTED[tm] = hit
    return hit[1]


# ------------------------------------------------------------------------------------------
# input checks
# ------------------------------------------------------------------------------------------


def check_axes(shape: Sequence[int], axes: Optional[str], task: str | TaskSpec) -> tuple[int, ...]:
    """The shape, in the task's input axes, of an image of ``shape`` with ``axes``.

    ``axes=None`` means the task's own axes. Extra axes must be singletons (they are dropped).
    Raises ``ValueError`` naming the problem: axes that do not describe the shape, a task axis
    the image lacks, or an extra axis with more than one entry.
    """
    spec = get_task(task)
    want = spec.input_axes
    shape = tuple(int(s) for s in shape)
    if axes is None:
        if len(shape) != len(want):
            raise ValueError(
                f"task {spec.name!r} expects a {len(want)}-D image with axes {want!r} "
                f"({'a z-stack' if 'Z' in want else 'a single 2-D image'}), got a {len(shape)}-D array of "
                f"shape {shape}; pass axes=... if the array has extra singleton axes"
            )
        return shape
    axes = axes.upper()
    if len(axes) != len(shape) or len(set(axes)) != len(axes):
        raise ValueError(f"axes {axes!r} do not describe an array of shape {shape}")
    missing = [a for a in want if a not in axes]
    if missing:
        raise ValueError(
            f"task {spec.name!r} needs axes {want!r}; the image axes {axes!r} (shape {shape}) lack "
            f"{''.join(missing)!r}"
        )
    extra = [(a, s) for a, s in zip(axes, shape) if a not in want]
    bad = [f"{a}={s}" for a, s in extra if s != 1]
    if bad:
        raise ValueError(
            f"task {spec.name!r} expects single {want} images (one channel); axes {', '.join(bad)} "
            f"have more than one entry (split the image first)"
        )
    return tuple(shape[axes.index(a)] for a in want)


def _to_task_axes(arr: np.ndarray, axes: Optional[str], spec: TaskSpec) -> np.ndarray:
    check_axes(arr.shape, axes, spec)
    if axes is None:
        return arr
    axes = axes.upper()
    want = spec.input_axes
    keep = [axes.index(a) for a in want]
    drop = tuple(i for i, a in enumerate(axes) if a not in want)
    return np.transpose(np.squeeze(arr, axis=drop) if drop else arr, [sorted(keep).index(k) for k in keep])


def check_input(shape: Sequence[int], task: str | TaskSpec) -> None:
    """Raise ``ValueError`` if an image of ``shape`` (task input axes) cannot be processed."""
    spec = get_task(task)
    shape = tuple(int(s) for s in shape)
    if len(shape) != len(spec.input_axes):
        raise ValueError(
            f"task {spec.name!r} expects a {len(spec.input_axes)}-D image with axes {spec.input_axes!r}, "
            f"got shape {shape}"
        )
    yx = shape[-2:]
    if spec.in_depth is not None and shape[0] != spec.in_depth:
        raise ValueError(
            f"task {spec.name!r} needs a stack of exactly {spec.in_depth} z-slices, got {shape[0]} "
            f"(shape {shape}); {'pad or resample the stack' if shape[0] < spec.in_depth else 'crop the stack'}"
        )
    if spec.lenslets:
        n = spec.lenslets
        if yx[0] % n or yx[1] % n:
            raise ValueError(
                f"task {spec.name!r}: the light-field image's y/x sizes {yx} must be multiples of {n} "
                f"(pixels per lenslet); crop it to {tuple(s - s % n for s in yx)}"
            )
        if min(yx) < MIN_SIDE * n:
            raise ValueError(
                f"task {spec.name!r}: the light-field image {yx} is too small; need at least "
                f"{MIN_SIDE * n} x {MIN_SIDE * n} pixels ({MIN_SIDE} lenslets per side)"
            )
    elif min(yx) < MIN_SIDE:
        raise ValueError(f"image y/x size {yx} is too small for task {spec.name!r}; need at least {MIN_SIDE} pixels")
    if spec.min_depth is not None and shape[0] < spec.min_depth:
        raise ValueError(f"task {spec.name!r} needs at least {spec.min_depth} z-slices, got {shape[0]}")


# ------------------------------------------------------------------------------------------
# tiles, halo, memory
# ------------------------------------------------------------------------------------------


def halo_for(tm: TaskModule) -> Optional[tuple[int, int]]:
    """Receptive-field radius ``(ry, rx)`` of ``tm``'s local stage (measured once, cached)."""

    def local(m: TaskModule, x: Tensor) -> Tensor:
        return m.local_stage(x)

    return receptive_field(
        tm, local, in_channels=tm.local_in_channels, scale=tm.scale, align=tm.align, part=f"local:{tm.task}"
    )


def border_halo(tm: TaskModule) -> dict[str, int]:
    """Input pixels per axis by which :func:`predict` mirror-pads an image: the halo the exported
    bundle declares (:func:`unifmir.predict.borders.input_halo`, from the measured receptive field)."""
    spec = get_task(tm.task)
    rf = halo_for(tm)
    h = yx_halo(None if rf is None else max(rf), tm.align, spec.lenslets)
    return input_halo(spec, h, window=tm.align,
                      z_factor=tm.factor if isinstance(tm, IsotropicStack) else None,
                      z_halo=tm.context // 2 if isinstance(tm, DenoiseStack) else None)


def _swin_dims(tm: TaskModule) -> tuple[int, int, int, int]:
    """(embed_dim, heads, window, num_feat) of the first Swin body found (fallbacks for others)."""
    from unifmir.model.swin import WindowAttention

    E, heads, ws, F = 0, 1, 8, 32
    for m in tm.modules():
        if isinstance(m, WindowAttention):
            E, heads, ws = int(m.dim), int(m.num_heads), int(m.window_size)
            break
    if E == 0:
        for m in tm.modules():
            if isinstance(m, nn.Conv2d):
                E = max(E, int(m.out_channels))
            elif isinstance(m, nn.Linear):
                E = max(E, int(m.out_features))
    last = _tail_conv(tm.net)
    return E, heads, ws, int(last.in_channels) if last is not None else F


def _tail_conv(net: nn.Module) -> Optional[nn.Conv2d]:
    """The last convolution (``conv_last``) of a SwinIR or volumetric network; None for the others."""
    return net.conv_last if isinstance(net, (SwinIRNet, VolumetricNet)) else None


def bytes_per_pixel(tm: TaskModule) -> float:
    """Estimated peak bytes per local-stage input pixel for one image (see the module doc)."""
    E, heads, ws, F = _swin_dims(tm)
    s = tm.scale
    last = _tail_conv(tm.net)
    c_out = int(last.out_channels) if last is not None else 1
    return 4.0 * (tm.local_in_channels + 20 * E + 2 * heads * ws * ws + s * s * (4 * F + c_out))


def available_memory(device: torch.device | str) -> int:
    """Free memory in bytes: ``MemAvailable`` (CPU) or ``torch.cuda.mem_get_info`` (CUDA)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 * 1024**3  # unknown platform: assume 4 GiB


def plan_tiles(
    tm: TaskModule,
    shape: Sequence[int],
    n_images: int = 1,
    *,
    tile: Optional[int] = None,
    overlap: Optional[int] = None,
    device: torch.device | str = "cpu",
    batch_size: Optional[int] = None,
    memory: Optional[int] = None,
) -> tuple[TileSpec, int]:
    """Choose the :class:`TileSpec` and batch size for local-stage inputs of ``shape`` (h, w).

    ``overlap`` (halo, input pixels per side) defaults to the measured receptive field; both
    halo and ``tile`` are rounded up to the window multiple. ``tile`` defaults to the largest
    side that fits half of the free ``memory`` (:func:`available_memory`) under the per-pixel
    model of :func:`bytes_per_pixel`; an image that fits is one tile (whole-image prediction).
    """
    h, w = int(shape[0]), int(shape[1])
    a = tm.align
    budget = (memory if memory is not None else available_memory(device)) // 2
    bpp = bytes_per_pixel(tm)
    if tile is not None and int(tile) < 1:
        raise ValueError(f"tile must be >= 1, got {tile}")
    whole = (tile is not None and round_up(int(tile), a) >= max(h, w)) or (
        tile is None and h * w * bpp * (batch_size or 1) <= budget
    )
    if whole:  # one tile: the halo is irrelevant, skip the receptive-field probe
        spec = TileSpec(tile=(max(h, w), max(h, w)), halo=(0, 0), blend=BLEND, align=a)
    else:
        if overlap is None:
            rf = halo_for(tm)
            if rf is None:  # non-local network: only whole-image prediction is exact
                rf = (32, 32)
            halo = (round_up(rf[0], a), round_up(rf[1], a))
        else:
            if overlap < 0:
                raise ValueError(f"overlap must be >= 0, got {overlap}")
            halo = (round_up(int(overlap), a), round_up(int(overlap), a))
        min_tile = 2 * max(halo) + BLEND + a
        if tile is None:
            side = int(math.sqrt(budget / (bpp * (batch_size or 1))))
            t = max(round_down(side, a), min_tile)
        else:
            t = round_up(int(tile), a)
            if t < min_tile:
                raise ValueError(
                    f"tile {tile} is too small for an overlap/halo of {max(halo)} pixels: use --tile >= "
                    f"{min_tile} or a smaller --overlap"
                )
        spec = TileSpec(tile=(t, t), halo=halo, blend=BLEND, align=a)
    if batch_size is None:
        per = bpp * min(spec.tile[0], h) * min(spec.tile[1], w)
        batch_size = int(max(1, min(n_images, 16, budget // max(per, 1))))
    return spec, int(batch_size)


# ------------------------------------------------------------------------------------------
# output helpers
# ------------------------------------------------------------------------------------------


def output_pixel_size(
    pixel_size: dict[str, float] | None,
    task: str | TaskSpec,
    *,
    scale: Optional[int] = None,
    z_factor: Optional[int] = None,
    z_spacing: Optional[float] = None,
) -> dict[str, float]:
    """Physical pixel sizes of the output: SR y/x divided by the scale, isotropic z divided by the
    z factor, projection without z, volumetric z = ``z_spacing`` when given."""
    spec = get_task(task)
    ps = {k.upper(): float(v) for k, v in (pixel_size or {}).items()}
    s = scale if scale is not None else spec.scale
    out: dict[str, float] = {}
    for ax in ("Y", "X"):
        if ax in ps:
            out[ax] = ps[ax] / s if spec.input_axes == spec.output_axes == "YX" else ps[ax]
    if "Z" in spec.output_axes:
        if z_spacing is not None:  # given by the user (volumetric: the only source)
            out["Z"] = float(z_spacing)
        elif "Z" in ps and spec.out_depth is None:
            f = (z_factor or spec.z_factor) if spec.z_factor is not None else 1
            out["Z"] = ps["Z"] / float(f or 1)
    return out


def cast_output(y: np.ndarray, dtype: Any = None, *, rescale: bool = False) -> np.ndarray:
    """Cast ``y`` to ``dtype`` (default float32). Integer dtypes are clipped to their range and
    rounded; ``rescale=True`` first maps ``[min, max]`` of ``y`` linearly onto the dtype's range."""
    if dtype is None:
        return y.astype(np.float32, copy=False)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return y.astype(dt, copy=False)
    if dt.kind not in "iub":
        raise ValueError(f"cannot write the output as {dt}")
    info = np.iinfo(dt) if dt.kind in "iu" else None
    lo, hi = (0, 1) if info is None else (info.min, info.max)
    yy = y.astype(np.float64)
    if rescale:
        mn, mx = float(yy.min()), float(yy.max())
        yy = (yy - mn) / (mx - mn if mx > mn else 1.0) * (hi - lo) + lo
    return np.clip(np.rint(yy), lo, hi).astype(dt)


# ------------------------------------------------------------------------------------------
# predict
# ------------------------------------------------------------------------------------------


def predict(
    model: Any,
    image: Any,
    task: Optional[str] = None,
    axes: Optional[str] = None,
    tile: Optional[int] = None,
    overlap: Optional[int] = None,
    device: str | torch.device = "cpu",
    backend: str = "eager",
    normalize: bool = True,
    batch_size: Optional[int] = None,
    *,
    z_factor: Optional[int] = None,
    progress: bool | Callable[[int], object] = False,
    output_units: str = "input",
    precision: str = "fp32",
    padding: str = "symmetric",
) -> np.ndarray:
    """Restore one image with a UniFMIR network; returns a float32 array in the task's output axes.

    Args:
        model: a single-task network or :class:`~unifmir.predict.modules.TaskModule`, a
            multi-task module (with ``task``), or a path to our or an official checkpoint or to a
            bioimage.io bundle written by ``unifmir export`` (``.zip``, folder or ``rdf.yaml``).
        image: numpy array / tensor in the task's input axes (``YX`` or ``ZYX``), or ``axes``.
        task: task name; default ``model.task``.
        axes: axes of ``image`` (may contain extra singleton axes); default the task's.
        tile: tile side in network-input pixels (rounded up to the window multiple); default from
            free memory (the whole image when it fits).
        overlap: halo per tile side (input pixels); default the measured receptive field, which
            makes tiled == whole-image prediction. Smaller values trade exactness for speed.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` ...
        backend: ``"eager"`` or ``"torchscript"`` (same results within 1e-5).
        normalize: normalise as in training (and, with ``output_units="input"``, de-normalise
            the output with the input's statistics); False feeds ``image`` unchanged and returns
            the raw network output.
        batch_size: 2-D images per network call (denoise slices, isotropic XZ/YZ slices).
        z_factor: isotropic axial factor (default the task's, 4).
        progress: True for a tqdm bar over tiles, or a callable receiving step counts.
        output_units: ``"input"`` (default): the output is de-normalised with the input's
            statistics, i.e. in the input's intensity range. ``"normalized"``: the network output
            as is, in the units of the normalised input -- what the exported bioimage.io bundle
            (deepImageJ, bioimageio.core) returns for the same image, since the bundle's
            ``scale_range`` applies the same per-image percentile normalisation
            (linear-interpolated percentiles over the whole image, eps 1e-6) and no
            post-processing. With ``normalize=False`` both give the raw network output.
        precision: ``"fp32"`` (default, unchanged results), ``"bf16"`` (autocast; CPUs with
            AMX or AVX-512-BF16, CUDA), ``"fp16"`` (CUDA) or ``"auto"`` (bf16 where supported,
            logged); see :mod:`unifmir.predict.precision`. Reduced precision needs ``backend="eager"``.
        padding: ``"symmetric"`` (default): the image is mirror-padded by the bundle's halo before
            normalisation and the padding is cut off the result -- exactly what bioimageio.core
            does when it runs the exported bundle, so both give the same numbers up to the image
            border (see :mod:`unifmir.predict.borders`). ``"none"``: the network's own borders.

    Raises:
        ValueError: the image does not suit the task (dimensions, z-slices, light-field size).
    """
    if backend not in ("eager", "torchscript"):
        raise ValueError(f"backend must be 'eager' or 'torchscript', got {backend!r}")
    if output_units not in OUTPUT_UNITS:
        raise ValueError(f"output_units must be one of {', '.join(map(repr, OUTPUT_UNITS))}, got {output_units!r}")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available; use device='cpu'")
    prec, why = resolve_precision(precision, dev)
    if prec != "fp32" and backend != "eager":
        raise ValueError(f"precision {precision!r} ({prec}) runs with backend='eager' only; use precision='fp32' "
                         "with the TorchScript backend")
    if precision == "auto":
        logging.getLogger(__name__).info("precision auto -> %s", why)
    tm = prepare_module(model, task, z_factor=z_factor)
    spec = get_task(tm.task)
    if task is not None and other_task(spec, get_task(task)):
        raise ValueError(f"the model serves task {spec.name!r}, not {task!r}")
    if hasattr(image, "detach"):
        image = image.detach().cpu().numpy()
    arr = np.asarray(image)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"image has non-numeric dtype {arr.dtype}")
    arr = _to_task_axes(arr, axes, spec)
    check_input(arr.shape, spec)
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError("image contains NaN or infinite values; replace them before prediction")
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {', '.join(PADDINGS)}, got {padding!r}")
    in_shape = dict(zip(spec.input_axes.lower(), arr.shape))
    pads: dict[str, int] = {}
    if padding == "symmetric":
        arr, pads = pad_symmetric(arr, spec.input_axes, border_halo(tm))
    if normalize:
        xn, stats = normalize_input(arr.astype(np.float32, copy=False), spec)
    else:
        xn, stats = arr.astype(np.float32, copy=False), None
    x = torch.from_numpy(np.ascontiguousarray(xn, dtype=np.float32))[None, None]
    tm = tm.to(dev)
    run: Any = _scripted(tm) if backend == "torchscript" else tm
    bar = None
    with torch.no_grad(), autocast(prec, dev):
        vs = run.views(x)
        gs = []
        for v in vs:
            gs.append(run.global_stage(v.to(dev)).to("cpu", torch.float32) if _has_global(tm) else v)
        steps = 0
        plans = []
        for g in gs:
            ts, bs = plan_tiles(
                tm, g.shape[-2:], g.shape[0], tile=tile, overlap=overlap, device=dev, batch_size=batch_size
            )
            plans.append((ts, bs))
            steps += num_tiles(g.shape[-2:], ts) * -(-g.shape[0] // bs)
        cb: Optional[Callable[[int], object]] = None
        if progress is True:
            from tqdm.auto import tqdm

            bar = tqdm(total=steps, desc=f"{spec.name} tiles", unit="tile", leave=False)
            cb = bar.update
        elif callable(progress):
            cb = progress
        try:
            ys = [
                tiled_apply(run.local_stage, g, ts, scale=tm.scale, batch_size=bs, device=dev, progress=cb)
                for g, (ts, bs) in zip(gs, plans)
            ]
        finally:
            if bar is not None:
                bar.close()
        y = run.finish(ys, x)[0, 0]
    out = y.float().numpy()
    if any(pads.values()):
        out = crop_borders(out, spec.output_axes, in_shape, pads)
    if stats is not None and output_units == "input":
        out = denormalize_output(out, stats)
    return np.ascontiguousarray(out, dtype=np.float32)


def _has_global(tm: TaskModule) -> bool:
    return type(tm).global_stage is not TaskModule.global_stage
