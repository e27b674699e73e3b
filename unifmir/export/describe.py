"""bioimage.io (spec 0.5) tensor descriptions of the five UniFMIR tasks.

Everything task-specific is read from :mod:`unifmir.tasks`; this module only decides how the
task's user axes become bioimage.io axes and which size rules they follow.

Size rules (the hard part)
--------------------------
Two consumers compute output sizes from the same ``rdf.yaml`` differently:

* bioimageio.core / the 0.5 spec: ``out = ref_size * ref_axis.scale / out_axis.scale + offset``.
* deepImageJ's runtime JDLL (``io.bioimage.modelrunner.tiling.TileMaker.getOutputTiles``,
  bioimage-io/JDLL, read at commits 568aa53 and 160dfb5)::

      imagSize[i] = (long) (inTile.getImageDims()[indIm] * ax.getScale());
      tileSize[i] = (long) (inTile.getTileDims()[indTile] * ax.getScale() + ax.getOffset() * 2);

  where ``ax`` is the *output* axis and ``getScale()`` is the raw ``scale`` field of the 0.5
  axis (``AxisV05``: ``this.scale = ((Number) map.get("scale")).doubleValue()``). The input
  axis' scale is ignored and the offset counts twice.

For an upscaling factor ``s`` both agree when ``out_axis.scale = s`` and
``in_axis.scale = s**2`` (0.5: ``n * s**2 / s = s*n``; JDLL: ``n * s = s*n``) and the offset is
0. We use that for the SR y/x axes (input scale 4, output scale 2) and for the isotropic z axis
(input scale ``f**2``, output scale ``f``). The scales are then relative factors, so no physical
``unit`` is declared on those axes (pixel sizes are documented in the README instead).

A fixed-size output axis without a reference (projection drops z, volumetric adds z=61) is handled
by JDLL's branch ``ax.getStep() == 0 && ax.getMin() != 0 && ax.getReferenceTensor() == null``:
it looks the *same axis id* up in the input tile and throws "Model specs too complex for JDLL" if
the input has no such axis. The volumetric input therefore carries a singleton ``z`` axis
(``(b, c, z=1, y, x)``): JDLL then computes ``61 * image_z / tile_z = 61`` and bioimageio.core
sees a fixed z in and a fixed z out (no blocking along z, see the note on dropped parameterised
z axes). The projection output simply omits z (JDLL only iterates the output's axes).

Halos are in output pixels; the 0.5 spec requires ``halo * out.scale / ref.scale`` to be an
integer and ``min_out - 2 * halo >= 1`` (JDLL: ``tile_out - 2 * halo > 0``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from bioimageio.spec.model import v0_5

from unifmir.predict.borders import input_halo, yx_halo
from unifmir.tasks import TaskSpec, get_task

__all__ = [
    "INPUT_ID",
    "OUTPUT_ID",
    "TensorLayout",
    "layout_for",
    "input_descr",
    "output_descr",
    "bioimage_shape",
    "user_to_bioimage",
    "bioimage_to_user",
]

INPUT_ID = v0_5.TensorId("input")
OUTPUT_ID = v0_5.TensorId("output")



@dataclass(frozen=True)
class TensorLayout:
    """How one task's user image maps onto the bioimage.io input and output tensors.

    All sizes are in pixels. ``in_axes``/``out_axes`` list the spatial axes after ``b, c``.
    """

    task: TaskSpec
    in_axes: tuple[str, ...]
    out_axes: tuple[str, ...]
    min_size: Mapping[str, int]
    """Minimum input size per parameterised (or fixed) input axis."""
    step: Mapping[str, int]
    """Step per input axis (0 = fixed size ``min_size``)."""
    up: Mapping[str, int] = field(default_factory=dict)
    """Integer upscaling per output axis that references the same input axis (default 1)."""
    fixed_out: Mapping[str, int] = field(default_factory=dict)
    """Output axes with a fixed size and no reference (volumetric z = 61)."""
    halo: Mapping[str, int] = field(default_factory=dict)
    """Halo per output axis, in output pixels."""
    singleton_in: tuple[str, ...] = ()
    """Input axes that exist only for deepImageJ's size rule (size 1, not in the user image)."""
    user_in_axes: str = ""
    user_out_axes: str = ""

    def out_size(self, axis: str, in_sizes: Mapping[str, int]) -> int:
        """Output size along ``axis`` for an input of ``in_sizes`` (bioimage axes)."""
        if axis in self.fixed_out:
            return self.fixed_out[axis]
        return in_sizes[axis] * self.up.get(axis, 1)

    def valid_sizes(self, axis: str, n: int) -> int:
        """The ``n``-th valid input size along ``axis`` (``min + n*step``)."""
        return self.min_size[axis] + n * self.step[axis]


def _round_up(value: int, step: int) -> int:
    return int(math.ceil(value / step) * step)


def layout_for(
    task: str | TaskSpec,
    *,
    window: int,
    halo: int,
    two_d: bool = False,
    z_factor: int | None = None,
    z_halo: int | None = None,
) -> TensorLayout:
    """Build the :class:`TensorLayout` of ``task``.

    ``window``: the SwinIR attention window (input sizes step by it; the network pads internally,
    the step keeps tiles on the grid the network was trained on). ``halo``: y/x halo in *input*
    pixels (receptive-field estimate); it is declared in output pixels. ``two_d``: the 2D
    single-slice variant of the denoise task. ``z_factor``: isotropic axial factor (default: the
    task's). ``z_halo``: z halo in input slices (default: denoise, half the context window;
    isotropic, the y/x halo divided by the z factor, rounded up to the z step).
    """
    spec = get_task(task)
    if window < 1 or halo < 0:
        raise ValueError(f"window must be >= 1 and halo >= 0, got {window}, {halo}")
    yx_step = window
    if spec.lenslets:
        # light field: sizes and tile starts on the lenslet grid (the network pads the views to the
        # window itself); the halo is rounded to whole lenslets so blocks start on the grid too
        yx_step = spec.lenslets
        halo = yx_halo(halo, 1, spec.lenslets)
    s = spec.scale if spec.tail == "upsample" else 1  # y/x upscaling of the *user* image
    # smallest input tile whose output still has >= 1 valid pixel inside the halo, on the grid
    yx_min = _round_up(2 * halo + 1, yx_step)
    halo_out = halo * s
    # the halo per axis, in input pixels: the same rule unifmir.predict pads by (borders.input_halo)
    halo_in = input_halo(spec, halo, window=window, two_d=two_d, z_factor=z_factor, z_halo=z_halo)
    in_axes: tuple[str, ...]
    out_axes: tuple[str, ...]
    min_size: dict[str, int] = {"y": yx_min, "x": yx_min}
    step: dict[str, int] = {"y": yx_step, "x": yx_step}
    up: dict[str, int] = {"y": s, "x": s}
    fixed_out: dict[str, int] = {}
    halos: dict[str, int] = {"y": halo_out, "x": halo_out}
    singleton: tuple[str, ...] = ()
    user_in = spec.input_axes
    user_out = spec.output_axes
    if two_d and spec.task_module_2d is not None:
        in_axes = out_axes = ("y", "x")
        user_in = user_out = "YX"
    elif spec.input_axes == "ZYX" and spec.output_axes == "ZYX":
        in_axes = out_axes = ("z", "y", "x")
        if spec.z_factor is not None:  # the task upsamples z
            f = int(z_factor or spec.z_factor or 1)
            # block starts along z must land on the window grid of the upsampled stack (input
            # slice i is output row i*f): a z step (and halo) of window/gcd(window, f) slices
            zstep = window // math.gcd(window, f)
            zh = halo_in["z"]
            up["z"] = f
            halos["z"] = zh * f
            min_size["z"] = _round_up(2 * zh + 1, zstep)
            step["z"] = zstep
        else:
            zh = halo_in["z"]
            halos["z"] = zh
            min_size["z"] = 2 * zh + 1
            step["z"] = 1
    elif spec.input_axes == "ZYX" and spec.output_axes == "YX":
        if not spec.in_depth:
            raise ValueError(f"task {spec.name!r} drops z but has no fixed in_depth")
        in_axes, out_axes = ("z", "y", "x"), ("y", "x")
        min_size["z"], step["z"] = spec.in_depth, 0
    elif spec.input_axes == "YX" and spec.output_axes == "ZYX":
        if not spec.out_depth:
            raise ValueError(f"task {spec.name!r} adds z but has no fixed out_depth")
        in_axes, out_axes = ("z", "y", "x"), ("z", "y", "x")
        min_size["z"], step["z"] = 1, 0
        fixed_out["z"] = spec.out_depth
        singleton = ("z",)
    else:
        in_axes = out_axes = ("y", "x")
    return TensorLayout(
        task=spec,
        in_axes=in_axes,
        out_axes=out_axes,
        min_size=min_size,
        step=step,
        up={k: v for k, v in up.items() if k in out_axes},
        fixed_out=fixed_out,
        halo={k: v for k, v in halos.items() if k in out_axes and k not in fixed_out},
        singleton_in=singleton,
        user_in_axes=user_in,
        user_out_axes=user_out,
    )


def _in_axis(layout: TensorLayout, a: str) -> v0_5.SpaceInputAxis:
    mn, st = layout.min_size[a], layout.step[a]
    size: int | v0_5.ParameterizedSize = mn if st == 0 else v0_5.ParameterizedSize(min=mn, step=st)
    f = layout.up.get(a, 1)
    # scale trick for upscaled axes (see module docstring): in = f**2, out = f
    scale = float(f * f) if f > 1 else 1.0
    descr = {
        "z": "z-slices" + (" (singleton axis; required by deepImageJ's size rule)" if a in layout.singleton_in else ""),
        "y": "image rows",
        "x": "image columns",
    }[a]
    return v0_5.SpaceInputAxis(id=v0_5.AxisId(a), size=size, scale=scale, description=descr)


def _out_axis(layout: TensorLayout, a: str) -> v0_5.SpaceOutputAxis | v0_5.SpaceOutputAxisWithHalo:
    if a in layout.fixed_out:
        return v0_5.SpaceOutputAxis(id=v0_5.AxisId(a), size=layout.fixed_out[a], description="reconstructed z-slices")
    f = layout.up.get(a, 1)
    size = v0_5.SizeReference(tensor_id=INPUT_ID, axis_id=v0_5.AxisId(a), offset=0)
    scale = float(f)  # JDLL: out = in * f; 0.5: out = in * f**2 / f
    halo = layout.halo.get(a, 0)
    if halo:
        return v0_5.SpaceOutputAxisWithHalo(id=v0_5.AxisId(a), size=size, scale=scale, halo=halo)
    return v0_5.SpaceOutputAxis(id=v0_5.AxisId(a), size=size, scale=scale)


def input_descr(
    layout: TensorLayout,
    *,
    test_tensor: v0_5.FileDescr,
    sample_tensor: v0_5.FileDescr | None,
    preprocessing: Sequence[v0_5.PreprocessingDescr],
    description: str,
) -> v0_5.InputTensorDescr:
    """The single input tensor (``b, c, [z,] y, x``)."""
    axes: list[v0_5.InputAxis] = [v0_5.BatchAxis(), v0_5.ChannelAxis(channel_names=[v0_5.Identifier("raw")])]
    axes += [_in_axis(layout, a) for a in layout.in_axes]
    return v0_5.InputTensorDescr(
        id=INPUT_ID,
        description=description,
        axes=axes,
        test_tensor=test_tensor,
        sample_tensor=sample_tensor,
        preprocessing=list(preprocessing),
    )


def output_descr(
    layout: TensorLayout,
    *,
    test_tensor: v0_5.FileDescr,
    sample_tensor: v0_5.FileDescr | None,
    postprocessing: Sequence[v0_5.PostprocessingDescr],
    description: str,
) -> v0_5.OutputTensorDescr:
    """The single output tensor (``b, c, [z,] y, x``)."""
    axes: list[v0_5.OutputAxis] = [v0_5.BatchAxis(), v0_5.ChannelAxis(channel_names=[v0_5.Identifier("restored")])]
    axes += [_out_axis(layout, a) for a in layout.out_axes]
    return v0_5.OutputTensorDescr(
        id=OUTPUT_ID,
        description=description,
        axes=axes,
        test_tensor=test_tensor,
        sample_tensor=sample_tensor,
        postprocessing=list(postprocessing),
    )


def bioimage_shape(layout: TensorLayout, user_shape: Sequence[int]) -> tuple[int, ...]:
    """Shape of the bioimage input tensor holding one user image of ``user_shape``."""
    user = dict(zip(layout.user_in_axes.lower(), user_shape))
    return (1, 1) + tuple(1 if a in layout.singleton_in else user[a] for a in layout.in_axes)


def user_to_bioimage(layout: TensorLayout, image: Any) -> Any:
    """Add ``b, c`` (and any singleton axis) to a user-axes numpy image."""
    import numpy as np

    return np.asarray(image, dtype=np.float32).reshape(bioimage_shape(layout, np.shape(image)))


def bioimage_to_user(layout: TensorLayout, array: Any) -> Any:
    """Drop ``b, c`` from a bioimage output array (one sample) -> user output axes."""
    import numpy as np

    arr = np.asarray(array)
    return arr.reshape(arr.shape[2:]) if arr.shape[:2] == (1, 1) else arr[0, 0]
