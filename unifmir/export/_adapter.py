"""The exported module: bioimage.io tensors ``(b, c=1, [z,] y, x)`` around a whole-image task module.

This file imports only torch and typing: it is inlined into the self-contained architecture file
of the ``pytorch_state_dict`` weights and scripted/traced for TorchScript and ONNX.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["BioimageAdapter"]


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
