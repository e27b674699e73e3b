"""Key layouts of the official checkpoints, as data, and recognising which one a state_dict has.

``unimodel`` is the multi-task pretraining layout; ``swinir``, ``swinirProj_stage2`` and
``swinir2dto3d`` are the released single-task ones (:data:`RELEASED_LAYOUTS`). :func:`key_mapping`
says, per task, how released key prefixes correspond to UniModel prefixes (README of the
fixtures, section 6); :func:`detect_variant` names the layout of a state_dict from its keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from torch import Tensor

from unifmir.tasks import TASKS, TaskSpec, get_task

from .errors import CheckpointError

__all__ = [
    "OFFICIAL_VARIANTS",
    "RELEASED_LAYOUTS",
    "SR_UPSAMPLER",
    "ReleasedLayout",
    "detect_variant",
    "family",
    "key_mapping",
    "released_variant_name",
    "tasks_of_family",
]

OFFICIAL_VARIANTS: tuple[str, ...] = ("unimodel", "swinir", "swinirProj_stage2", "swinir2dto3d")
"""The official key layouts :func:`detect_variant` recognises."""

_BODY_PREFIXES: tuple[str, ...] = ("patch_embed.", "layers.", "norm.", "conv_after_body.")
"""SwinIR body: identical names in UniModel and in the released swinir (under its body prefix)."""

_TAIL_TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    # TaskSpec.tail -> (released prefix, UniModel prefix), in released key order
    "upsample": (
        ("conv_before_upsample.", "conv_before_upsample0."),
        ("upsample.", "upsamplesr."),
        ("conv_last.", "conv_last0."),
    ),
    "shared": (
        ("conv_before_upsample.", "conv_before_upsample0."),
        ("conv_last.", "conv_last0."),
    ),
    "volumetric": (
        ("conv_before_upsample.", "conv_before_upsamplev."),
        ("conv_last.", "conv_lastv."),
    ),
}


@dataclass(frozen=True)
class ReleasedLayout:
    """Where the parts of a released single-task network live in its state_dict."""

    stage1: str | None
    """Prefix of the stage-1 network (same name in UniModel), ``None`` for one-stage models."""
    body: str
    """Prefix of the SwinIR part (``denoise.`` in swinirProj_stage2)."""
    signature: tuple[str, ...]
    """Keys whose presence identifies the layout."""


RELEASED_LAYOUTS: dict[str, ReleasedLayout] = {
    "swinir": ReleasedLayout(
        None, "", ("conv_first.weight", "patch_embed.norm.weight", "conv_after_body.weight", "conv_last.weight")
    ),
    "swinirProj_stage2": ReleasedLayout(
        "project.",
        "denoise.",
        ("project.head.0.weight", "denoise.conv_first.weight", "denoise.conv_after_body.weight", "denoise.conv_last.weight"),
    ),
    "swinir2dto3d": ReleasedLayout(
        "conv_first0.",
        "",
        ("conv_first0.conv2d.weight", "conv_first.weight", "conv_after_body.weight", "conv_last.weight"),
    ),
}

_UNIMODEL_SIGNATURE: tuple[str, ...] = (
    "patch_embed.norm.weight",
    "conv_after_body.weight",
    "conv_before_upsample0.0.weight",
    "conv_last0.weight",
)

# Detection order matters: swinir2dto3d's signature contains swinir's.
_SIGNATURES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("unimodel", _UNIMODEL_SIGNATURE),
    ("swinirProj_stage2", RELEASED_LAYOUTS["swinirProj_stage2"].signature),
    ("swinir2dto3d", RELEASED_LAYOUTS["swinir2dto3d"].signature),
    ("swinir", RELEASED_LAYOUTS["swinir"].signature),
)

_VARIANT_FAMILY: dict[str, str] = {
    # TaskSpec.released_variant -> layout family
    "swinir_x2_in1": "swinir",
    "swinir_x1_in1": "swinir",
    "swinir_x1_in5": "swinir",
    "swinirProj_stage2": "swinirProj_stage2",
    "swinir2dto3d": "swinir2dto3d",
}

SR_UPSAMPLER: str = dict(_TAIL_TABLES["upsample"])["upsample."]
"""UniModel prefix of the SR upsampler (``upsamplesr.``); absent when the SR scale is 1."""


def family(spec: TaskSpec) -> str:
    """Layout family (``swinir``, ``swinirProj_stage2``, ``swinir2dto3d``) of a task's released network."""
    return _VARIANT_FAMILY[spec.released_variant]


def tasks_of_family(name: str) -> list[str]:
    """The registry tasks whose released network has layout family ``name``."""
    return [task for task, spec in TASKS.items() if family(spec) == name]


def key_mapping(task: str | TaskSpec) -> tuple[tuple[str, str], ...]:
    """Prefix table ``((released_prefix, unimodel_prefix), ...)`` for one task, in released key order.

    A released key ``released_prefix + rest`` holds the tensor of UniModel key
    ``unimodel_prefix + rest``. Built from the task registry (head name, tail family, released
    variant) and the tables above; equals the manifest column ``mapped_from_unimodel_key``.
    """
    spec = get_task(task)
    layout = RELEASED_LAYOUTS[family(spec)]
    table: list[tuple[str, str]] = []
    if layout.stage1 is not None:
        table.append((layout.stage1, layout.stage1))
    table.append((layout.body + "conv_first.", spec.head + "."))
    table.extend((layout.body + p, p) for p in _BODY_PREFIXES)
    table.extend((layout.body + s, m) for s, m in _TAIL_TABLES[spec.tail])
    return tuple(table)


def released_variant_name(task: str | TaskSpec, in_chans: int | None = None, upscale: int | None = None) -> str:
    """Manifest name of the released layout for ``task`` (``swinir_x{upscale}_in{in_chans}`` for swinir)."""
    spec = get_task(task)
    name = family(spec)
    if name != "swinir":
        return name
    return f"swinir_x{upscale or spec.scale}_in{in_chans or spec.net_in_channels}"


def detect_variant(state_dict: Mapping[str, Tensor]) -> str:
    """Name the official layout of ``state_dict`` (one of :data:`OFFICIAL_VARIANTS`).

    Raises :class:`CheckpointError` for a foreign state_dict (e.g. a ResNet) or one that only
    partly looks like a UniFMIR checkpoint.
    """
    keys = set(state_dict)
    for variant, signature in _SIGNATURES:
        if all(k in keys for k in signature):
            return variant
    score, variant, signature = max((sum(k in keys for k in sig) / len(sig), v, sig) for v, sig in _SIGNATURES)
    sample = ", ".join(list(state_dict)[:6]) or "(empty)"
    if score > 0 and any(k.startswith(("layers.", "denoise.layers.")) for k in keys):
        lacking = [k for k in signature if k not in keys]
        raise CheckpointError(
            f"the state_dict looks like a UniFMIR {variant!r} checkpoint but lacks {', '.join(lacking)}; "
            "it is incomplete or was saved from a modified network"
        )
    raise CheckpointError(
        f"not a UniFMIR checkpoint: none of the official key layouts ({', '.join(OFFICIAL_VARIANTS)}) matches "
        f"({len(state_dict)} keys, starting with {sample}). load_official reads the multi-task UniModel "
        "checkpoint and the released single-task files of github.com/cxm12/UNiFMIR (release 2023.10.05); "
        "use load_checkpoint for files written by unifmir"
    )
