"""One-call conveniences: :func:`finetune` and :func:`pretrain` (config + :func:`train`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from .config import finetune_config, pretrain_config
from .loop import TrainResult, train

__all__ = ["finetune", "pretrain"]


def finetune(task: str, data: str | Path, run_dir: str | Path, init: str | Path = "scratch",
             preset: str = "small", steps: int | None = None, *, device: str | None = None,
             progress: bool = True, **kwargs: Any) -> TrainResult:
    """Fine-tune ``task`` on ``data`` into ``run_dir`` (see :func:`~.config.finetune_config`)."""
    cfg = finetune_config(task, data, init, preset, steps, **kwargs)
    return train(cfg, run_dir, device=device, progress=progress)


def pretrain(data: Mapping[str, str | Path], run_dir: str | Path, preset: str = "small",
             steps: int | None = None, *, device: str | None = None, progress: bool = True,
             **kwargs: Any) -> TrainResult:
    """Pretrain the multi-task model on ``data`` (task -> folder) into ``run_dir``."""
    cfg = pretrain_config(data, preset, steps, **kwargs)
    return train(cfg, run_dir, device=device, progress=progress)
