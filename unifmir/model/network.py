"""What a unifmir network is, typed: the classes :func:`~unifmir.model.factory.build_model` makes,
their task and their :class:`~unifmir.model.config.ModelConfig`.

The network classes (:mod:`.single`, :mod:`.multitask`) take plain values and are copied verbatim
into exported bundles, so they store their ``task`` (a constructor argument) but know nothing of
:class:`ModelConfig`. ``build_model`` records the resolved config on the network it returns
(:func:`attach_config`; attribute ``config``) and the rest of the package reads these facts through
the typed accessors here instead of probing attributes: :func:`network_task`,
:func:`network_config`, :func:`input_channels`, :func:`upscale`.
"""

from __future__ import annotations

from typing import Optional, TypeVar, Union

from torch import nn

from .config import ModelConfig
from .single import ProjectionNet, SwinIRNet, VolumetricNet
from .multitask import UniFMIR

__all__ = [
    "SingleTaskNetwork",
    "Network",
    "NETWORK_CLASSES",
    "attach_config",
    "network_task",
    "network_config",
    "has_config",
    "input_channels",
    "upscale",
]

SingleTaskNetwork = Union[SwinIRNet, ProjectionNet, VolumetricNet]
"""A single-task network (the classes of the released fine-tuned checkpoints)."""

Network = Union[SwinIRNet, ProjectionNet, VolumetricNet, UniFMIR]
"""Any network :func:`~unifmir.model.factory.build_model` makes (UniFMIR: the multi-task one)."""

NETWORK_CLASSES: tuple[type[nn.Module], ...] = (SwinIRNet, ProjectionNet, VolumetricNet, UniFMIR)
"""The classes of :data:`Network`, for ``isinstance``."""

_CONFIG = "config"
"""The attribute that holds a network's :class:`ModelConfig` (``net.config``)."""

N = TypeVar("N", bound=nn.Module)


def attach_config(net: N, config: ModelConfig) -> N:
    """Record ``config`` (what ``net`` was built from) on ``net`` as ``net.config``; returns ``net``."""
    setattr(net, _CONFIG, config)  # a plain attribute: the classes do not declare it (see the module doc)
    return net


def has_config(net: nn.Module) -> bool:
    """Whether ``net`` carries the :class:`ModelConfig` it was built from."""
    return isinstance(vars(net).get(_CONFIG), ModelConfig)


def network_config(net: nn.Module) -> ModelConfig:
    """The :class:`ModelConfig` ``net`` was built from; ``ValueError`` for a network without one."""
    config = vars(net).get(_CONFIG)
    if not isinstance(config, ModelConfig):
        raise ValueError(
            f"the network ({type(net).__name__}) has no .config (build it with unifmir.build_model or load_any)"
        )
    return config


def network_task(net: nn.Module) -> Optional[str]:
    """The task ``net`` serves (a ``TASKS`` key); ``None`` for the multi-task network, for a
    single-task network built without a task and for modules that are not unifmir networks."""
    return net.task if isinstance(net, (SwinIRNet, ProjectionNet, VolumetricNet, UniFMIR)) else None


def input_channels(net: nn.Module) -> Optional[int]:
    """Image channels ``net`` takes where the network stores them (SwinIR and volumetric), else ``None``."""
    return int(net.in_chans) if isinstance(net, (SwinIRNet, VolumetricNet)) else None


def upscale(net: nn.Module) -> Optional[int]:
    """The y/x scale of a SwinIR network (``None`` for the other classes and foreign modules)."""
    return int(net.upscale) if isinstance(net, SwinIRNet) else None
