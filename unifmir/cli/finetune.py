"""``unifmir finetune``: fine-tune one task from a checkpoint (ours or official) or from scratch.

Examples::

    unifmir finetune --task sr --data data/sr --from unifmir_pretrained.pt --out runs/sr
    unifmir finetune --task sr --data data/deepbacs --from official_x2.pth --upscale 1 --out runs/db
    unifmir finetune --task denoise --data data/dn --from scratch --preset small --steps 300 --out runs/dn
    unifmir finetune --resume runs/sr                      # continue an interrupted run exactly
    unifmir finetune --config cfg.yaml --out runs/x        # every setting from a YAML file
    torchrun --nproc_per_node=2 -m unifmir finetune ...    # DistributedDataParallel
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

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

__all__ = ["register", "run", "add_common_training_args", "apply_common_overrides", "check_resume_dir"]


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


def apply_common_overrides(d: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Fold the common command-line options into a config dict."""
    def section(name: str) -> dict[str, Any]:
        return d.setdefault(name, {})

    if args.steps is not None:
        section("schedule")["steps"] = args.steps
    if args.lr is not None:
        section("optim")["lr"] = args.lr
    if args.batch_size is not None:
        section("data")["batch_size"] = args.batch_size
    if args.patch_size is not None:
        section("data")["patch_size"] = args.patch_size
    if args.workers is not None:
        section("data")["workers"] = args.workers
    if args.val_every is not None:
        section("checkpoint")["val_every"] = args.val_every
    if args.seed is not None:
        d["seed"] = args.seed
    if args.device is not None:
        d["device"] = args.device
    if args.no_amp:
        d["amp"] = False
    if getattr(args, "precision", None) is not None:
        d.update(_precision_overrides(args.precision, d.get("device", "auto")))
    if args.early_stopping is not None:
        d["early_stopping"] = {"enabled": True, "patience": args.early_stopping}
    return d


def _is_main_process() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


def run_training(cfg: Any, out: Path | None, args: argparse.Namespace) -> int:
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


def run(args: argparse.Namespace) -> int:
    from unifmir.training.config import ConfigError, config_from_dict, finetune_config, load_config

    try:
        if args.resume is not None:
            check_resume_dir(args.resume)
            cfg = None
            if args.config is not None or any(
                v is not None for v in (args.task, args.data, args.init, args.lr, args.batch_size, args.patch_size)
            ):
                raise CliError("--resume continues a run with its own config.yaml; only --steps, --device, "
                               "--quiet and --early-stopping may be given with it")
            if args.steps is not None or args.early_stopping is not None:
                d = load_config(args.resume / "config.yaml").to_dict()
                d = apply_common_overrides(d, args)
                cfg = config_from_dict(d, source="--resume")
            return run_training(cfg, None, args)
        if args.config is not None:
            d = load_config(args.config).to_dict()
            d["mode"] = "finetune"
            if args.task:
                d["tasks"] = [args.task]
            task = d.get("tasks", ["sr"])[0]
            if args.data:
                d.setdefault("data", {})["roots"] = {task: str(args.data)}
            if args.init:
                d["init"] = str(args.init)
            if args.preset:
                d.setdefault("model", {})["preset"] = args.preset
        else:
            if not args.task or not args.data:
                raise CliError("give --task and --data (or --config cfg.yaml)")
            d = finetune_config(args.task, args.data, args.init or "scratch", args.preset or "small",
                                args.steps).to_dict()
        if args.freeze_body:
            d["freeze_body"] = True
        mo = d.setdefault("model", {}).setdefault("overrides", {})
        if args.upscale is not None:
            mo["upscale"] = args.upscale
        if args.in_chans is not None:
            mo["in_chans"] = args.in_chans
        cfg = config_from_dict(apply_common_overrides(d, args), source="command line")
    except ConfigError as err:
        raise CliError(str(err)) from None
    if cfg.init != "scratch" and not Path(cfg.init).exists():
        raise CliError(f"--from {cfg.init}: no such file; give a unifmir or official UniFMIR checkpoint, or 'scratch'")
    if args.out is None:
        raise CliError("give --out RUN_DIR (the folder for checkpoints and logs)")
    return run_training(cfg, args.out, args)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "finetune",
        help="fine-tune one task from a checkpoint or from scratch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from unifmir.tasks import TASK_NAMES

    p.add_argument("--task", choices=TASK_NAMES, help="task to train")
    p.add_argument("--data", type=Path, help="dataset folder (unifmir synth layout: train/, test/, [val/])")
    p.add_argument("--from", dest="init", metavar="CKPT_OR_OFFICIAL|scratch",
                   help="initial weights: our checkpoint, any official UniFMIR checkpoint, a bundle written by "
                   "`unifmir export` (BUNDLE.zip, its folder or its rdf.yaml), or 'scratch'")
    p.add_argument("--freeze-body", action="store_true", help="train only the task head and tail")
    p.add_argument("--upscale", type=positive_int, help="new SR scale (e.g. 1 for DeepBacs-style SR): a fresh upsampler")
    p.add_argument("--in-chans", type=positive_int, help="new input channel count: a fresh head")
    add_common_training_args(p)
    p.set_defaults(func=run)
