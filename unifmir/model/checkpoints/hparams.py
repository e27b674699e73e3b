"""Every size hyper-parameter of an official state_dict, read back from its tensor shapes and key counts.

:func:`infer_hparams` gives the :class:`~unifmir.model.config.ModelConfig` field values the weights
determine; :func:`infer_config` turns them into ``(task, ModelConfig)``, choosing the task of a
released ``swinir`` checkpoint from its upscale factor and input channels (see the package
docstring for the ``x1 in1`` ambiguity).
"""

from __future__ import annotations

import collections
import math
import re
from typing import Any, Mapping

from torch import Tensor

from unifmir.model.config import ModelConfig
from unifmir.tasks import TASKS, get_task

from .errors import CheckpointError
from .layouts import RELEASED_LAYOUTS, SR_UPSAMPLER, detect_variant, tasks_of_family
from .payload import strip_prefixes

__all__ = [
    "check_fit",
    "choose_task",
    "config_from_fields",
    "infer_config",
    "infer_hparams",
    "normalised_fields",
]

# ModelConfig fields a state_dict determines; everything else keeps its default / stored value.
_INFERRED_FIELDS: tuple[str, ...] = (
    "img_size", "embed_dim", "depths", "num_heads", "window_size", "mlp_ratio", "qkv_bias",
    "num_feat", "enlcn_feats", "enlcn_resblocks", "in_chans", "upscale", "projection_variant",
)


def _need(sd: Mapping[str, Tensor], key: str, purpose: str) -> tuple[int, ...]:
    if key not in sd:
        raise CheckpointError(f"cannot infer {purpose}: the checkpoint has no key {key!r}")
    return tuple(sd[key].shape)


def _infer_swin(sd: Mapping[str, Tensor], p: str) -> dict[str, Any]:
    """SwinIR body sizes from the keys under prefix ``p``."""
    embed_dim = _need(sd, p + "patch_embed.norm.weight", "embed_dim")[0]
    pat = re.compile(re.escape(p) + r"layers\.(\d+)\.residual_group\.blocks\.(\d+)\.")
    blocks: dict[int, set[int]] = collections.defaultdict(set)
    for key in sd:
        m = pat.match(key)
        if m:
            blocks[int(m.group(1))].add(int(m.group(2)))
    if not blocks:
        raise CheckpointError(f"cannot infer depths: no {p}layers.<i>.residual_group.blocks.<j>.* keys")
    if sorted(blocks) != list(range(len(blocks))):
        missing = sorted(set(range(max(blocks) + 1)) - set(blocks))
        raise CheckpointError(f"the checkpoint lacks every key of RSTB {p}layers.{missing[0]} (has {sorted(blocks)})")
    depths: list[int] = []
    heads: list[int] = []
    windows: set[int] = set()
    for i in range(len(blocks)):
        # lenient on gaps: the strict load afterwards lists whatever is missing
        depths.append(max(blocks[i]) + 1)
        first = min(blocks[i])
        table = _need(sd, f"{p}layers.{i}.residual_group.blocks.{first}.attn.relative_position_bias_table", "num_heads")
        heads.append(table[1])
        side = math.isqrt(table[0])
        if side * side != table[0] or side % 2 == 0:
            raise CheckpointError(
                f"relative_position_bias_table of {p}layers.{i} has {table[0]} rows, not (2*window-1)**2"
            )
        windows.add((side + 1) // 2)
    if len(windows) != 1:
        raise CheckpointError(f"the RSTBs use different window sizes {sorted(windows)}; not supported")
    window = windows.pop()
    fc1 = [v for k, v in sd.items() if k.startswith(p + "layers.") and k.endswith(".mlp.fc1.weight")]
    if not fc1:
        raise CheckpointError(f"cannot infer mlp_ratio: the checkpoint has no {p}layers.*.mlp.fc1.weight keys")
    hidden = fc1[0].shape[0]
    masks = [tuple(v.shape) for k, v in sd.items() if k.startswith(p + "layers.") and k.endswith(".attn_mask")]
    if masks:
        n_windows = masks[0][0]
        per_side = math.isqrt(n_windows)
        if per_side * per_side != n_windows:
            raise CheckpointError(f"attn_mask buffers hold {n_windows} windows, not a square number")
        img_size: int | None = per_side * window
    elif max(depths) > 1:
        img_size = window  # the reference disables the shift when img_size <= window_size
    else:
        img_size = None  # not determined by the weights; keep the default
    out: dict[str, Any] = {
        "embed_dim": embed_dim,
        "depths": tuple(depths),
        "num_heads": tuple(heads),
        "window_size": window,
        "mlp_ratio": hidden / embed_dim,
        "qkv_bias": any(k.startswith(p + "layers.") and k.endswith(".attn.qkv.bias") for k in sd),
    }
    if img_size is not None:
        out["img_size"] = img_size
    return out


def _infer_upscale(sd: Mapping[str, Tensor], prefix: str, num_feat: int) -> int:
    """Upscale factor of a SwinIR ``Upsample`` (conv + PixelShuffle stages) stored under ``prefix``."""
    convs = sorted(
        (int(m.group(1)), tuple(v.shape))
        for k, v in sd.items()
        if (m := re.fullmatch(re.escape(prefix) + r"(\d+)\.weight", k))
    )
    if not convs:
        return 1
    factors = []
    for _, shape in convs:
        ratio, rem = divmod(shape[0], num_feat)
        r = math.isqrt(ratio)
        if rem or r * r != ratio or r < 2:
            raise CheckpointError(f"{prefix}* conv has {shape[0]} output channels, not r*r*{num_feat}")
        factors.append(r)
    return math.prod(factors)


def _infer_enlcn(sd: Mapping[str, Tensor], p: str) -> dict[str, Any]:
    """ENLCN projection head width and depth from the keys under ``p`` (``project.``)."""
    head = _need(sd, p + "head.0.weight", "the projection head width")
    idx = {int(m.group(1)) for k in sd if (m := re.match(re.escape(p) + r"body\.(\d+)\.", k))}
    resblocks = {int(m.group(1)) for k in sd if (m := re.fullmatch(re.escape(p) + r"body\.(\d+)\.body\.0\.weight", k))}
    if not idx:
        raise CheckpointError(f"cannot infer the projection head depth: no {p}body.<i>.* keys")
    return {"enlcn_feats": head[0], "enlcn_resblocks": len(resblocks), "_proj_in": head[1]}


def infer_hparams(state_dict: Mapping[str, Tensor], variant: str | None = None) -> dict[str, Any]:
    """Read every size hyper-parameter of an official state_dict back from its shapes and key counts.

    Returns a dict of :class:`~unifmir.model.config.ModelConfig` field values (only the fields the
    weights determine: ``img_size`` comes from the ``attn_mask`` buffers, ``window_size`` and
    ``num_heads`` from the relative-position bias tables, ``depths`` from block counts,
    ``mlp_ratio`` from ``fc1``, ``num_feat`` from ``conv_before_upsample``, ``upscale`` from the
    upsampler, ``enlcn_feats``/``enlcn_resblocks`` from ``project.*``) plus ``in_chans`` (raw,
    not normalised to ``None``) and the private entry ``_variant``.
    """
    variant = variant or detect_variant(state_dict)
    sd = state_dict
    if variant == "unimodel":
        out = _infer_swin(sd, "")
        num_feat = _need(sd, "conv_before_upsample0.0.weight", "num_feat")[0]
        out["num_feat"] = num_feat
        out["upscale"] = _infer_upscale(sd, SR_UPSAMPLER, num_feat)
        if any(k.startswith("project.") for k in sd):
            enlcn = _infer_enlcn(sd, "project.")
            enlcn.pop("_proj_in")
            out.update(enlcn)
        out["in_chans"] = None
    else:
        layout = RELEASED_LAYOUTS[variant]
        p = layout.body
        out = _infer_swin(sd, p)
        if variant == "swinir2dto3d":
            out["in_chans"] = _need(sd, "conv_first0.conv2d.weight", "in_chans")[1]
        else:
            num_feat = _need(sd, p + "conv_before_upsample.0.weight", "num_feat")[0]
            out["num_feat"] = num_feat
            out["upscale"] = _infer_upscale(sd, p + "upsample.", num_feat)
            out["in_chans"] = _need(sd, p + "conv_first.weight", "in_chans")[1]
        if layout.stage1 == "project.":
            enlcn = _infer_enlcn(sd, "project.")
            out["in_chans"] = enlcn.pop("_proj_in")
            out.update(enlcn)
            out["projection_variant"] = "released"
    out["_variant"] = variant
    return out


def choose_task(variant: str, hp: Mapping[str, Any], task: str | None) -> str | None:
    """Task of a checkpoint: ``task`` if given (validated), else chosen from the registry."""
    if variant == "unimodel":
        if task is not None:
            get_task(task)
        return task
    candidates = tasks_of_family(variant)
    if task is not None:
        spec = get_task(task)
        if spec.name not in candidates:
            raise CheckpointError(
                f"a {variant} checkpoint cannot be loaded as task {spec.name!r}; it fits "
                f"{' / '.join(candidates)}"
            )
        return spec.name
    if len(candidates) == 1:
        return candidates[0]
    upscale, in_chans = hp.get("upscale", 1), hp["in_chans"]
    exact = [t for t in candidates if TASKS[t].scale == upscale and TASKS[t].net_in_channels == in_chans]
    if len(exact) == 1:
        return exact[0]
    # no registry task has exactly this input: an upscaling network is SR; a same-size network with
    # several input channels is the multi-slice denoiser; otherwise the first same-size task
    if upscale != 1:
        return next((t for t in candidates if TASKS[t].scale != 1), candidates[0])
    same_size = [t for t in candidates if TASKS[t].scale == 1]
    multi = [t for t in same_size if TASKS[t].net_in_channels > 1]
    return ((multi if in_chans > 1 else []) or same_size or candidates)[0]


def check_fit(variant: str, hp: Mapping[str, Any], task: str) -> None:
    """A released checkpoint loaded for an explicit ``task``: its input channels and scale must be
    the task's (registry facts, :meth:`TaskSpec.network_mismatch`); raise naming the task it fits."""
    candidates = tasks_of_family(variant)
    if len(candidates) < 2:  # a layout of its own (projection, volumetric): the keys decided
        return
    fit = lambda t: TASKS[t].network_mismatch(hp.get("in_chans"), hp.get("upscale", 1), strict=True)  # noqa: E731
    problem = fit(task)
    if problem:
        fits = [t for t in candidates if fit(t) is None]
        raise CheckpointError(
            f"this {variant} checkpoint (x{hp.get('upscale', 1)}, {hp.get('in_chans')} input channel(s)) "
            f"cannot serve task {task!r}: {problem}. "
            + (f"It fits task {' / '.join(fits)}: pass --task {fits[0]}, or use " if fits else "Use ")
            + f"a checkpoint trained for {task}"
        )


def config_from_fields(fields: Mapping[str, Any], base: ModelConfig | None = None) -> ModelConfig:
    """Build a ModelConfig from ``fields`` (over ``base``'s values or the class defaults)."""
    data = base.model_dump(mode="json") if base is not None else {}
    data.update(fields)
    try:
        return ModelConfig.model_validate(data)
    except ValueError as exc:  # pydantic.ValidationError
        raise CheckpointError(f"the checkpoint's sizes do not form a valid model configuration: {exc}") from None


def normalised_fields(hp: Mapping[str, Any], task: str | None) -> dict[str, Any]:
    """Inferred values as ModelConfig fields; in_chans / upscale are None where they equal the task default."""
    fields = {k: v for k, v in hp.items() if not k.startswith("_") and k in _INFERRED_FIELDS}
    fields["depths"] = tuple(fields["depths"])
    fields["num_heads"] = tuple(fields["num_heads"])
    if task is None:  # multi-task: upscale is the SR head's factor
        spec_sr = TASKS["sr"]
        if fields.get("upscale") == spec_sr.scale:
            fields["upscale"] = None
        fields["in_chans"] = None
        return fields
    spec = TASKS[task]
    if fields.get("in_chans") == spec.net_in_channels:
        fields["in_chans"] = None
    if fields.get("upscale", spec.scale) == spec.scale:
        fields["upscale"] = None
    return fields


def infer_config(state_dict: Mapping[str, Tensor], *, task: str | None = None) -> tuple[str | None, ModelConfig]:
    """``(task, ModelConfig)`` that rebuild the network of an official ``state_dict``.

    ``task`` overrides the task chosen from the registry (see the package docstring for the
    ``x1 in1`` ambiguity). For a multi-task checkpoint the returned task is ``None`` unless
    ``task`` is given. ``in_chans`` / ``upscale`` are ``None`` where they equal the task default.
    """
    sd = strip_prefixes(state_dict)
    hp = infer_hparams(sd)
    chosen = choose_task(hp["_variant"], hp, task)
    if hp["_variant"] == "unimodel":
        return chosen, config_from_fields(normalised_fields(hp, None))
    return chosen, config_from_fields(normalised_fields(hp, chosen))
