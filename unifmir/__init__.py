"""unifmir: fine-tune, evaluate, run and publish the UniFMIR foundation model.

Public entry points are imported lazily (:mod:`unifmir._lazy`) so that ``import unifmir`` stays
fast and so that the export layer never pulls in training code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from unifmir._lazy import attach

__version__ = "0.1.0"

if TYPE_CHECKING:
    from unifmir.model.checkpoints import extract_task, load_any, load_checkpoint, load_official, save_checkpoint
    from unifmir.model.factory import build_model
    from unifmir.predict.api import predict
    from unifmir.tasks import TASKS, get_task

__all__ = [
    "__version__",
    "TASKS",
    "get_task",
    "load_official",
    "load_checkpoint",
    "load_any",
    "extract_task",
    "save_checkpoint",
    "build_model",
    "predict",
]

if not TYPE_CHECKING:  # checkers see the imports above, not a catch-all __getattr__
    __getattr__, __dir__ = attach(__name__, __file__, __all__)
