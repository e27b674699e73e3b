"""Training: configuration, multi-task pretraining, per-task fine-tuning, the loop, DDP.

Public API (imported lazily, so ``import unifmir.training`` stays light)::

    from unifmir.training import TrainConfig, finetune_config, pretrain_config, load_config, train

    cfg = finetune_config("sr", "data/sr", init="official.pth", preset="small", steps=300)
    result = train(cfg, "runs/sr")           # -> TrainResult(best_checkpoint, last_checkpoint, ...)
    result = train(None, "runs/sr", resume=True)

Modules: :mod:`.config` (pydantic config + presets), :mod:`.losses` (staged L1 from the task
registry), :mod:`.sampling` (resumable distributed sampling), :mod:`.loop` (the loop),
:mod:`.checkpointing`, :mod:`.run_log`, :mod:`.ddp`, :mod:`.finetune`, :mod:`.pretrain`.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "TrainConfig": "config",
    "ModelSection": "config",
    "DataSection": "config",
    "OptimSection": "config",
    "ScheduleSection": "config",
    "LossSection": "config",
    "LoggingSection": "config",
    "CheckpointSection": "config",
    "EarlyStopping": "config",
    "ConfigError": "config",
    "load_config": "config",
    "save_config": "config",
    "config_from_dict": "config",
    "finetune_config": "config",
    "pretrain_config": "config",
    "train": "loop",
    "TrainResult": "loop",
    "StepInfo": "loop",
    "TrainingDiverged": "loop",
    "StagedL1": "losses",
    "InitReport": "finetune",
    "prepare_finetune_model": "finetune",
    "prepare_pretrain_model": "pretrain",
    "TaskSampler": "pretrain",
    "finetune": "api",
    "pretrain": "api",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'unifmir.training' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{mod}"), name)
    globals()[name] = value
    return value
