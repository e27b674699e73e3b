"""Strict loading: a state_dict goes into a network only when every key and shape matches.

:func:`load_state_dict_strict` lists what differs (missing, unexpected, mis-shaped keys) instead of
loading part of the weights; :func:`build` and :func:`finish` are the two ends every loader shares
(network from ``(task, config)``; device and eval mode).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import Tensor, nn

from unifmir.model.config import ModelConfig
from unifmir.model.factory import build_model

from .errors import CheckpointError, listing
from .payload import strip_prefixes

__all__ = ["build", "finish", "load_state_dict_strict"]


def load_state_dict_strict(model: nn.Module, state_dict: Mapping[str, Tensor], *, context: str = "") -> None:
    """Load ``state_dict`` into ``model`` strictly, or raise :class:`CheckpointError` listing the differences.

    Lists missing keys, unexpected keys and keys whose shape differs (checkpoint vs network), the
    first few of each with the counts. Nothing is loaded when anything differs.
    """
    expected = model.state_dict()
    sd = strip_prefixes(state_dict)
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
            lines.append(listing(missing, "missing key"))
        if unexpected:
            lines.append(listing(unexpected, "unexpected key"))
        if misshaped:
            lines.append(listing(misshaped, "mis-shaped key"))
        lines.append(
            "Nothing was loaded. Check that the file is the checkpoint you meant (and task=, if given); "
            "files from a modified network cannot be loaded strictly."
        )
        raise CheckpointError("\n".join(lines))
    model.load_state_dict(sd, strict=True)


def build(task: str | None, config: ModelConfig) -> nn.Module:
    """The (untrained) network of ``task`` (``None``: multi-task) with ``config``."""
    return build_model(task, config)


def finish(model: nn.Module, map_location: Any) -> nn.Module:
    """A loaded network on the device ``map_location`` names, in eval mode."""
    if isinstance(map_location, (str, torch.device)) and str(map_location) != "cpu":
        model = model.to(map_location)
    return model.eval()
