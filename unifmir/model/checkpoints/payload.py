"""Reading checkpoint files and unwrapping their payload into a plain state_dict.

Accepted payloads: a bare ``state_dict``; one wrapped under ``state_dict`` / ``model`` / ... (see
:data:`WRAPPER_KEYS`, nested a few levels); a DataParallel (``module.``) or ``torch.compile``
(``_orig_mod.``) prefixed one; a whole ``nn.Module``; the compact int8 form of the reference
fixtures (``key_order/plain/q8/q8_exp/alias``, optionally ``external_keys`` naming a sibling file
with the remaining tensors); and our own format (recognised by its ``format`` entry,
:data:`CHECKPOINT_FORMAT`). Files are always read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import collections
import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any, Mapping, Union

import torch
from torch import Tensor, nn

from unifmir.model.network import has_config

from .errors import LIST_LIMIT, CheckpointError, describe

__all__ = [
    "CHECKPOINT_FORMAT",
    "Source",
    "compact_tensors",
    "is_own",
    "load_payload",
    "read_state_dict",
    "strip_prefixes",
    "unwrap",
    "unwrap_module",
]

Source = Union[str, os.PathLike, Mapping[str, Any]]

CHECKPOINT_FORMAT = "unifmir-checkpoint"
"""Value of the ``format`` entry of our own checkpoint files."""

WRAPPER_KEYS: tuple[str, ...] = ("state_dict", "model", "model_state_dict", "net", "network", "params_ema", "params")
_COMPACT_KEYS = frozenset({"key_order", "plain", "q8", "q8_exp", "alias"})
_STRIP_PREFIXES: tuple[str, ...] = ("module.", "_orig_mod.")


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


def is_own(obj: Any) -> bool:
    """Whether a loaded payload is one of our own checkpoints (``format`` entry)."""
    return isinstance(obj, Mapping) and obj.get("format") == CHECKPOINT_FORMAT


def _is_compact(obj: Any) -> bool:
    return isinstance(obj, Mapping) and _COMPACT_KEYS <= set(obj)


def strip_prefixes(sd: Mapping[str, Tensor]) -> "collections.OrderedDict[str, Tensor]":
    """``sd`` with DataParallel ``module.`` / ``torch.compile`` ``_orig_mod.`` key prefixes removed."""
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


def compact_tensors(obj: Mapping[str, Any]) -> dict[str, Tensor]:
    """The tensors a compact state_dict holds itself, bit-exact: ``plain``, ``q8 * 2**q8_exp`` and the
    ``alias`` copies (unordered; keys kept in an ``external_keys`` file are not resolved here)."""
    sd: dict[str, Tensor] = dict(obj["plain"])
    sd.update({k: q.float() * 2.0 ** int(obj["q8_exp"][k]) for k, q in obj["q8"].items()})
    sd.update({k: sd[a].clone() for k, a in obj["alias"].items()})
    return sd


def _rebuild_compact(obj: Mapping[str, Any], path: Path | None, map_location: Any) -> "collections.OrderedDict[str, Tensor]":
    """Rebuild the exact state_dict of the reference fixtures' compact form (int8 + 2**e, aliases)."""
    sd = compact_tensors(obj)
    order = list(obj["key_order"])
    absent = [k for k in order if k not in sd]
    if absent:
        ext = obj.get("external_keys")
        if not isinstance(ext, Mapping) or "file" not in ext:
            raise CheckpointError(
                f"{describe(path)} lacks {len(absent)} tensors ({', '.join(absent[:3])}, ...) and names no "
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
            raise CheckpointError(f"{ext_path} does not hold the external tensors {lacking[:LIST_LIMIT]} of {path}")
        sd.update({k: other[k] for k in absent})
    return collections.OrderedDict((k, sd[k]) for k in order)


def unwrap(obj: Any, path: Path | None, map_location: Any) -> "collections.OrderedDict[str, Tensor]":
    """Turn any accepted official payload into a plain, prefix-stripped state_dict."""
    for _ in range(4):  # wrappers nest at most a few levels
        if isinstance(obj, nn.Module):
            obj = obj.state_dict()
        if _is_compact(obj):
            return strip_prefixes(_rebuild_compact(obj, path, map_location))
        if _is_tensor_dict(obj):
            return strip_prefixes(obj)
        if isinstance(obj, Mapping):
            inner = next((obj[k] for k in WRAPPER_KEYS if k in obj and isinstance(obj[k], (Mapping, nn.Module))), None)
            if inner is not None:
                obj = inner
                continue
            if obj and all(isinstance(k, str) for k in obj):
                tensors = {k: v for k, v in obj.items() if isinstance(v, Tensor)}
                others = [k for k in obj if k not in tensors]
                if tensors and len(tensors) >= len(others):
                    raise CheckpointError(
                        f"{describe(path)} looks like a state_dict but {len(others)} entries are not tensors "
                        f"({', '.join(map(repr, others[:LIST_LIMIT]))}); save model.state_dict() only"
                    )
            keys = ", ".join(map(repr, list(obj)[:8])) if obj else "none"
            raise CheckpointError(
                f"{describe(path)} holds a dict without a state_dict (keys: {keys}); expected a bare state_dict "
                f"or one wrapped under one of {', '.join(WRAPPER_KEYS)}"
            )
        break
    raise CheckpointError(
        f"{describe(path)} holds a {type(obj).__name__}, not a state_dict; expected a dict of tensors "
        "(torch.save(model.state_dict(), path))"
    )


def load_payload(source: Source, map_location: Any) -> tuple[Any, Path | None]:
    """The loaded object of ``source`` (a path is read; a mapping or module is taken as is) and its path."""
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
    obj, path = load_payload(source, map_location)
    if is_own(obj):
        return strip_prefixes(obj["state_dict"])
    return unwrap(obj, path, map_location)


def unwrap_module(model: nn.Module) -> nn.Module:
    """The unifmir network inside a DataParallel / DDP (``.module``) or ``torch.compile`` (``._orig_mod``) wrapper."""
    for _ in range(3):
        if not isinstance(model, nn.Module):  # callers name the wrong type in their own error
            break
        children = dict(model.named_children())  # the wrappers register the network as a sub-module
        inner = children.get("module") or children.get("_orig_mod")
        if isinstance(inner, nn.Module) and not has_config(model):
            model = inner
    return model
