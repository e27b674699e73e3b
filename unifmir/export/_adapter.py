"""The exported module: bioimage.io tensors ``(b, c=1, [z,] y, x)`` around a whole-image task module.

This file imports only torch and typing: it is copied into the architecture file of the
``pytorch_state_dict`` weights (:mod:`unifmir.export._architecture`), whose callable is
:class:`UniFMIRBioimage`; :class:`BioimageAdapter` is also scripted/traced for TorchScript and ONNX.
"""

from __future__ import annotations

from typing import Any, Dict

import torch
from torch import Tensor, nn

__all__ = ["BioimageAdapter", "UniFMIRBioimage"]


class BioimageAdapter(nn.Module):
    """Bioimage tensors around a whole-image task module of :mod:`unifmir.predict.modules`.

    The task modules already take ``(b, 1, [z,] y, x)``; this adapter only adds what the
    bioimage.io description needs on top.

    Args:
        inner: whole-image task module.
        drop_singleton_z: the input carries a singleton ``z`` axis (``(b, 1, 1, y, x)``) that the
            task module does not take (volumetric task; required by deepImageJ's size rule).
        vcd_normalize: apply the light-field normalisation ``x / (1.1 * max(x) / 2) - 1`` per
            sample inside the module (no bioimage.io/deepImageJ processing step expresses it).
    """

    def __init__(self, inner: nn.Module, drop_singleton_z: bool = False, vcd_normalize: bool = False) -> None:
        super().__init__()
        self.inner = inner
        self.drop_singleton_z = bool(drop_singleton_z)
        self.vcd_normalize = bool(vcd_normalize)

    def forward(self, x: Tensor) -> Tensor:
        if self.drop_singleton_z:
            x = x[:, :, 0]
        if self.vcd_normalize:
            peak = x.reshape(x.shape[0], -1).max(dim=1)[0].reshape([-1] + [1] * (x.dim() - 1))
            x = x / (1.1 * peak / 2.0) - 1.0
        return self.inner(x)


def _module_class(name: str) -> Any:
    """The ``nn.Module`` class called ``name`` in this file's namespace."""
    cls = globals().get(name)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ValueError(f"{name!r} is not a network or task-module class of this architecture file")
    return cls


class UniFMIRBioimage(BioimageAdapter):
    """The exported UniFMIR model: ``BioimageAdapter(task_module(network(...)))``, in eval mode.

    The callable of the bundle's architecture file; ``network`` and ``task_module`` name classes
    defined in that file, and the rdf's ``kwargs`` are exactly the constructor arguments::

        net = network(**network_kwargs)
        inner = task_module(net, **task_module_kwargs)
        BioimageAdapter(inner, drop_singleton_z, vcd_normalize)

    State_dict keys are therefore ``inner.net.*``. (Within the unifmir package, build the same
    module with ``unifmir.export.weights.build_export_module``.)
    """

    def __init__(
        self,
        network: str,
        network_kwargs: Dict[str, Any],
        task_module: str,
        task_module_kwargs: Dict[str, Any],
        drop_singleton_z: bool = False,
        vcd_normalize: bool = False,
    ) -> None:
        net = _module_class(network)(**network_kwargs)
        inner = _module_class(task_module)(net, **task_module_kwargs)
        super().__init__(inner, drop_singleton_z=drop_singleton_z, vcd_normalize=vcd_normalize)
        self.eval()
