"""The five UniFMIR restoration tasks, described once, as data.

Every other module (model construction, data sampling, training losses, prediction and export)
reads these records instead of re-encoding task knowledge in ``if task == ...`` chains.

Facts follow the reference implementation (github.com/cxm12/UNiFMIR, branches ``pretrain`` and
``main``) and Ma et al., "Pretraining a foundation model for generalizable fluorescence
microscopy-based image restoration", Nature Methods 2024.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

__all__ = ["LossPhase", "TaskSpec", "TASKS", "TASK_NAMES", "get_task", "other_task"]


@dataclass(frozen=True)
class LossPhase:
    """One phase of a (possibly staged) L1 loss recipe.

    ``weights`` maps an output name (``"stage1"`` or ``"final"``) to its weight in the sum of
    L1 losses. ``until_epoch`` is the reference's epoch at which the phase ends (``None`` = to the
    end). Training code maps epochs onto its own schedule (e.g. a ``warmup_steps`` setting).
    """

    weights: Mapping[str, float]
    until_epoch: int | None = None


@dataclass(frozen=True)
class TaskSpec:
    """Everything the package knows about one restoration task.

    Axes strings use the OME/bioimage.io letters (``Z``, ``Y``, ``X``); ``C`` never appears in the
    user-facing axes because every task works on single-channel images. The *network* sees
    ``net_in_channels`` channels: neighbouring z-slices (denoise), the whole 50-slice stack
    (projection) or the 11x11 light-field views (volumetric) are stacked as channels.
    """

    name: str
    """Short identifier used on the command line and in files (``sr``, ``denoise``...)."""
    index: int
    """Task index of the reference multi-task ``UniModel.forward(x, task)`` (1..5)."""
    title: str
    description: str
    input_axes: str
    """Axes of one user image given to ``predict`` (``YX`` or ``ZYX``)."""
    output_axes: str
    """Axes of the restored image."""
    net_in_channels: int
    """Channels of the tensor that enters the network head."""
    net_out_channels: int
    """Channels of the tensor that leaves the network tail."""
    scale: int
    """Spatial (y/x) upscaling factor of the network output relative to its input."""
    head: str
    """UniModel key prefix of the task head (``conv_firstsr`` ...)."""
    tail: str
    """Tail family: ``upsample`` (SR: conv + PixelShuffle), ``shared`` (conv_before_upsample0 +
    conv_last0) or ``volumetric`` (conv_before_upsamplev + conv_lastv)."""
    released_variant: str
    """Name of the released single-task class/format (see the key manifest)."""
    stages: tuple[str, ...] = ("final",)
    """Names of the network outputs; two-stage tasks return ``("stage1", "final")``."""
    patch_size: int = 64
    """Default training patch size (input y/x pixels, reference recipe)."""
    batch_size: int = 8
    loss: tuple[LossPhase, ...] = (LossPhase({"final": 1.0}),)
    normalization: str = "percentile"
    """``percentile`` (CSBDeep style) or ``vcd`` (``x / (1.1*max/2) - 1``)."""
    percentiles: tuple[float, float] = (2.0, 99.8)
    in_depth: int | None = None
    """Fixed number of z-slices of the input (projection: 50)."""
    out_depth: int | None = None
    """Fixed number of z-slices of the output (volumetric: 61)."""
    context_slices: int = 1
    """Neighbouring z-slices fed as channels (denoise: 5, centre slice restored, edges repeated)."""
    lenslets: int | None = None
    """Light-field lenslet grid side (volumetric: 11 -> 121 views)."""
    z_factor: int | None = None
    """Default axial subsampling factor the isotropic task undoes."""
    classical_baseline: str = ""
    """Name of the classical method results are compared with."""
    bioimage_tag: str = ""
    """bioimage.io tag of the task (``super-resolution``, ``denoising``, ...)."""
    task_module: str = ""
    """Class in :mod:`unifmir.predict.modules` that runs the network on a whole user image."""
    task_module_2d: str | None = None
    """Class in :mod:`unifmir.predict.modules` for the task's 2D variant: a single-slice network of a
    context task run as a plain 2-D image model (the released 1-slice Planaria denoiser);
    ``None``: the task has no 2D variant."""
    min_depth: int | None = None
    """Fewest z-slices a user stack may have (isotropic: 2, to interpolate between)."""
    redraws_attention: bool = False
    """The network has ENLA random-feature attention (projection's ENLCN head) whose projection
    matrices training redraws every ``TrainConfig.enla_redraw_interval`` calls."""
    multi_task_fields: Mapping[str, object] = field(default_factory=dict)
    """``ModelConfig`` fields of this task's single-task network when its weights come from the
    multi-task model (projection: UniModel's task-4 path, ``projection_variant="unimodel"``)."""
    tiled_tolerance: float | None = None
    """Block-artifact tolerance (fraction of the output range) of tiled against whole-image
    prediction when the network is not local (``None``: the export's default): projection's
    ENLCN head attends globally and volumetric's UNetA resamples with the image size."""
    output_text: str = ""
    """Documentation phrase for the output of an exported model; ``{same_size}`` (``a stack`` or
    ``an image``), ``{z_up}`` (z upsampling) and ``{z_out}`` (output slices) are filled in from the
    bundle's tensor layout."""
    transfer_experiment: bool = False
    """The transfer experiment (:mod:`unifmir.training.experiment`, DeepBacs data) is offered."""
    extra: Mapping[str, object] = field(default_factory=dict)

    @property
    def two_stage(self) -> bool:
        """Whether the network returns ``(stage1, final)``."""
        return len(self.stages) == 2

    def is_2d_variant(self, in_chans: int | None) -> bool:
        """Whether a network taking ``in_chans`` input channels is this task's 2D variant."""
        return self.task_module_2d is not None and in_chans == 1

    def network_mismatch(self, in_chans: int | None, scale: int | None, *, strict: bool = False) -> str | None:
        """Why a network with ``in_chans`` input channels and y/x ``scale`` cannot serve this task.

        ``None`` when it can. A same-size task (``scale == 1``) needs a scale-1 network; a task
        that stacks neighbouring slices as channels (``context_slices > 1``) takes the window from
        the network (any odd channel count); every other task feeds exactly ``net_in_channels``.
        ``strict`` (released checkpoints) also requires the registry's own scale, and for a
        context task a window of the registry's size or a single slice. Unknown values (``None``)
        are not checked.
        """
        problems = []
        if scale is not None:
            if self.scale == 1 and scale != 1:
                problems.append(f"it enlarges images {scale}x, but {self.name} keeps the input's size")
            elif strict and scale != self.scale:
                problems.append(f"it scales images {scale}x, but {self.name} needs {self.scale}x")
        if in_chans is not None:
            if self.context_slices > 1:
                allowed = {1, self.context_slices} if strict else None
                if (allowed is not None and in_chans not in allowed) or in_chans < 1 or in_chans % 2 == 0:
                    want = " or ".join(map(str, sorted(allowed))) if allowed else "an odd number of"
                    problems.append(f"it takes {in_chans} input channels, but {self.name} feeds {want} "
                                    "neighbouring slices")
            elif in_chans != self.net_in_channels:
                problems.append(f"it takes {in_chans} input channel(s), but {self.name} feeds {self.net_in_channels}")
        return "; ".join(problems) or None


TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in (
        TaskSpec(
            name="sr",
            task_module="SuperRes2D",
            output_text="a 2x larger image (b, c, 2y, 2x)",
            transfer_experiment=True,
            bioimage_tag="super-resolution",
            index=1,
            title="2x super-resolution",
            description="Widefield/diffraction-limited 2D image to a 2x super-resolved image "
            "(BioSR-like: CCPs, ER, F-actin, microtubules).",
            input_axes="YX",
            output_axes="YX",
            net_in_channels=1,
            net_out_channels=1,
            scale=2,
            head="conv_firstsr",
            tail="upsample",
            released_variant="swinir_x2_in1",
            patch_size=128,
            batch_size=1,
            # not the reference's min-max (per patch): one hot pixel would set the scale of the
            # whole image (measured: 9-13 dB lost on real images with 0.05 % hot pixels)
            percentiles=(2.0, 99.8),
            classical_baseline="bicubic upsampling",
        ),
        TaskSpec(
            name="denoise",
            task_module="DenoiseStack",
            task_module_2d="SuperRes2D",
            output_text="{same_size} of the same size",
            transfer_experiment=True,
            bioimage_tag="denoising",
            index=2,
            title="3D denoising",
            description="Low-photon 3D stack to a high-SNR stack; each slice is restored from "
            "itself and its 4 neighbours (5 slices as channels, edges repeated).",
            input_axes="ZYX",
            output_axes="ZYX",
            net_in_channels=5,
            net_out_channels=1,
            scale=1,
            head="conv_firstdT",
            tail="shared",
            released_variant="swinir_x1_in5",
            patch_size=64,
            batch_size=32,
            context_slices=5,
            percentiles=(2.0, 99.8),
            classical_baseline="noisy input / Gaussian filter",
        ),
        TaskSpec(
            name="isotropic",
            task_module="IsotropicStack",
            min_depth=2,
            output_text="an isotropic stack with {z_up}x more z-slices",
            bioimage_tag="isotropic-reconstruction",
            index=3,
            title="isotropic reconstruction",
            description="Axially undersampled, anisotropically blurred stack to an isotropic "
            "stack; the network runs on XZ and YZ slices, merged by a geometric mean.",
            input_axes="ZYX",
            output_axes="ZYX",
            net_in_channels=1,
            net_out_channels=1,
            scale=1,
            head="conv_firstiso",
            tail="shared",
            released_variant="swinir_x1_in1",
            patch_size=128,
            batch_size=32,
            z_factor=4,
            percentiles=(2.0, 99.8),
            classical_baseline="linear z interpolation",
        ),
        TaskSpec(
            name="projection",
            task_module="Projection2D",
            redraws_attention=True,
            multi_task_fields={"projection_variant": "unimodel"},
            tiled_tolerance=0.05,
            output_text="a 2D image (b, c, y, x) of the surface",
            bioimage_tag="surface-projection",
            index=4,
            title="surface projection",
            description="50-slice stack of a curved epithelium to the 2D image of its surface "
            "(ENLCN projection head, then SwinIR refinement).",
            input_axes="ZYX",
            output_axes="YX",
            net_in_channels=50,
            net_out_channels=1,
            scale=1,
            head="conv_firstproj",
            tail="shared",
            released_variant="swinirProj_stage2",
            stages=("stage1", "final"),
            patch_size=64,
            batch_size=4,
            in_depth=50,
            loss=(
                LossPhase({"stage1": 0.001, "final": 1.0}, until_epoch=30),
                LossPhase({"final": 1.0}),
            ),
            percentiles=(2.0, 99.8),
            classical_baseline="maximum-intensity projection",
        ),
        TaskSpec(
            name="volumetric",
            task_module="Volumetric3D",
            tiled_tolerance=0.25,
            output_text="a {z_out}-slice volume (b, c, z, y, x) of the same y/x size",
            bioimage_tag="light-field-microscopy",
            index=5,
            title="volumetric reconstruction",
            description="Light-field image (11x11 lenslets) to a 61-slice volume (UNetA stage, "
            "then a SwinIR body with its own tail).",
            input_axes="YX",
            output_axes="ZYX",
            net_in_channels=121,
            net_out_channels=61,
            scale=11,
            head="conv_firstv",
            tail="volumetric",
            released_variant="swinir2dto3d",
            stages=("stage1", "final"),
            patch_size=176,
            batch_size=4,
            out_depth=61,
            lenslets=11,
            loss=(
                LossPhase({"stage1": 1.0}, until_epoch=30),
                LossPhase({"stage1": 0.1, "final": 1.0}),
            ),
            normalization="vcd",
            classical_baseline="back-projection",
        ),
    )
}

TASK_NAMES: tuple[str, ...] = tuple(TASKS)


def get_task(name: str | TaskSpec) -> TaskSpec:
    """Return the :class:`TaskSpec` called ``name`` (accepts a spec and returns it unchanged).

    Raises ``ValueError`` naming the valid choices for an unknown name.
    """
    if isinstance(name, TaskSpec):
        return name
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(
            f"unknown task {name!r}; choose one of {', '.join(TASK_NAMES)}"
        ) from None


def other_task(have: str | TaskSpec | None, want: str | TaskSpec | None) -> bool:
    """Whether ``have`` and ``want`` are both known (not ``None``) and name different tasks.

    The one comparison of task names the package makes: the task a loaded network, bundle or
    dataset records against the task a caller asked for.
    """
    if have is None or want is None:
        return False
    names = [t.name if isinstance(t, TaskSpec) else t for t in (have, want)]
    return names[0] != names[1]
