"""Our own checkpoint format: weights + ``ModelConfig`` + task + provenance in one file.

A ``torch.save``'d dict ``{'format': 'unifmir-checkpoint', 'version': 1, 'task', 'config',
'state_dict', 'provenance', 'extra'}`` holding only tensors and JSON-like values, written
atomically (:func:`save_checkpoint`) and read with ``weights_only=True`` (:func:`read_checkpoint`,
:func:`load_checkpoint`).
"""

from __future__ import annotations

import collections
import datetime as _dt
import os
import platform
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from unifmir._atomic import atomic_path
from unifmir.model.config import ModelConfig
from unifmir.model.network import NETWORK_CLASSES, has_config, network_config, network_task
from unifmir.tasks import TASKS, get_task, other_task

from .convert import extract_task
from .errors import CheckpointError, describe
from .payload import CHECKPOINT_FORMAT, is_own, load_payload, unwrap_module
from .strict import build, finish, load_state_dict_strict

__all__ = ["CHECKPOINT_VERSION", "load_checkpoint", "model_from_own", "read_checkpoint", "save_checkpoint"]

CHECKPOINT_VERSION = 1
"""Version of our own checkpoint format written by :func:`save_checkpoint`."""


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

    net = unwrap_module(model)
    if not isinstance(net, NETWORK_CLASSES) or not has_config(net):
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
        "task": network_task(net),
        "config": network_config(net).model_dump(mode="json"),
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


def _validate_own(obj: Mapping[str, Any], path: Path | None) -> None:
    version = obj.get("version")
    if not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{describe(path)}: unifmir checkpoint with invalid version {version!r}")
    if version > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{describe(path)} was written by a newer unifmir (checkpoint format version {version}; this "
            f"version reads up to {CHECKPOINT_VERSION}); upgrade unifmir"
        )
    for key in ("config", "state_dict"):
        if not isinstance(obj.get(key), Mapping):
            raise CheckpointError(f"{describe(path)}: unifmir checkpoint lacks its {key!r} entry; the file is damaged")
    task = obj.get("task")
    if task is not None and task not in TASKS:
        raise CheckpointError(f"{describe(path)}: unknown task {task!r} in the checkpoint")


def read_checkpoint(path: str | os.PathLike, *, map_location: Any = "cpu") -> dict[str, Any]:
    """Return the validated payload of one of our own checkpoints (``task``, ``config``, ``provenance``, ...)."""
    obj, p = load_payload(path, map_location)
    if not is_own(obj):
        raise CheckpointError(
            f"{p} is not a unifmir checkpoint (no format={CHECKPOINT_FORMAT!r} entry); for the official UniFMIR "
            "weights use load_official, or load_any for either"
        )
    _validate_own(obj, p)
    return dict(obj)


def model_from_own(obj: Mapping[str, Any], path: Path | None, task: str | None) -> nn.Module:
    """The network of a loaded own-format payload; ``task`` extracts one task of a multi-task one."""
    _validate_own(obj, path)
    try:
        config = ModelConfig.model_validate(dict(obj["config"]))
    except ValueError as exc:  # pydantic.ValidationError
        raise CheckpointError(f"{describe(path)}: its stored model config is invalid for this unifmir: {exc}") from None
    stored_task = obj.get("task")
    model = build(stored_task, config)
    load_state_dict_strict(model, obj["state_dict"], context=f"(unifmir checkpoint, task {stored_task!r})")
    if task is not None and stored_task is None:
        return extract_task(model, task)
    if task is not None and other_task(stored_task, task):
        raise CheckpointError(
            f"{describe(path)} holds a {stored_task!r} network, not {get_task(task).name!r}; "
            "pass the matching task or another checkpoint"
        )
    return model


def load_checkpoint(path: str | os.PathLike, *, map_location: Any = "cpu") -> nn.Module:
    """Load one of our own checkpoints (written by :func:`save_checkpoint`) into an eval-mode module."""
    obj, p = load_payload(path, map_location)
    if not is_own(obj):
        raise CheckpointError(
            f"{describe(p)} is not a unifmir checkpoint (no format={CHECKPOINT_FORMAT!r} entry); for the official "
            "UniFMIR weights use load_official, or load_any for either"
        )
    return finish(model_from_own(obj, p, None), map_location)
