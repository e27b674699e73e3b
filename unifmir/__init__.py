"""unifmir: fine-tune, evaluate, run and publish the UniFMIR foundation model.

Public entry points are imported lazily so that ``import unifmir`` stays fast and so that the
export layer never pulls in training code.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> "module:attribute"
_LAZY = {
    "TASKS": "unifmir.tasks:TASKS",
    "get_task": "unifmir.tasks:get_task",
    "load_official": "unifmir.model.checkpoints:load_official",
    "load_checkpoint": "unifmir.model.checkpoints:load_checkpoint",
    "load_any": "unifmir.model.checkpoints:load_any",
    "extract_task": "unifmir.model.checkpoints:extract_task",
    "save_checkpoint": "unifmir.model.checkpoints:save_checkpoint",
    "build_model": "unifmir.model.factory:build_model",
    "predict": "unifmir.predict.api:predict",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'unifmir' has no attribute {name!r}")
    module, attr = target.split(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value
