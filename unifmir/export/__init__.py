"""Export UniFMIR networks as validated bioimage.io bundles (spec 0.5).

``export_model(model_or_path, task, out, ...)`` builds the description, weights (TorchScript,
pytorch_state_dict with a self-contained architecture file, ONNX), test/sample tensors, cover and
README, runs every gate (bioimageio.core ``test_model`` per weight format, tiled vs whole image,
deepImageJ and ilastik constraints, libtorch 2.0.0) and only then writes the bundle atomically.

This package never imports ``unifmir.training``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["export_model", "ExportReport", "GateError"]


def __getattr__(name: str) -> Any:
    if name in ("export_model", "ExportReport"):
        from unifmir.export import bundle

        return getattr(bundle, name)
    if name == "GateError":
        from unifmir.export.gates import GateError

        return GateError
    raise AttributeError(f"module 'unifmir.export' has no attribute {name!r}")
