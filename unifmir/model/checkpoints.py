"""Checkpoint I/O: the official UniFMIR formats, our own format, and conversion between namings.

Official formats (read with :func:`load_official`)
--------------------------------------------------

``unimodel``
    The multi-task pretraining checkpoint (``UniModel`` of the reference ``pretrain`` branch): one
    shared SwinIR body, task heads ``conv_first{sr,dT,iso,proj,v}``, the ENLCN projection head
    ``project.*``, UNetA ``conv_first0.*`` and the tails. Loads into
    :class:`unifmir.model.multitask.UniFMIR` (``.task is None``).
``swinir``
    Released SR / denoise / isotropic checkpoints (``swinir(upscale, in_chans)`` of the ``main``
    branch; files ``swinir_x2_in1``, ``swinir_x1_in1``, ``swinir_x1_in5`` in the key manifest).
``swinirProj_stage2``
    Released projection checkpoint: ENLCN head ``project.*`` + a ``swinir`` refinement under
    ``denoise.*`` (long skip and crop: ``projection_variant="released"``).
``swinir2dto3d``
    Released volumetric checkpoint: UNetA ``conv_first0.*`` + a SwinIR body with a 90->61 tail.

Every one of them may come as a bare ``state_dict`` (what the reference saves), wrapped in
``{'state_dict': ...}`` / ``{'model': ...}`` (and a few other common wrapper keys), with a
DataParallel ``module.`` prefix, or in the compact int8 form of the reference fixtures
(``key_order/plain/q8/q8_exp/alias``; an ``external_keys`` entry names a sibling file that holds
the remaining tensors). The variant is recognised from the key names and *every* size
hyper-parameter is read back from tensor shapes and key counts (:func:`infer_config`), so
checkpoints of any size load without a hand-written configuration. Loading is strict: a mismatch
raises :class:`CheckpointError` listing missing, unexpected and mis-shaped keys.

Task of a released ``swinir`` checkpoint
----------------------------------------
The released files do not say which task they were trained for; the task is chosen from the
upscale factor and the number of input channels, matched against :data:`unifmir.tasks.TASKS`:
``x2 in1 -> sr``, ``x1 in5 -> denoise`` (5 neighbouring slices), ``x1 in1 -> isotropic``.
``x1 in1`` is ambiguous: the released *Planaria denoising* network is also ``x1 in1`` (one slice
in). It defaults to ``isotropic`` because that is the registry task with exactly this input
(the registry's ``denoise`` feeds 5 slices); pass ``task="denoise"`` to load it as a 1-slice
denoiser (its config then records ``in_chans=1``). Any single-body swinir checkpoint can be
loaded as ``sr``, ``denoise`` or ``isotropic`` with ``task=``; the network is the same function.

Our own format (:func:`save_checkpoint` / :func:`load_checkpoint`)
------------------------------------------------------------------
A ``torch.save``'d dict ``{'format': 'unifmir-checkpoint', 'version': 1, 'task', 'config',
'state_dict', 'provenance', 'extra'}`` holding only tensors and JSON-like values, written
atomically and read with ``weights_only=True``. :func:`load_any` accepts either family, and the
bioimage.io bundles ``unifmir export`` writes (:mod:`unifmir.model.bundles`).

Conversion
----------
:func:`key_mapping` describes, per task, how released single-task key prefixes correspond to
UniModel prefixes (README of the fixtures, section 6). :func:`multi_to_single` and
:func:`single_to_multi` apply it; :func:`extract_task` turns a multi-task model into the
single-task network of one task (for projection the UniModel behaviour: no long skip, no crop).
"""

from __future__ import annotations

import collections
import contextlib
import datetime as _dt
import logging
import math
import os
import pickle
import platform
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence, Union

import torch
from torch import Tensor, nn

from unifmir._atomic import atomic_path
from unifmir.model.config import ModelConfig
from unifmir.model.factory import build_model
from unifmir.tasks import TASKS, TaskSpec, get_task

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "OFFICIAL_VARIANTS",
    "CheckpointError",
    "detect_variant",
    "extract_task",
    "infer_config",
    "infer_hparams",
    "key_mapping",
    "load_any",
    "load_checkpoint",
    "load_official",
    "load_state_dict_strict",
    "multi_to_single",
    "read_checkpoint",
    "read_state_dict",
    "released_variant_name",
    "save_checkpoint",
    "single_to_multi",
]

log = logging.getLogger(__name__)

Source = Union[str, os.PathLike, Mapping[str, Any]]

CHECKPOINT_FORMAT = "unifmir-checkpoint"
"""Value of the ``format`` entry of our own checkpoint files."""
CHECKPOINT_VERSION = 1
"""Version of our own checkpoint format written by :func:`save_checkpoint`."""

OFFICIAL_VARIANTS: tuple[str, ...] = ("unimodel", "swinir", "swinirProj_stage2", "swinir2dto3d")
"""The official key layouts :func:`detect_variant` recognises."""

_LIST_LIMIT = 5  # keys shown per category in error messages


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the network (message says why and how to fix)."""


# --------------------------------------------------------------------------------------------
# Key layouts, as data
# --------------------------------------------------------------------------------------------

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
class _ReleasedLayout:
    """Where the parts of a released single-task network live in its state_dict."""

    stage1: str | None
    """Prefix of the stage-1 network (same name in UniModel), ``None`` for one-stage models."""
    body: str
    """Prefix of the SwinIR part (``denoise.`` in swinirProj_stage2)."""
    signature: tuple[str, ...]
    """Keys whose presence identifies the layout."""


_RELEASED_LAYOUTS: dict[str, _ReleasedLayout] = {
    "swinir": _ReleasedLayout(
        None, "", ("conv_first.weight", "patch_embed.norm.weight", "conv_after_body.weight", "conv_last.weight")
    ),
    "swinirProj_stage2": _ReleasedLayout(
        "project.",
        "denoise.",
        ("project.head.0.weight", "denoise.conv_first.weight", "denoise.conv_after_body.weight", "denoise.conv_last.weight"),
    ),
    "swinir2dto3d": _ReleasedLayout(
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
    ("swinirProj_stage2", _RELEASED_LAYOUTS["swinirProj_stage2"].signature),
    ("swinir2dto3d", _RELEASED_LAYOUTS["swinir2dto3d"].signature),
    ("swinir", _RELEASED_LAYOUTS["swinir"].signature),
)

_VARIANT_FAMILY: dict[str, str] = {
    # TaskSpec.released_variant -> layout family
    "swinir_x2_in1": "swinir",
    "swinir_x1_in1": "swinir",
    "swinir_x1_in5": "swinir",
    "swinirProj_stage2": "swinirProj_stage2",
    "swinir2dto3d": "swinir2dto3d",
}

_SR_UPSAMPLER: str = dict(_TAIL_TABLES["upsample"])["upsample."]
"""UniModel prefix of the SR upsampler (``upsamplesr.``); absent when the SR scale is 1."""

_WRAPPER_KEYS: tuple[str, ...] = ("state_dict", "model", "model_state_dict", "net", "network", "params_ema", "params")
_COMPACT_KEYS = frozenset({"key_order", "plain", "q8", "q8_exp", "alias"})
_STRIP_PREFIXES: tuple[str, ...] = ("module.", "_orig_mod.")

# ModelConfig fields a state_dict determines; everything else keeps its default / stored value.
_INFERRED_FIELDS: tuple[str, ...] = (
    "img_size", "embed_dim", "depths", "num_heads", "window_size", "mlp_ratio", "qkv_bias",
    "num_feat", "enlcn_feats", "enlcn_resblocks", "in_chans", "upscale", "projection_variant",
)


def _family(spec: TaskSpec) -> str:
    return _VARIANT_FAMILY[spec.released_variant]


def _tasks_of_family(family: str) -> list[str]:
    return [name for name, spec in TASKS.items() if _family(spec) == family]


def key_mapping(task: str | TaskSpec) -> tuple[tuple[str, str], ...]:
    """Prefix table ``((released_prefix, unimodel_prefix), ...)`` for one task, in released key order.

    A released key ``released_prefix + rest`` holds the tensor of UniModel key
    ``unimodel_prefix + rest``. Built from the task registry (head name, tail family, released
    variant) and the tables above; equals the manifest column ``mapped_from_unimodel_key``.
    """
    spec = get_task(task)
    layout = _RELEASED_LAYOUTS[_family(spec)]
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
    family = _family(spec)
    if family != "swinir":
        return family
    return f"swinir_x{upscale or spec.scale}_in{in_chans or spec.net_in_channels}"


# --------------------------------------------------------------------------------------------
# Reading files and unwrapping payloads
# --------------------------------------------------------------------------------------------


def _describe(path: Path | None) -> str:
    return str(path) if path is not None else "the given object"


def _torch_load(path: Path, map_location: Any) -> Any:
    """``torch.load(weights_only=True)`` with the failure modes turned into clear errors."""
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist; check the path")
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory; give the checkpoint file (.pt/.pth) inside it")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): the download or copy failed; fetch the file again")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except PermissionError:
        raise
    except pickle.UnpicklingError as exc:
        msg = str(exc)
        if "GLOBAL" in msg or "global" in msg:
            found = re.search(r"GLOBAL ([\w.]+)", msg)
            what = f" ({found.group(1)})" if found else ""
            raise CheckpointError(
                f"refusing to load {path}: it contains pickled Python objects or code{what}, not just tensors. "
                "UniFMIR checkpoints are plain tensor dicts and are always read with weights_only=True so that a "
                "file cannot run code on your machine. Only if you trust its source: load it once with "
                "torch.load(path, weights_only=False), torch.save just its state_dict (a dict of tensors) to a new "
                "file and load that file instead."
            ) from None
        raise CheckpointError(
            f"cannot read {path}: it is not a PyTorch checkpoint or it is corrupted ({_first_line(msg)}). "
            "Fetch the file again (official weights: GitHub release 2023.10.05 of cxm12/UNiFMIR)."
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError, IndexError) as exc:
        raise CheckpointError(
            f"cannot read {path}: the file is truncated or corrupted ({type(exc).__name__}: "
            f"{_first_line(str(exc)) or 'unexpected end of file'}). Fetch or copy it again."
        ) from None


def _first_line(msg: str) -> str:
    """The informative line of a torch.load error (its weights-only message buries it in boilerplate)."""
    lines = [ln.strip() for ln in msg.strip().splitlines() if ln.strip()]
    if not lines:
        return ""
    return next((ln for ln in lines if ln.startswith("Unsupported")), lines[0])[:200]


def _is_tensor_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items()
    )


def _is_own(obj: Any) -> bool:
    return isinstance(obj, Mapping) and obj.get("format") == CHECKPOINT_FORMAT


def _is_compact(obj: Any) -> bool:
    return isinstance(obj, Mapping) and _COMPACT_KEYS <= set(obj)


def _strip_prefixes(sd: Mapping[str, Tensor]) -> "collections.OrderedDict[str, Tensor]":
    out: collections.OrderedDict[str, Tensor] = collections.OrderedDict()
    for key, value in sd.items():
        changed = True
        while changed:
            changed = False
            for prefix in _STRIP_PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix):], True
        if key in out:
            raise CheckpointError(f"key {key!r} appears twice after stripping 'module.' prefixes")
        out[key] = value
    return out


def _rebuild_compact(obj: Mapping[str, Any], path: Path | None, map_location: Any) -> "collections.OrderedDict[str, Tensor]":
    """Rebuild the exact state_dict of the reference fixtures' compact form (int8 + 2**e, aliases)."""
    sd: dict[str, Tensor] = dict(obj["plain"])
    sd.update({k: q.float() * 2.0 ** int(obj["q8_exp"][k]) for k, q in obj["q8"].items()})
    sd.update({k: sd[a].clone() for k, a in obj["alias"].items()})
    order = list(obj["key_order"])
    absent = [k for k in order if k not in sd]
    if absent:
        ext = obj.get("external_keys")
        if not isinstance(ext, Mapping) or "file" not in ext:
            raise CheckpointError(
                f"{_describe(path)} lacks {len(absent)} tensors ({', '.join(absent[:3])}, ...) and names no "
                "external file that holds them"
            )
        if path is None:
            raise CheckpointError(
                f"the compact state_dict keeps {len(absent)} tensors in the external file {ext['file']!r}; "
                "pass the checkpoint's path instead of the loaded dict so that the file can be found next to it"
            )
        ext_path = path.parent / str(ext["file"])
        if not ext_path.exists():
            raise CheckpointError(
                f"{path} keeps {len(absent)} tensors (e.g. {absent[0]}) in {ext['file']!r}, which is not next to it "
                f"({ext_path} is missing); copy that file into {path.parent}"
            )
        other = read_state_dict(ext_path, map_location=map_location)
        lacking = [k for k in absent if k not in other]
        if lacking:
            raise CheckpointError(f"{ext_path} does not hold the external tensors {lacking[:_LIST_LIMIT]} of {path}")
        sd.update({k: other[k] for k in absent})
    return collections.OrderedDict((k, sd[k]) for k in order)


def _unwrap(obj: Any, path: Path | None, map_location: Any) -> "collections.OrderedDict[str, Tensor]":
    """Turn any accepted official payload into a plain, prefix-stripped state_dict."""
    for _ in range(4):  # wrappers nest at most a few levels
        if isinstance(obj, nn.Module):
            obj = obj.state_dict()
        if _is_compact(obj):
            return _strip_prefixes(_rebuild_compact(obj, path, map_location))
        if _is_tensor_dict(obj):
            return _strip_prefixes(obj)
        if isinstance(obj, Mapping):
            inner = next((obj[k] for k in _WRAPPER_KEYS if k in obj and isinstance(obj[k], (Mapping, nn.Module))), None)
            if inner is not None:
                obj = inner
                continue
            if obj and all(isinstance(k, str) for k in obj):
                tensors = {k: v for k, v in obj.items() if isinstance(v, Tensor)}
                others = [k for k in obj if k not in tensors]
                if tensors and len(tensors) >= len(others):
                    raise CheckpointError(
                        f"{_describe(path)} looks like a state_dict but {len(others)} entries are not tensors "
                        f"({', '.join(map(repr, others[:_LIST_LIMIT]))}); save model.state_dict() only"
                    )
            keys = ", ".join(map(repr, list(obj)[:8])) if obj else "none"
            raise CheckpointError(
                f"{_describe(path)} holds a dict without a state_dict (keys: {keys}); expected a bare state_dict "
                f"or one wrapped under one of {', '.join(_WRAPPER_KEYS)}"
            )
        break
    raise CheckpointError(
        f"{_describe(path)} holds a {type(obj).__name__}, not a state_dict; expected a dict of tensors "
        "(torch.save(model.state_dict(), path))"
    )


def _load_payload(source: Source, map_location: Any) -> tuple[Any, Path | None]:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        return _torch_load(path, map_location), path
    if isinstance(source, (Mapping, nn.Module)):
        return source, None
    raise TypeError(f"expected a checkpoint path or a state_dict mapping, got {type(source).__name__}")


def read_state_dict(source: Source, *, map_location: Any = "cpu") -> "collections.OrderedDict[str, Tensor]":
    """Read any accepted checkpoint (path or mapping) into a plain state_dict without building a model.

    Unwraps ``{'state_dict': ...}``-style wrappers, rebuilds the fixtures' compact form (resolving
    an ``external_keys`` file next to ``source``), strips ``module.`` prefixes. Our own format
    returns its ``state_dict`` entry.
    """
    obj, path = _load_payload(source, map_location)
    if _is_own(obj):
        return _strip_prefixes(obj["state_dict"])
    return _unwrap(obj, path, map_location)


# --------------------------------------------------------------------------------------------
# Variant detection and hyper-parameter inference
# --------------------------------------------------------------------------------------------


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
        out["upscale"] = _infer_upscale(sd, _SR_UPSAMPLER, num_feat)
        if any(k.startswith("project.") for k in sd):
            enlcn = _infer_enlcn(sd, "project.")
            enlcn.pop("_proj_in")
            out.update(enlcn)
        out["in_chans"] = None
    else:
        layout = _RELEASED_LAYOUTS[variant]
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


def _choose_task(variant: str, hp: Mapping[str, Any], task: str | None) -> str | None:
    """Task of a checkpoint: ``task`` if given (validated), else chosen from the registry."""
    if variant == "unimodel":
        if task is not None:
            get_task(task)
        return task
    candidates = _tasks_of_family(variant)
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


def _check_fit(variant: str, hp: Mapping[str, Any], task: str) -> None:
    """A released checkpoint loaded for an explicit ``task``: its input channels and scale must be
    the task's (registry facts, :meth:`TaskSpec.network_mismatch`); raise naming the task it fits."""
    candidates = _tasks_of_family(variant)
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


def _config_from_fields(fields: Mapping[str, Any], base: ModelConfig | None = None) -> ModelConfig:
    """Build a ModelConfig from ``fields`` (over ``base``'s values or the class defaults)."""
    data = base.model_dump(mode="json") if base is not None else {}
    data.update(fields)
    try:
        return ModelConfig.model_validate(data)
    except ValueError as exc:  # pydantic.ValidationError
        raise CheckpointError(f"the checkpoint's sizes do not form a valid model configuration: {exc}") from None


def _normalised_fields(hp: Mapping[str, Any], task: str | None) -> dict[str, Any]:
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

    ``task`` overrides the task chosen from the registry (see the module docstring for the
    ``x1 in1`` ambiguity). For a multi-task checkpoint the returned task is ``None`` unless
    ``task`` is given. ``in_chans`` / ``upscale`` are ``None`` where they equal the task default.
    """
    sd = _strip_prefixes(state_dict)
    hp = infer_hparams(sd)
    chosen = _choose_task(hp["_variant"], hp, task)
    if hp["_variant"] == "unimodel":
        return chosen, _config_from_fields(_normalised_fields(hp, None))
    return chosen, _config_from_fields(_normalised_fields(hp, chosen))


# --------------------------------------------------------------------------------------------
# Strict loading
# --------------------------------------------------------------------------------------------


def _listing(items: Sequence[str], what: str) -> str:
    shown = ", ".join(items[:_LIST_LIMIT])
    more = f", ... and {len(items) - _LIST_LIMIT} more" if len(items) > _LIST_LIMIT else ""
    noun = what if len(items) == 1 else what + "s"
    return f"  {len(items)} {noun}: {shown}{more}"


def load_state_dict_strict(model: nn.Module, state_dict: Mapping[str, Tensor], *, context: str = "") -> None:
    """Load ``state_dict`` into ``model`` strictly, or raise :class:`CheckpointError` listing the differences.

    Lists missing keys, unexpected keys and keys whose shape differs (checkpoint vs network), the
    first few of each with the counts. Nothing is loaded when anything differs.
    """
    expected = model.state_dict()
    sd = _strip_prefixes(state_dict)
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    misshaped = [
        f"{k} (checkpoint {list(sd[k].shape)} vs network {list(expected[k].shape)})"
        for k in expected
        if k in sd and tuple(sd[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or misshaped:
        lines = [f"checkpoint does not match the network{' ' + context if context else ''}:"]
        if missing:
            lines.append(_listing(missing, "missing key"))
        if unexpected:
            lines.append(_listing(unexpected, "unexpected key"))
        if misshaped:
            lines.append(_listing(misshaped, "mis-shaped key"))
        lines.append(
            "Nothing was loaded. Check that the file is the checkpoint you meant (and task=, if given); "
            "files from a modified network cannot be loaded strictly."
        )
        raise CheckpointError("\n".join(lines))
    model.load_state_dict(sd, strict=True)


def _build(task: str | None, config: ModelConfig) -> nn.Module:
    return build_model(task, config)


def _finish(model: nn.Module, map_location: Any) -> nn.Module:
    if isinstance(map_location, (str, torch.device)) and str(map_location) != "cpu":
        model = model.to(map_location)
    return model.eval()


# --------------------------------------------------------------------------------------------
# Public loading API
# --------------------------------------------------------------------------------------------


def _model_from_official(sd: "collections.OrderedDict[str, Tensor]", task: str | None) -> nn.Module:
    hp = infer_hparams(sd)
    variant = hp["_variant"]
    chosen = _choose_task(variant, hp, task)
    if variant == "unimodel":
        config = _config_from_fields(_normalised_fields(hp, None))
        model = _build(None, config)
        load_state_dict_strict(model, sd, context="(multi-task UniModel layout)")
        if chosen is not None:
            return extract_task(model, chosen)
        return model
    if task is not None and chosen is not None:
        _check_fit(variant, hp, chosen)
    if variant == "swinir" and task is None and hp.get("upscale") == 1 and hp["in_chans"] == 1:
        log.info("swinir x1 in1 checkpoint loaded as task %r (pass task='denoise' for the 1-slice Planaria denoiser)", chosen)
    config = _config_from_fields(_normalised_fields(hp, chosen))
    model = _build(chosen, config)
    load_state_dict_strict(model, sd, context=f"(released {variant} layout, task {chosen!r})")
    return model


@contextlib.contextmanager
def _naming(path: Path | None) -> Iterator[None]:
    """Prefix a :class:`CheckpointError` about the network with the file it came from."""
    try:
        yield
    except CheckpointError as exc:
        if path is None or str(path) in str(exc):
            raise
        raise CheckpointError(f"{path}: {exc}") from None


def load_official(
    source: str | os.PathLike | Mapping[str, Tensor],
    *,
    task: str | None = None,
    map_location: Any = "cpu",
) -> nn.Module:
    """Load an official UniFMIR checkpoint (any format, any size) into an eval-mode module.

    ``source`` is a path or an already loaded object: a bare state_dict, a wrapped one
    (``{'state_dict': ...}``, ``{'model': ...}``...), the fixtures' compact form, or a
    ``module.``-prefixed DataParallel state_dict. The layout (multi-task UniModel,
    ``swinir``, ``swinirProj_stage2``, ``swinir2dto3d``) is recognised from the keys and every size
    hyper-parameter is inferred from the shapes; loading is strict.

    Returns a single-task network (``.task`` = task name; call ``model(x)``) or, for a multi-task
    checkpoint, :class:`~unifmir.model.multitask.UniFMIR` (``.task is None``; call
    ``model(x, task="sr")``). ``task`` picks the task of an ambiguous single-task checkpoint
    (``x1 in1``: ``isotropic`` by default, ``denoise`` for the 1-slice Planaria denoiser) or, for a
    multi-task checkpoint, extracts that task's single-task network (:func:`extract_task`).
    A file in our own format is accepted too (see :func:`load_any`).

    Raises :class:`CheckpointError` for unreadable, foreign, code-carrying or mismatched files.
    """
    obj, path = _load_payload(source, map_location)
    if _is_own(obj):
        return _finish(_model_from_own(obj, path, task), map_location)
    sd = _unwrap(obj, path, map_location)
    with _naming(path):
        return _finish(_model_from_official(sd, task), map_location)


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    *,
    provenance: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``model`` in our own format, atomically; return the path.

    The file holds ``{'format': 'unifmir-checkpoint', 'version': 1, 'task', 'config'
    (``ModelConfig.model_dump(mode='json')``), 'state_dict' (CPU tensors), 'provenance',
    'extra'}``. ``provenance`` entries (e.g. ``source``, ``training_run``, ``parent_checkpoint``)
    are merged over the automatic ones (unifmir/torch/python versions, UTC date). ``extra`` must
    hold only tensors and JSON-like values (it is read back with ``weights_only=True``).
    Raises ``FileExistsError`` if ``path`` exists and ``overwrite`` is false.
    """
    import unifmir

    net = _unwrap_module(model)
    config = getattr(net, "config", None)
    if not isinstance(config, ModelConfig) or not hasattr(net, "task"):
        raise TypeError(
            f"save_checkpoint needs a unifmir network with .task and .config, got {type(model).__name__}; "
            "build it with unifmir.build_model or load it with load_official"
        )
    prov: dict[str, Any] = {
        "unifmir_version": str(unifmir.__version__),
        "torch_version": str(torch.__version__),  # a TorchVersion object, which weights_only refuses
        "python_version": platform.python_version(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    prov.update(_plain(dict(provenance or {}), "provenance"))
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "task": net.task,
        "config": config.model_dump(mode="json"),
        "state_dict": collections.OrderedDict((k, v.detach().cpu()) for k, v in net.state_dict().items()),
        "provenance": prov,
        "extra": _plain(dict(extra or {}), "extra"),
    }
    with atomic_path(path, overwrite=overwrite) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def _plain(obj: Any, where: str) -> Any:
    """``obj`` with only the types ``torch.load(weights_only=True)`` accepts (paths become strings)."""
    if obj is None or type(obj) in (bool, int, float, str):
        return obj
    if isinstance(obj, Tensor):
        return obj.detach().cpu()
    if isinstance(obj, (str, os.PathLike)):  # str subclasses (TorchVersion), Path
        return os.fspath(obj) if isinstance(obj, os.PathLike) else str(obj)
    if isinstance(obj, bool):
        return bool(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, Mapping):
        return {str(k): _plain(v, where) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v, where) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _plain(obj.item(), where)
    raise TypeError(
        f"save_checkpoint: {where} holds a {type(obj).__name__}; only tensors, numbers, strings, None, "
        "lists and dicts can be stored (the file is read with weights_only=True)"
    )


def _unwrap_module(model: nn.Module) -> nn.Module:
    for _ in range(3):
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if isinstance(inner, nn.Module) and not hasattr(model, "config"):
            model = inner
    return model


def _validate_own(obj: Mapping[str, Any], path: Path | None) -> None:
    version = obj.get("version")
    if not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{_describe(path)}: unifmir checkpoint with invalid version {version!r}")
    if version > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{_describe(path)} was written by a newer unifmir (checkpoint format version {version}; this "
            f"version reads up to {CHECKPOINT_VERSION}); upgrade unifmir"
        )
    for key in ("config", "state_dict"):
        if not isinstance(obj.get(key), Mapping):
            raise CheckpointError(f"{_describe(path)}: unifmir checkpoint lacks its {key!r} entry; the file is damaged")
    task = obj.get("task")
    if task is not None and task not in TASKS:
        raise CheckpointError(f"{_describe(path)}: unknown task {task!r} in the checkpoint")


def read_checkpoint(path: str | os.PathLike, *, map_location: Any = "cpu") -> dict[str, Any]:
    """Return the validated payload of one of our own checkpoints (``task``, ``config``, ``provenance``, ...)."""
    obj, p = _load_payload(path, map_location)
    if not _is_own(obj):
        raise CheckpointError(
            f"{p} is not a unifmir checkpoint (no format={CHECKPOINT_FORMAT!r} entry); for the official UniFMIR "
            "weights use load_official, or load_any for either"
        )
    _validate_own(obj, p)
    return dict(obj)


def _model_from_own(obj: Mapping[str, Any], path: Path | None, task: str | None) -> nn.Module:
    _validate_own(obj, path)
    try:
        config = ModelConfig.model_validate(dict(obj["config"]))
    except ValueError as exc:  # pydantic.ValidationError
        raise CheckpointError(f"{_describe(path)}: its stored model config is invalid for this unifmir: {exc}") from None
    stored_task = obj.get("task")
    model = _build(stored_task, config)
    load_state_dict_strict(model, obj["state_dict"], context=f"(unifmir checkpoint, task {stored_task!r})")
    if task is not None and task != stored_task:
        if stored_task is None:
            return extract_task(model, task)
        raise CheckpointError(
            f"{_describe(path)} holds a {stored_task!r} network, not {get_task(task).name!r}; "
            "pass the matching task or another checkpoint"
        )
    return model


def load_checkpoint(path: str | os.PathLike, *, map_location: Any = "cpu") -> nn.Module:
    """Load one of our own checkpoints (written by :func:`save_checkpoint`) into an eval-mode module."""
    obj, p = _load_payload(path, map_location)
    if not _is_own(obj):
        raise CheckpointError(
            f"{_describe(p)} is not a unifmir checkpoint (no format={CHECKPOINT_FORMAT!r} entry); for the official "
            "UniFMIR weights use load_official, or load_any for either"
        )
    return _finish(_model_from_own(obj, p, None), map_location)


def load_any(source: Source, *, task: str | None = None, map_location: Any = "cpu") -> nn.Module:
    """Load our own checkpoint or any official one (what ``--model CKPT_OR_OFFICIAL`` accepts).

    ``task`` selects one task: for a multi-task checkpoint the single-task network is extracted
    (:func:`extract_task`); for a single-task checkpoint it must match (or, for official ``swinir``
    files, picks among sr / denoise / isotropic). A bioimage.io bundle written by ``unifmir
    export`` (``.zip``, its folder or its ``rdf.yaml``) gives its network
    (:func:`unifmir.model.bundles.load_bundle`).
    """
    if isinstance(source, (str, os.PathLike)):
        from unifmir.model import bundles

        if bundles.is_bundle_path(source):
            return _finish(bundles.load_bundle(source, task=task, map_location=map_location), map_location)
    obj, path = _load_payload(source, map_location)
    if _is_own(obj):
        return _finish(_model_from_own(obj, path, task), map_location)
    with _naming(path):
        return _finish(_model_from_official(_unwrap(obj, path, map_location), task), map_location)


# --------------------------------------------------------------------------------------------
# Conversion between the multi-task and the single-task naming
# --------------------------------------------------------------------------------------------


def _as_state_dict(obj: Mapping[str, Tensor] | nn.Module) -> "collections.OrderedDict[str, Tensor]":
    if isinstance(obj, nn.Module):
        obj = _unwrap_module(obj).state_dict()
    return _strip_prefixes(obj)


def multi_to_single(state_dict_or_model: Mapping[str, Tensor] | nn.Module, task: str) -> "collections.OrderedDict[str, Tensor]":
    """State_dict of ``task``'s released single-task network, taken from a multi-task one.

    Keys follow the released naming and order (``swinir``, ``swinirProj_stage2`` or
    ``swinir2dto3d``); the tensors are the multi-task ones (not copied). Keys of other tasks are
    dropped. Raises :class:`CheckpointError` if a part of the task is absent.
    """
    sd = _as_state_dict(state_dict_or_model)
    out: collections.OrderedDict[str, Tensor] = collections.OrderedDict()
    for single_prefix, multi_prefix in key_mapping(task):
        found = [(k, v) for k, v in sd.items() if k.startswith(multi_prefix)]
        if not found and multi_prefix != _SR_UPSAMPLER:  # a scale-1 upsampler has no weights
            raise CheckpointError(f"the multi-task state_dict has no {multi_prefix}* keys, needed for task {task!r}")
        for key, value in found:
            out[single_prefix + key[len(multi_prefix):]] = value
    return out


def single_to_multi(state_dict: Mapping[str, Tensor], task: str) -> "collections.OrderedDict[str, Tensor]":
    """Partial multi-task (UniModel-named) state_dict holding ``task``'s released single-task weights.

    The inverse of :func:`multi_to_single`. Load it into :class:`UniFMIR` with ``strict=False`` (or
    merge it into a full multi-task state_dict). Keys that the mapping does not cover raise
    :class:`CheckpointError`. Note that shapes are not changed: a 1-slice denoiser gives a
    ``conv_firstdT.weight`` with 1 input channel, which does not fit the 5-slice UniModel head.
    """
    sd = _strip_prefixes(state_dict)
    table = key_mapping(task)
    out: collections.OrderedDict[str, Tensor] = collections.OrderedDict()
    unmapped: list[str] = []
    for key, value in sd.items():
        # longest matching prefix wins ("conv_first0." before "conv_first.")
        hits = [(s, m) for s, m in table if key.startswith(s)]
        if not hits:
            unmapped.append(key)
            continue
        s, m = max(hits, key=lambda sm: len(sm[0]))
        out[m + key[len(s):]] = value
    if unmapped:
        raise CheckpointError(
            f"keys without a multi-task counterpart for task {task!r}:\n{_listing(unmapped, 'unmapped key')}\n"
            "is this the released single-task checkpoint of that task?"
        )
    return out


def extract_task(multi_model: nn.Module, task: str) -> nn.Module:
    """Single-task network of ``task`` carrying the weights of a multi-task model (eval mode).

    The result computes what ``multi_model(x, task=task)`` computes, in the single-task calling
    convention; SR / denoise / isotropic outputs are cropped to the input size (the released
    behaviour), while projection keeps UniModel's task-4 behaviour (no long skip, no crop:
    ``config.projection_variant="unimodel"``). It lives on the multi-task model's device and
    dtype; the tensors are copies.
    """
    spec = get_task(task)
    net = _unwrap_module(multi_model)
    if getattr(net, "task", "x") is not None or not hasattr(net, "config"):
        raise TypeError(f"extract_task needs a multi-task UniFMIR model, got {type(multi_model).__name__}")
    sd = multi_to_single(net, spec.name)
    hp = infer_hparams(sd, _family(spec))
    fields = _normalised_fields(hp, spec.name)
    fields.pop("projection_variant", None)
    if _family(spec) == "swinirProj_stage2":
        fields["projection_variant"] = "unimodel"  # UniModel task 4: no long skip, no crop
    config = _config_from_fields(fields, base=net.config)
    single = _build(spec.name, config)
    load_state_dict_strict(single, sd, context=f"(extracted task {spec.name!r})")
    ref = next(iter(net.parameters()), None)
    if ref is not None:
        single = single.to(device=ref.device, dtype=ref.dtype)
    return single.eval()
