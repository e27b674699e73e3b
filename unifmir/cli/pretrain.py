"""``unifmir pretrain``: multi-task pretraining of the UniFMIR network (all parameters trained).

Examples::

    unifmir pretrain --config pretrain.yaml --out runs/pretrain
    unifmir pretrain --data sr=data/sr --data denoise=data/dn --preset small --steps 600 --out runs/pt
    unifmir pretrain --resume runs/pretrain
    torchrun --nproc_per_node=4 -m unifmir pretrain --config pretrain.yaml --out runs/pt

A config file for pretraining looks like::

    mode: pretrain
    tasks: [sr, denoise, isotropic, projection, volumetric]
    task_sampling: epoch            # or: step
    data: {roots: {sr: data/sr, denoise: data/dn, ...}}
    model: {preset: small}
    optim: {lr: 5.0e-5}
    schedule: {steps: 2000, steps_per_epoch: 100}
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from . import CliError
from ._training import add_common_training_args, check_resume_dir, common_changes, run_training

__all__ = ["register", "run"]


def _parse_data(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        task, sep, path = item.partition("=")
        if not sep or not task or not path:
            raise CliError(f"--data expects TASK=DIR (e.g. sr=data/sr), got {item!r}")
        out[task] = path
    return out


def run(args: argparse.Namespace) -> int:
    from unifmir.training.config import ConfigChanges, ConfigError, apply_changes, load_config, pretrain_config

    try:
        if args.resume is not None:
            if args.config is not None or args.data:
                raise CliError("--resume continues a run with its own config.yaml; do not give --config/--data")
            check_resume_dir(args.resume)
            cfg = None
            if args.steps is not None or args.early_stopping is not None:
                saved = load_config(args.resume / "config.yaml")
                cfg = apply_changes(saved, ConfigChanges(**common_changes(args, saved.device)), source="--resume")
            return run_training(cfg, None, args)
        if args.config is not None:
            base = load_config(args.config)
            specific = ConfigChanges(mode="pretrain", roots=_parse_data(args.data) if args.data else None,
                                     preset=args.preset)
        elif args.data:
            base = pretrain_config(_parse_data(args.data), args.preset or "small", args.steps,
                                   task_sampling=args.task_sampling or "epoch")
            specific = ConfigChanges()
        else:
            raise CliError("give --config cfg.yaml or --data TASK=DIR (repeatable)")
        changes = dataclasses.replace(specific, task_sampling=args.task_sampling or None, init=args.init or None,
                                      **common_changes(args, base.device))
        cfg = apply_changes(base, changes, source="command line")
    except ConfigError as err:
        raise CliError(str(err)) from None
    if cfg.init != "scratch" and not Path(cfg.init).exists():
        raise CliError(f"--from {cfg.init}: no such file")
    if args.out is None:
        raise CliError("give --out RUN_DIR (the folder for checkpoints and logs)")
    return run_training(cfg, args.out, args)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "pretrain",
        help="multi-task pretraining on several task datasets",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", action="append", metavar="TASK=DIR", help="a task's dataset folder (repeatable)")
    p.add_argument("--task-sampling", choices=["step", "epoch"], help="draw one task per step or per epoch")
    p.add_argument("--from", dest="init", metavar="CKPT|scratch",
                   help="continue from a multi-task checkpoint (default: scratch)")
    add_common_training_args(p)
    p.set_defaults(func=run)
