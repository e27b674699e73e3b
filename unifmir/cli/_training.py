"""What ``unifmir finetune`` and ``unifmir pretrain`` share: the common options, how they change a
training config, the run folder checks and running the training."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import CliError
from ._checks import (
    check_dataset_dir,
    check_model_path,
    check_output_dir,
    device,
    int_at_least,
    nonneg_int,
    positive_float,
    positive_int,
)
from ._options import add_threads_option

if TYPE_CHECKING:
    from unifmir.training.config import TrainConfig

__all__ = ["add_common_training_args", "common_changes", "apply_common_overrides", "run_training",
           "check_resume_dir"]


def add_common_training_args(p: argparse.ArgumentParser) -> None:
    """Options shared by ``finetune`` and ``pretrain``."""
    p.add_argument("--out", type=Path, help="run folder to create (config, checkpoints, log, plot)")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue the interrupted run in RUN_DIR")
    p.add_argument("--config", type=Path, help="YAML training config (see unifmir.training.config)")
    p.add_argument("--preset", choices=["small", "full"], help="training/model preset (default: small)")
    p.add_argument("--steps", type=positive_int, help="total optimiser steps")
    p.add_argument("--device", type=device, help="cpu, cuda, cuda:N or auto (default: auto)")
    p.add_argument("--lr", type=positive_float, help="learning rate")
    p.add_argument("--batch-size", type=positive_int, help="global batch size (split across DDP processes)")
    p.add_argument("--patch-size", type=int_at_least(8), help="training patch size (input pixels, >= the Swin window 8)")
    p.add_argument("--val-every", type=positive_int, help="validate and checkpoint every N steps")
    p.add_argument("--workers", type=nonneg_int, help="data-loader worker processes")
    p.add_argument("--seed", type=nonneg_int, help="random seed")
    p.add_argument("--no-amp", action="store_true", help="disable mixed precision on CUDA")
    p.add_argument("--precision", choices=("fp32", "bf16", "auto"), default=None,
                   help="fp32: no autocast anywhere; bf16: bf16 autocast with fp32 master weights (CUDA, or a "
                   "CPU with AMX/AVX-512-BF16); auto: bf16 where supported (the choice is printed); "
                   "default: the config's (CUDA mixed precision, fp32 on the CPU)")
    p.add_argument("--early-stopping", type=positive_int, metavar="PATIENCE",
                   help="stop after PATIENCE validations without improvement")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_threads_option(p)


def _precision_overrides(precision: str, device: str) -> dict[str, Any]:
    """Config keys for ``--precision`` (``amp``, ``amp_dtype``, ``cpu_bf16``) on the run's device."""
    import sys

    import torch

    from unifmir.predict.precision import resolve_precision

    dev = "cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device)
    try:
        prec, why = resolve_precision(precision, dev)
    except ValueError as err:
        raise CliError(f"--precision {precision}: {err}") from None
    if precision == "auto":
        print(f"--precision auto: {why}", file=sys.stderr)
    if prec == "fp32":
        return {"amp": False, "cpu_bf16": False}
    if torch.device(dev).type == "cuda":
        return {"amp": True, "amp_dtype": "bfloat16", "cpu_bf16": False}
    return {"cpu_bf16": True}


def common_changes(args: argparse.Namespace, config_device: str) -> dict[str, Any]:
    """:class:`~unifmir.training.config.ConfigChanges` keywords of the common options.

    ``config_device`` is the device of the config the changes apply to (``--precision`` is
    resolved for ``--device`` or, without it, for that device).
    """
    keys = ("steps", "lr", "batch_size", "patch_size", "workers", "val_every", "seed", "device", "early_stopping")
    changes: dict[str, Any] = {k: getattr(args, k) for k in keys}
    if args.no_amp:
        changes["amp"] = False
    if getattr(args, "precision", None) is not None:
        changes.update(_precision_overrides(args.precision, args.device if args.device is not None else config_device))
    return changes


def apply_common_overrides(d: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Fold the common command-line options into a config dict."""
    from unifmir.training.config import ConfigChanges, change_config_dict

    return change_config_dict(d, ConfigChanges(**common_changes(args, d.get("device", "auto"))))


def _is_main_process() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


def run_training(cfg: TrainConfig | None, out: Path | None, args: argparse.Namespace) -> int:
    """Run :func:`unifmir.training.train` (new run or resume) and report the outcome."""
    from unifmir.training.config import ConfigError
    from unifmir.training.loop import TrainingDiverged, train

    run_dir = args.resume if args.resume is not None else out
    if run_dir is None:
        raise CliError("give --out RUN_DIR for a new run, or --resume RUN_DIR to continue one")
    check_output_dir("--resume" if args.resume is not None else "--out", run_dir)
    if cfg is not None and args.resume is None:
        check_model_path("--from", cfg.init, allow_scratch=True)
        for task, root in cfg.data.roots.items():
            check_dataset_dir(f"--data ({task})", root)
            inside = Path(run_dir).absolute()
            if Path(root).absolute() in (inside, *inside.parents):
                raise CliError(f"--out {run_dir} lies inside the dataset folder {root}; a run never writes into "
                               "your data: choose a folder outside it")
    try:
        result = train(cfg, run_dir, resume=args.resume is not None, device=args.device,
                       progress=not args.quiet)
    except TrainingDiverged as err:
        raise CliError(str(err)) from None
    except ConfigError as err:
        raise CliError(str(err)) from None
    if not _is_main_process():
        return 0
    best = f"{result.best_score:.4g}" if result.best_score is not None else "n/a"
    print(f"{result.stopped} at step {result.final_step}: best {result.monitor} {best}")
    print(f"best checkpoint: {result.best_checkpoint}\nlast checkpoint: {result.last_checkpoint}")
    print(f"log: {run_dir / 'log.csv'}  plot: {run_dir / 'curves.png'}")
    return 0


def check_resume_dir(run_dir: Path) -> None:
    """``--resume RUN_DIR``: a folder holding an interrupted run (config.yaml and train_state.pt)."""
    if not run_dir.is_dir():
        raise CliError(f"--resume {run_dir}: no such run folder; give the --out folder of the run to continue")
    missing = [n for n in ("config.yaml", "train_state.pt") if not (run_dir / n).is_file()]
    if missing:
        raise CliError(f"--resume {run_dir}: the folder holds no resumable run (no {' or '.join(missing)}); "
                       "start a new run with --out (and --from RUN_DIR/last.pt to keep its weights)")
