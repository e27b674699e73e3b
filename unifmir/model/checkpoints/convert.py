"""Conversion between the multi-task (UniModel) and the single-task (released) naming and networks.

:func:`multi_to_single` and :func:`single_to_multi` rename state_dict keys with
:func:`~.layouts.key_mapping`; :func:`single_task_config` is the one rule that turns a multi-task
model's configuration into one task's single-task configuration (used by :func:`extract_task` and
by fine-tuning from a multi-task checkpoint); :func:`extract_task` builds that network with the
multi-task weights (for projection the UniModel behaviour: no long skip, no crop).
"""

from __future__ import annotations

import collections
from typing import Mapping

from torch import Tensor, nn

from unifmir.model.config import ModelConfig
from unifmir.model.multitask import UniFMIR
from unifmir.model.network import has_config, network_config
from unifmir.tasks import TaskSpec, get_task

from .errors import CheckpointError, listing
from .layouts import SR_UPSAMPLER, key_mapping
from .payload import strip_prefixes, unwrap_module
from .strict import build, load_state_dict_strict

__all__ = ["extract_task", "multi_to_single", "single_task_config", "single_to_multi"]


def _as_state_dict(obj: Mapping[str, Tensor] | nn.Module) -> "collections.OrderedDict[str, Tensor]":
    if isinstance(obj, nn.Module):
        obj = unwrap_module(obj).state_dict()
    return strip_prefixes(obj)


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
        if not found and multi_prefix != SR_UPSAMPLER:  # a scale-1 upsampler has no weights
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
    sd = strip_prefixes(state_dict)
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
            f"keys without a multi-task counterpart for task {task!r}:\n{listing(unmapped, 'unmapped key')}\n"
            "is this the released single-task checkpoint of that task?"
        )
    return out


def single_task_config(multi_config: ModelConfig, task: str | TaskSpec) -> ModelConfig:
    """Configuration of ``task``'s single-task network built from a multi-task model's weights.

    The shared body keeps the multi-task sizes; the input channels come from the task registry;
    ``upscale`` is kept only for the task with the upsampling tail (the multi-task config's
    ``upscale`` is the SR head's factor); the task's ``TaskSpec.multi_task_fields`` apply
    (projection: UniModel's task-4 path, ``projection_variant="unimodel"``).
    """
    spec = get_task(task)
    data = multi_config.model_dump(mode="json")
    data["in_chans"] = None
    if spec.tail != "upsample":
        data["upscale"] = None
    data.update(spec.multi_task_fields)
    return ModelConfig.model_validate(data)


def extract_task(multi_model: nn.Module, task: str) -> nn.Module:
    """Single-task network of ``task`` carrying the weights of a multi-task model (eval mode).

    The result computes what ``multi_model(x, task=task)`` computes, in the single-task calling
    convention; SR / denoise / isotropic outputs are cropped to the input size (the released
    behaviour), while projection keeps UniModel's task-4 behaviour (no long skip, no crop:
    ``config.projection_variant="unimodel"``). It lives on the multi-task model's device and
    dtype; the tensors are copies.
    """
    spec = get_task(task)
    net = unwrap_module(multi_model)
    if not isinstance(net, UniFMIR) or not has_config(net):
        raise TypeError(f"extract_task needs a multi-task UniFMIR model, got {type(multi_model).__name__}")
    sd = multi_to_single(net, spec.name)
    single = build(spec.name, single_task_config(network_config(net), spec))
    load_state_dict_strict(single, sd, context=f"(extracted task {spec.name!r})")
    ref = next(iter(net.parameters()), None)
    if ref is not None:
        single = single.to(device=ref.device, dtype=ref.dtype)
    return single.eval()
