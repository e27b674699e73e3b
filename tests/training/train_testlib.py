"""Helpers for the training tests: tiny synthetic datasets and tiny configs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from unifmir.training.config import TrainConfig, finetune_config

TINY_PATCH = {"sr": 16, "denoise": 16, "isotropic": 16, "projection": 16, "volumetric": 88}
"""Training patch per task (volumetric: light-field pixels, 8x8 views, the smallest that pads cleanly)."""
SYNTH_SIZE = {"sr": 48, "denoise": 32, "isotropic": 32, "projection": 32, "volumetric": 88}
"""Synthetic image size per task for the tests (``synthesize_dataset(size=...)``)."""


def synth(task: str, out: Path, n: int = 3, seed: int = 0, **kw: Any) -> Path:
    """A tiny dataset folder for ``task`` in the ``unifmir synth`` layout."""
    from unifmir.data.pairs import synthesize_dataset

    kw.setdefault("size", SYNTH_SIZE[task])
    synthesize_dataset(task, n, out, seed, **kw)
    return out


def tiny_overrides(task: str = "sr", **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "data": {"patch_size": TINY_PATCH[task], "batch_size": 1 if task == "volumetric" else 2,
                 "val_samples": 1 if task == "volumetric" else 2},
        "checkpoint": {"val_every": 1000, "validate_at_start": False},
        "logging": {"log_every": 1, "progress": False, "plot": False},
    }
    for k, v in extra.items():
        if isinstance(v, dict):
            d.setdefault(k, {}).update(v)
        else:
            d[k] = v
    return d


def tiny_config(task: str, root: Path, steps: int, init: str = "scratch", lr: float | None = None,
                model_overrides: dict[str, Any] | None = None, **extra: Any) -> TrainConfig:
    return finetune_config(task, root, init, "small", steps, lr=lr, device="cpu",
                           model_overrides=model_overrides, overrides=tiny_overrides(task, **extra))


def state_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def ddp_worker(rank: int, world: int, port: int, cfg_dict: dict[str, Any], run_dir: str) -> None:
    """Entry point of one DDP process (spawned by the DDP test): gloo on CPU via the env vars."""
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from unifmir.training.config import config_from_dict
    from unifmir.training.loop import train

    train(config_from_dict(cfg_dict), run_dir, device="cpu", progress=False)
