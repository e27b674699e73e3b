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

from . import CliError
from ._checks import positive_int
from ._training import add_common_training_args, check_resume_dir, common_changes, run_training

__all__ = ["register", "run"]


def run(args: argparse.Namespace) -> int:
    from unifmir.training.config import ConfigChanges, ConfigError, apply_changes, finetune_config, load_config

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
                saved = load_config(args.resume / "config.yaml")
                cfg = apply_changes(saved, ConfigChanges(**common_changes(args, saved.device)), source="--resume")
            return run_training(cfg, None, args)
        if args.config is not None:
            base = load_config(args.config)
            changes = ConfigChanges(mode="finetune", task=args.task, data=args.data, init=args.init or None,
                                    preset=args.preset, freeze_body=True if args.freeze_body else None,
                                    model_overrides=_model_overrides(args), **common_changes(args, base.device))
        else:
            if not args.task or not args.data:
                raise CliError("give --task and --data (or --config cfg.yaml)")
            base = finetune_config(args.task, args.data, args.init or "scratch", args.preset or "small", args.steps)
            changes = ConfigChanges(freeze_body=True if args.freeze_body else None,
                                    model_overrides=_model_overrides(args), **common_changes(args, base.device))
        cfg = apply_changes(base, changes, source="command line")
    except ConfigError as err:
        raise CliError(str(err)) from None
    if cfg.init != "scratch" and not Path(cfg.init).exists():
        raise CliError(f"--from {cfg.init}: no such file; give a unifmir or official UniFMIR checkpoint, or 'scratch'")
    if args.out is None:
        raise CliError("give --out RUN_DIR (the folder for checkpoints and logs)")
    return run_training(cfg, args.out, args)


def _model_overrides(args: argparse.Namespace) -> dict[str, int]:
    """``--upscale`` / ``--in-chans``: a task variant (fresh upsampler / head)."""
    given = {"upscale": args.upscale, "in_chans": args.in_chans}
    return {k: v for k, v in given.items() if v is not None}


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
