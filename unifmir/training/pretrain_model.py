"""Multi-task pretraining: the UniFMIR network and the task sampler.

All parameters are trained. One task is drawn per step or per epoch (``task_sampling``; the
reference draws one random task per epoch), with optional relative weights. The draw depends
only on ``(seed, step)`` or ``(seed, epoch)``, so it is the same after a resume and on every
DDP rank.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from torch import nn

from .config import TrainConfig
from .finetune_model import InitReport, transfer_weights
from .sampling import derive_seed

__all__ = ["TaskSampler", "prepare_pretrain_model"]


class TaskSampler:
    """Which task trains at a given step."""

    def __init__(
        self,
        tasks: Sequence[str],
        mode: str = "epoch",
        steps_per_epoch: int = 100,
        seed: int = 0,
        weights: dict[str, float] | None = None,
    ) -> None:
        self.tasks = list(tasks)
        self.mode = mode
        self.steps_per_epoch = max(1, int(steps_per_epoch))
        self.seed = int(seed)
        w = np.array([float((weights or {}).get(t, 1.0)) if weights else 1.0 for t in self.tasks])
        self.p = w / w.sum()

    def task_at(self, step: int) -> str:
        """The task trained at optimiser step ``step`` (0-based)."""
        if len(self.tasks) == 1:
            return self.tasks[0]
        unit = step if self.mode == "step" else step // self.steps_per_epoch
        rng = np.random.default_rng(derive_seed(self.seed, 17, unit))
        return self.tasks[int(rng.choice(len(self.tasks), p=self.p))]


def prepare_pretrain_model(config: TrainConfig) -> tuple[nn.Module, InitReport]:
    """Build the multi-task network; from scratch or continuing a multi-task checkpoint."""
    from unifmir.model.checkpoints import load_any
    from unifmir.model.config import resolve_config
    from unifmir.model.factory import build_model
    from unifmir.model.network import network_config, network_task

    overrides = dict(config.model.overrides)
    if config.init == "scratch":
        model = build_model(None, resolve_config({"preset": config.model.preset, **overrides}))
        report = InitReport(source="scratch", fresh=list(model.state_dict()))
    else:
        src = load_any(config.init)
        from unifmir.predict.api import check_network

        check_network(src, None, source=config.init)  # NaN/Inf weights: named, before training starts
        base = network_config(src).model_dump()
        base.update(overrides)
        base["in_chans"] = None
        model = build_model(None, resolve_config(base))
        copied, fresh = transfer_weights(model, None, src.state_dict(), network_task(src))
        report = InitReport(source=str(config.init), source_task=network_task(src), copied=copied, fresh=fresh)
    model.train()
    return model, report
