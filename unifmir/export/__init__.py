"""Export UniFMIR networks as validated bioimage.io bundles (spec 0.5).

``export_model(model_or_path, task, out, ...)`` builds the description, weights (TorchScript,
pytorch_state_dict with a self-contained architecture file, ONNX), test/sample tensors, cover and
README, runs every gate (bioimageio.core ``test_model`` per weight format, tiled vs whole image,
deepImageJ and ilastik constraints, libtorch 2.0.0) and only then writes the bundle atomically.

This package never imports ``unifmir.training``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from unifmir._lazy import attach

if TYPE_CHECKING:
    from .bundle import ExportReport, export_model
    from .gates import GateError

__all__ = [
    "export_model",
    "ExportReport",
    "GateError",
]

if not TYPE_CHECKING:  # checkers see the imports above, not a catch-all __getattr__
    __getattr__, __dir__ = attach(__name__, __file__, __all__)
