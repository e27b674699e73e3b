"""The UniFMIR networks.

* :mod:`.config` -- :class:`ModelConfig`, presets ``full`` / ``small``;
* :mod:`.swin` -- SwinIR body (window attention, Swin layers, RSTB);
* :mod:`.enlcn` -- ENLCN projection head (ENLCA / ENLA);
* :mod:`.unet` -- UNetA (volumetric stage 1);
* :mod:`.single` -- single-task networks (released classes): :class:`SwinIRNet`,
  :class:`ProjectionNet`, :class:`VolumetricNet`;
* :mod:`.multitask` -- multi-task :class:`UniFMIR`;
* :mod:`.factory` -- :func:`build_model`;
* :mod:`.network` -- the :data:`Network` types and the typed accessors of a network's task and
  :class:`ModelConfig` (:func:`network_task`, :func:`network_config`).
"""

from __future__ import annotations

from .config import PRESETS, ModelConfig, resolve_config
from .factory import build_model
from .multitask import UniFMIR
from .network import Network, SingleTaskNetwork, network_config, network_task
from .single import ProjectionNet, SwinIRNet, VolumetricNet

__all__ = [
    "ModelConfig",
    "PRESETS",
    "resolve_config",
    "build_model",
    "SwinIRNet",
    "ProjectionNet",
    "VolumetricNet",
    "UniFMIR",
    "Network",
    "SingleTaskNetwork",
    "network_config",
    "network_task",
]
