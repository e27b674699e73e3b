"""Training: configuration, multi-task pretraining, per-task fine-tuning, the loop, DDP.

Public API (imported lazily, so ``import unifmir.training`` stays light)::

    from unifmir.training import TrainConfig, finetune_config, pretrain_config, load_config, train

    cfg = finetune_config("sr", "data/sr", init="official.pth", preset="small", steps=300)
    result = train(cfg, "runs/sr")           # -> TrainResult(best_checkpoint, last_checkpoint, ...)
    result = train(None, "runs/sr", resume=True)

Modules: :mod:`.config` (pydantic config + presets), :mod:`.losses` (staged L1 from the task
registry), :mod:`.sampling` (resumable distributed sampling), :mod:`.loop` (the loop),
:mod:`.checkpointing`, :mod:`.run_log`, :mod:`.ddp`, :mod:`.finetune_model`, :mod:`.pretrain_model` (the networks to fine-tune / pretrain), :mod:`.api` (:func:`finetune`, :func:`pretrain`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from unifmir._lazy import attach

if TYPE_CHECKING:
    from .api import finetune, pretrain
    from .config import (
        CheckpointSection,
        ConfigError,
        DataSection,
        EarlyStopping,
        LoggingSection,
        LossSection,
        ModelSection,
        OptimSection,
        ScheduleSection,
        TrainConfig,
        config_from_dict,
        finetune_config,
        load_config,
        pretrain_config,
        save_config,
    )
    from .finetune_model import InitReport, prepare_finetune_model
    from .loop import StepInfo, TrainResult, TrainingDiverged, train
    from .losses import StagedL1
    from .pretrain_model import TaskSampler, prepare_pretrain_model

__all__ = [
    "TrainConfig",
    "ModelSection",
    "DataSection",
    "OptimSection",
    "ScheduleSection",
    "LossSection",
    "LoggingSection",
    "CheckpointSection",
    "EarlyStopping",
    "ConfigError",
    "load_config",
    "save_config",
    "config_from_dict",
    "finetune_config",
    "pretrain_config",
    "train",
    "TrainResult",
    "StepInfo",
    "TrainingDiverged",
    "StagedL1",
    "InitReport",
    "prepare_finetune_model",
    "prepare_pretrain_model",
    "TaskSampler",
    "finetune",
    "pretrain",
]

if not TYPE_CHECKING:  # checkers see the imports above, not a catch-all __getattr__
    __getattr__, __dir__ = attach(__name__, __file__, __all__)
