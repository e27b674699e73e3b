"""``unifmir experiment transfer``: from scratch vs pretrained vs pretrained + fine-tuned."""

from __future__ import annotations

import argparse
from pathlib import Path

from unifmir.cli import CliError
from unifmir.cli._checks import check_model_path, check_output_dir, device, int_at_least, nonneg_int, positive_float, positive_int
from unifmir.cli._options import add_threads_option
from unifmir.tasks import TASKS

__all__ = ["register", "run_transfer_cli"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``experiment`` sub-command (with its ``transfer`` experiment)."""
    p = subparsers.add_parser(
        "experiment",
        help="run a comparison experiment (transfer: does pretraining help on your data?)",
        description="Comparison experiments on your own data.",
    )
    sub = p.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)
    t = sub.add_parser(
        "transfer",
        help="(a) from scratch vs (b) pretrained vs (c) pretrained + fine-tuned, at equal steps",
        description="At an equal step budget, train (a) from scratch and (c) from the pretrained "
        "checkpoint on DIR/train, apply (b) the pretrained checkpoint without fine-tuning, and "
        "evaluate all three and the classical baselines on the same held-out images (DIR/test, or "
        "the held-out folds with --folds K). Writes transfer.md (table), transfer.csv (per image) "
        "and transfer.json in --out.",
    )
    transfer_tasks = sorted(n for n, s in TASKS.items() if s.transfer_experiment)
    t.add_argument("--task", required=True, choices=transfer_tasks, help="task of the new data")
    t.add_argument("--data", required=True, metavar="DIR", help="dataset root (see `unifmir synth`)")
    t.add_argument("--from", dest="pretrained", required=True, metavar="CKPT",
                   help="pretrained checkpoint (ours or official; multi- or single-task)")
    t.add_argument("--steps", type=positive_int, default=300,
                   help="optimiser steps of each trained arm (default: 300)")
    t.add_argument("--folds", type=int_at_least(2), default=None, metavar="K",
                   help="K-fold cross-validation on DIR/train instead of train/test")
    t.add_argument("--preset", choices=("small", "full"), default="small",
                   help="training preset of both trained arms (default: small)")
    t.add_argument("--protocol", choices=("care", "unifmir"), default="care",
                   help="metric protocol (default: care)")
    t.add_argument("--lr", type=positive_float, default=None,
                   help="learning rate of both trained arms (default: the preset's, 1e-4)")
    t.add_argument("--patch", type=int_at_least(8), default=None,
                   help="training patch side in input pixels (default: the preset's)")
    t.add_argument("--seed", type=nonneg_int, default=0)
    t.add_argument("--out", default="transfer-experiment", metavar="DIR",
                   help="output folder (default: ./transfer-experiment)")
    t.add_argument("--overwrite", action="store_true", help="reuse a non-empty --out folder")
    add_threads_option(t)
    t.add_argument("--device", type=device, default=None, help="torch device (default: auto)")
    t.set_defaults(func=run_transfer_cli)


def _overrides(args: argparse.Namespace) -> dict[str, dict[str, object]] | None:
    """Training-config overrides of both trained arms from ``--lr`` / ``--patch``."""
    out: dict[str, dict[str, object]] = {}
    if args.lr is not None:
        out["optim"] = {"lr": args.lr}
    if args.patch is not None:
        out["data"] = {"patch_size": args.patch}
    return out or None


def run_transfer_cli(args: argparse.Namespace) -> int:
    """Run ``unifmir experiment transfer``."""
    from unifmir.training.experiment import run_transfer

    data, ckpt, out = Path(args.data), Path(args.pretrained), Path(args.out)
    if not (data / "train").is_dir():
        raise CliError(f"--data {data}: no train/ folder; make one with `unifmir synth`")
    if args.folds is None and not (data / "test").is_dir():
        raise CliError(f"--data {data}: no test/ folder; add one or use --folds K")
    if args.folds is not None and args.folds < 2:
        raise CliError("--folds needs K >= 2")
    if args.steps < 1:
        raise CliError("--steps must be at least 1")
    if args.lr is not None and args.lr <= 0:
        raise CliError("--lr must be positive")
    if args.patch is not None and args.patch < 8:
        raise CliError("--patch must be at least 8 (the Swin window)")
    check_model_path("--from", ckpt)
    check_output_dir("--out", out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise CliError(f"--out {out} is not empty; pass --overwrite or choose another folder")
    result = run_transfer(args.task, data, ckpt, out, steps=args.steps, folds=args.folds,  # in --threads' count
                          preset=args.preset, protocol=args.protocol, seed=args.seed,
                          device=args.device, overrides=_overrides(args))
    print(result.to_markdown())
    print(f"wrote {out / 'transfer.md'}, {out / 'transfer.csv'} and {out / 'transfer.json'}")
    return 0
