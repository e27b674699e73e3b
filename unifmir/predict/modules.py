"""Whole-image task modules: a single-task network wrapped to work in the user's axes.

Each module takes a batch of single-channel images in the task's ``input_axes`` with a leading
batch and channel axis (``(b, 1, [z,] y, x)``) and returns the restored image in the task's
``output_axes`` (``(b, 1, [z,] y, x)``). They are used by :func:`unifmir.predict` (eager or
TorchScript) and by the bioimage.io export, so all of them:

* ``torch.jit.script`` and trace for any input size, and use only ops that exist in
  torch/libtorch 2.0 (no ``F.interpolate``: the z interpolation is an index gather);
* do **not** normalise intensities (bioimage.io does that in its preprocessing; ``predict`` calls
  :func:`normalize_input` / :func:`denormalize_output` around them).

Every module is written as four steps, which is what makes exact tiling possible:

``views(x) -> List[Tensor]``
    cheap rearrangement into one or more batches of 2-D network inputs ``(n, C, h, w)``
    (5-slice windows, XZ/YZ slices, light-field views, ...);
``global_stage(t)``
    the part of the network that is *not* local (projection: the ENLCN head with global
    attention; volumetric: the UNetA, whose resampling depends on the image size) or identity;
``local_stage(t)``
    the local, window-aligned part (the SwinIR networks); this is what
    :func:`unifmir.predict.tiling.tiled_apply` tiles; output is ``scale`` x the input in y/x;
``finish(ys, x)``
    merge/rearrange back into the output axes and crop to the exact output size.

``forward`` composes them for the whole image (the local stage runs in chunks of ``chunk``
images along the batch of 2-D inputs; when traced, in one call, so that a traced module works for
any number of slices). Which class serves a task is data: :data:`TASK_MODULES`.

The classes take every task fact they use as an explicit constructor argument (scale, context
slices, z factor, depth, lenslets) and import nothing from the rest of the package: they are
copied verbatim into the architecture file of exported bundles, whose rdf kwargs are exactly
these arguments. :func:`task_module_kwargs` reads the facts from the :class:`TaskSpec`.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple, Type

import torch
from torch import Tensor, nn

from unifmir.model.network import input_channels, network_task, upscale
from unifmir.model.swin import pad_to_multiple
from unifmir.tasks import TASKS, TaskSpec, get_task, other_task

__all__ = [
    "TaskModule",
    "SuperRes2D",
    "DenoiseStack",
    "IsotropicStack",
    "Projection2D",
    "Volumetric3D",
    "MODULE_CLASSES",
    "TASK_MODULES",
    "TASK_FACTS",
    "build_task_module",
    "task_module_kwargs",
    "z_upsample_linear",
    "context_indices",
    "lightfield_views",
    "normalize_input",
    "denormalize_output",
]


def context_indices(depth: int, context: int, device: torch.device) -> Tensor:
    """``(depth, context)`` slice indices of the windows centred on each slice, edges repeated."""
    half = context // 2
    z = torch.arange(depth, device=device).unsqueeze(1)
    off = torch.arange(context, device=device).unsqueeze(0) - half
    return torch.clamp(z + off, 0, depth - 1)


def z_upsample_linear(x: Tensor, factor: int) -> Tensor:
    """Linear interpolation along dim 2 of ``(b, c, z, y, x)`` to ``z * factor`` slices.

    Input slice ``i`` sits at output slice ``i * factor`` (the subsampling grid used to make
    isotropic training pairs); the last ``factor - 1`` output slices repeat the last input slice.
    Implemented as an index gather (TorchScript/libtorch-2.0 safe, no ``F.interpolate``).
    """
    z = x.shape[2]
    n = z * factor
    pos = torch.arange(n, device=x.device, dtype=torch.float64) / float(factor)
    i0 = torch.clamp(torch.floor(pos).to(torch.long), 0, z - 1)
    i1 = torch.clamp(i0 + 1, 0, z - 1)
    w = torch.clamp(pos - i0.to(torch.float64), 0.0, 1.0)
    w = torch.where(i1 == i0, torch.zeros_like(w), w).to(x.dtype).view(1, 1, n, 1, 1)
    return x.index_select(2, i0) * (1.0 - w) + x.index_select(2, i1) * w


def lightfield_views(x: Tensor, n: int) -> Tensor:
    """``(b, 1, Y, X)`` light-field image (``n x n`` pixels per lenslet) -> ``(b, n*n, Y/n, X/n)``.

    View ``u * n + v`` holds pixel ``(u, v)`` of every lenslet: ``views[:, u*n+v] = x[:, 0, u::n, v::n]``.
    """
    b, Y, X = x.shape[0], x.shape[2], x.shape[3]
    h, w = Y // n, X // n
    return x.reshape(b, h, n, w, n).permute(0, 2, 4, 1, 3).reshape(b, n * n, h, w)


class TaskModule(nn.Module):
    """Base class: ``forward(x) = finish([local(global(v)) for v in views(x)], x)``.

    Attributes:
        task: task name (a ``TASKS`` key).
        scale: y/x scale of :meth:`local_stage` (output / input).
        align: tile starts must be multiples of this (the Swin window size).
        local_in_channels: channels of the local stage's input (for receptive-field probes).
        chunk: 2-D images per local-stage call in :meth:`forward`.
    """

    def __init__(self, net: nn.Module, task: str, chunk: int = 8) -> None:
        super().__init__()
        self.net = net
        self.task = task
        self.scale = 1
        self.align = int(getattr(net, "window_size", 8))
        self.local_in_channels = 1
        self.chunk = int(chunk)

    @torch.jit.export
    def views(self, x: Tensor) -> List[Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError("views")

    @torch.jit.export
    def global_stage(self, t: Tensor) -> Tensor:
        return t

    @torch.jit.export
    def local_stage(self, t: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError("local_stage")

    @torch.jit.export
    def finish(self, ys: List[Tensor], x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError("finish")

    def forward(self, x: Tensor) -> Tensor:
        vs = self.views(x)
        ys: List[Tensor] = []
        for v in vs:
            g = self.global_stage(v)
            if torch.jit.is_tracing() or self.chunk < 1:
                # a traced loop would bake in the number of chunks: one call on the whole batch
                ys.append(self.local_stage(g))
            else:
                parts: List[Tensor] = []
                for s in range(0, g.shape[0], self.chunk):
                    parts.append(self.local_stage(g[s : s + self.chunk]))
                ys.append(torch.cat(parts, 0))
        return self.finish(ys, x)


class SuperRes2D(TaskModule):
    """``(b, 1, y, x)`` -> ``(b, 1, y*s, x*s)`` with a SwinIR network of upscale ``s = scale``.

    Also serves the single-slice (2D) denoise variant with ``scale=1``.
    """

    def __init__(self, net: nn.Module, task: str = "sr", chunk: int = 8, *, scale: int) -> None:
        super().__init__(net, task, chunk)
        self.scale = int(scale)
        if self.scale != int(getattr(net, "upscale", self.scale)):
            raise ValueError(f"SuperRes2D: scale {self.scale} differs from the network's upscale {net.upscale}")
        self.local_in_channels = int(getattr(net, "in_chans", 1))

    @torch.jit.export
    def views(self, x: Tensor) -> List[Tensor]:
        if x.dim() != 4:
            raise ValueError("SuperRes2D expects a (batch, 1, y, x) tensor")
        return [x]

    @torch.jit.export
    def local_stage(self, t: Tensor) -> Tensor:
        h, w = t.shape[2], t.shape[3]
        return self.net(t)[:, :, : h * self.scale, : w * self.scale]

    @torch.jit.export
    def finish(self, ys: List[Tensor], x: Tensor) -> Tensor:
        return ys[0]


class DenoiseStack(TaskModule):
    """``(b, 1, z, y, x)`` -> same shape: each slice restored from a ``context``-slice window.

    The window (``context`` = the network's input channels, 5 for the reference model) is centred
    on the slice; slices beyond the stack's ends repeat the edge slice. Slices are batched.
    """

    def __init__(self, net: nn.Module, task: str = "denoise", chunk: int = 8, *, context: int) -> None:
        super().__init__(net, task, chunk)
        self.context = int(context)
        if self.context != int(getattr(net, "in_chans", self.context)):
            raise ValueError(f"DenoiseStack: context {self.context} differs from the network's in_chans {net.in_chans}")
        self.local_in_channels = self.context

    @torch.jit.export
    def views(self, x: Tensor) -> List[Tensor]:
        if x.dim() != 5:
            raise ValueError("DenoiseStack expects a (batch, 1, z, y, x) tensor")
        b, z, h, w = x.shape[0], x.shape[2], x.shape[3], x.shape[4]
        idx = context_indices(z, self.context, x.device)  # (z, k)
        v = x[:, 0].index_select(1, idx.reshape(-1))  # (b, z*k, y, x)
        return [v.reshape(b * z, self.context, h, w)]

    @torch.jit.export
    def local_stage(self, t: Tensor) -> Tensor:
        h, w = t.shape[2], t.shape[3]
        return self.net(t)[:, :, :h, :w]

    @torch.jit.export
    def finish(self, ys: List[Tensor], x: Tensor) -> Tensor:
        b, z, h, w = x.shape[0], x.shape[2], x.shape[3], x.shape[4]
        return ys[0].reshape(b, z, 1, h, w).transpose(1, 2)


class IsotropicStack(TaskModule):
    """``(b, 1, z, y, x)`` axially undersampled -> ``(b, 1, z*f, y, x)`` isotropic.

    The stack is linearly interpolated along z by ``factor`` (:func:`z_upsample_linear`), the
    network restores every XZ slice (rows = z, columns = x) and every YZ slice (rows = z,
    columns = y), and the two volumes are merged by the geometric mean
    ``sqrt(max(a, 0) * max(b, 0))`` (reference).
    """

    def __init__(self, net: nn.Module, task: str = "isotropic", chunk: int = 8, *, factor: int) -> None:
        super().__init__(net, task, chunk)
        self.factor = int(factor)
        if self.factor < 1:
            raise ValueError(f"isotropic z factor must be >= 1, got {self.factor}")
        self.local_in_channels = 1

    @torch.jit.export
    def views(self, x: Tensor) -> List[Tensor]:
        if x.dim() != 5:
            raise ValueError("IsotropicStack expects a (batch, 1, z, y, x) tensor")
        up = z_upsample_linear(x, self.factor)[:, 0]  # (b, Z, Y, X)
        b, Z, Y, X = up.shape[0], up.shape[1], up.shape[2], up.shape[3]
        xz = up.permute(0, 2, 1, 3).reshape(b * Y, 1, Z, X)
        yz = up.permute(0, 3, 1, 2).reshape(b * X, 1, Z, Y)
        return [xz, yz]

    @torch.jit.export
    def local_stage(self, t: Tensor) -> Tensor:
        h, w = t.shape[2], t.shape[3]
        return self.net(t)[:, :, :h, :w]

    @torch.jit.export
    def finish(self, ys: List[Tensor], x: Tensor) -> Tensor:
        b, Y, X = x.shape[0], x.shape[3], x.shape[4]
        Z = x.shape[2] * self.factor
        a = ys[0].reshape(b, Y, Z, X).permute(0, 2, 1, 3)
        c = ys[1].reshape(b, X, Z, Y).permute(0, 2, 3, 1)
        return torch.sqrt(torch.clamp(a, min=0.0) * torch.clamp(c, min=0.0)).unsqueeze(1)


class Projection2D(TaskModule):
    """``(b, 1, 50, y, x)`` stack -> ``(b, 1, y, x)`` surface projection (``ProjectionNet``).

    Global stage: the ENLCN head (global attention) on the whole image, reflect-padded to the
    window multiple for the UniModel variant. Local stage: the SwinIR refinement
    ``denoise(x2d) + x2d``, cropped to its input size.
    """

    def __init__(self, net: nn.Module, task: str = "projection", chunk: int = 8, *, depth: int) -> None:
        super().__init__(net, task, chunk)
        for attr in ("project", "denoise"):
            if not hasattr(net, attr):
                raise TypeError(
                    f"Projection2D needs a ProjectionNet with .project and .denoise, got {type(net).__name__}"
                )
        self.depth = int(depth)
        self.pad_stage1 = bool(getattr(net, "unimodel", False))
        self.local_in_channels = 1

    @torch.jit.export
    def views(self, x: Tensor) -> List[Tensor]:
        if x.dim() != 5:
            raise ValueError("Projection2D expects a (batch, 1, z, y, x) tensor")
        if x.shape[2] != self.depth:
            raise ValueError("Projection2D: the stack must have exactly " + str(self.depth) + " z-slices")
        return [x[:, 0]]

    @torch.jit.export
    def global_stage(self, t: Tensor) -> Tensor:
        x2d = self.net.project(t)
        if self.pad_stage1:
            x2d = pad_to_multiple(x2d, self.align)
        return x2d

    @torch.jit.export
    def local_stage(self, t: Tensor) -> Tensor:
        h, w = t.shape[2], t.shape[3]
        return self.net.denoise(t)[:, :, :h, :w] + t

    @torch.jit.export
    def finish(self, ys: List[Tensor], x: Tensor) -> Tensor:
        return ys[0][:, :, : x.shape[3], : x.shape[4]]


class Volumetric3D(TaskModule):
    """``(b, 1, Y, X)`` light-field image -> ``(b, 1, 61, Y, X)`` volume (``VolumetricNet``).

    ``Y`` and ``X`` must be multiples of the lenslet size ``n`` (11). The image is rearranged into
    ``n*n`` views of ``Y/n x X/n`` (:func:`lightfield_views`). Global stage: the UNetA (its
    bilinear resizing depends on the image size, so it always sees the whole view stack; reflect
    padding of the views to the window multiple as in the reference). Local stage: the SwinIR
    body and tail at light-field resolution. The output is cropped to ``Y x X``.
    """

    def __init__(self, net: nn.Module, task: str = "volumetric", chunk: int = 8, *, lenslets: int) -> None:
        super().__init__(net, task, chunk)
        for attr in ("conv_first0", "conv_first", "forward_features", "conv_after_body", "conv_last", "out_chans"):
            if not hasattr(net, attr):
                raise TypeError(f"Volumetric3D needs a VolumetricNet (missing .{attr}), got {type(net).__name__}")
        self.lenslets = int(lenslets)
        self.local_in_channels = int(net.out_chans)

    @torch.jit.export
    def views(self, x: Tensor) -> List[Tensor]:
        if x.dim() != 4:
            raise ValueError("Volumetric3D expects a (batch, 1, y, x) light-field tensor")
        n = self.lenslets
        if x.shape[2] % n != 0 or x.shape[3] % n != 0:
            raise ValueError("Volumetric3D: light-field y and x must be multiples of the lenslet size (" + str(n) + ")")
        return [lightfield_views(x, n)]

    @torch.jit.export
    def global_stage(self, t: Tensor) -> Tensor:
        return self.net.conv_first0(pad_to_multiple(t, self.align))

    @torch.jit.export
    def local_stage(self, t: Tensor) -> Tensor:
        h, w = t.shape[2], t.shape[3]
        f = self.net.conv_first(pad_to_multiple(t, self.align))
        y = self.net.conv_after_body(self.net.forward_features(f))
        y = self.net.conv_last(self.net.conv_before_upsample(y))
        return y[:, :, :h, :w]

    @torch.jit.export
    def finish(self, ys: List[Tensor], x: Tensor) -> Tensor:
        return ys[0][:, :, : x.shape[2], : x.shape[3]].unsqueeze(1)


MODULE_CLASSES: Dict[str, Type[TaskModule]] = {
    c.__name__: c for c in (SuperRes2D, DenoiseStack, IsotropicStack, Projection2D, Volumetric3D)
}
"""Whole-image module classes by name (what ``TaskSpec.task_module`` / ``task_module_2d`` name)."""

TASK_MODULES: Dict[str, Type[TaskModule]] = {name: MODULE_CLASSES[spec.task_module] for name, spec in TASKS.items()}
"""Task name -> whole-image module class (``TaskSpec.task_module``; one entry per ``TASKS`` key)."""

def _known(value: Optional[int], default: int) -> int:
    return int(value) if value is not None else int(default)


TASK_FACTS: Dict[Type[TaskModule], Callable[[nn.Module, TaskSpec], Dict[str, int]]] = {
    SuperRes2D: lambda net, spec: {"scale": _known(upscale(net), spec.scale)},
    DenoiseStack: lambda net, spec: {"context": _known(input_channels(net), spec.context_slices)},
    IsotropicStack: lambda net, spec: {"factor": int(spec.z_factor or 1)},
    Projection2D: lambda net, spec: {"depth": int(spec.in_depth or spec.net_in_channels)},
    Volumetric3D: lambda net, spec: {"lenslets": int(spec.lenslets or 1)},
}
"""Task-module class -> the task facts its constructor takes, read from the network (its own
upscale / input channels where it has them: ``ModelConfig`` may override the task's) and the
:class:`TaskSpec`."""


def task_module_kwargs(
    cls: Type[TaskModule], net: nn.Module, task: str | TaskSpec, *, chunk: int = 8, **options: Any
) -> Dict[str, Any]:
    """Constructor keywords (all but ``net``) of task module ``cls`` wrapping ``net`` for ``task``.

    ``options`` (not None) override the facts, e.g. ``factor`` for the isotropic task. The result
    is plain ints/strings: the export writes it into the bundle's rdf.
    """
    spec = get_task(task)
    facts = TASK_FACTS[cls](net, spec)
    facts.update({k: v for k, v in options.items() if v is not None})
    return {"task": spec.name, "chunk": int(chunk), **facts}


def build_task_module(
    net: nn.Module, task: Optional[str | TaskSpec] = None, *, chunk: int = 8, **options: Any
) -> TaskModule:
    """Wrap a single-task network into its task module (eval mode).

    ``task`` defaults to ``net.task``. The module's task facts come from the :class:`TaskSpec`
    (:func:`task_module_kwargs`); ``options`` override them (isotropic: ``factor``).
    A :class:`TaskModule` is returned unchanged.
    """
    if isinstance(net, TaskModule):
        return net
    net_task = network_task(net)
    name = get_task(task).name if task is not None else net_task
    if name is None:
        raise ValueError(
            "the network does not say which task it serves (net.task is None); pass task=... "
            f"(one of {', '.join(TASK_MODULES)})"
        )
    name = get_task(name).name
    if other_task(net_task, name):
        raise ValueError(f"the network was built for task {net_task!r} but task {name!r} was requested")
    cls = TASK_MODULES[name]
    return cls(net, **task_module_kwargs(cls, net, name, chunk=chunk, **options)).eval()


def normalize_input(x: Any, task: str | TaskSpec) -> Tuple[Any, Any]:
    """Normalise a user image as in training (:func:`unifmir.data.normalize.normalize_for_task`).

    Returns ``(normalised float32 image, stats)``; undo with :func:`denormalize_output`.
    """
    from unifmir.data.normalize import normalize_for_task

    return normalize_for_task(x, task)


def denormalize_output(y: Any, stats: Any) -> Any:
    """Map a network output back to the input's intensity range (inverse of the input's normalisation)."""
    from unifmir.data.normalize import denormalize

    return denormalize(y, stats)
