"""``unifmir demo``: the end-to-end demo on built-in synthetic data (the README's first command)."""

from __future__ import annotations

import argparse
from pathlib import Path

from unifmir.cli import CliError
from unifmir.cli._checks import check_output_dir, device, positive_int
from unifmir.cli._options import add_threads_option

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` sub-command."""
    p = subparsers.add_parser(
        "demo",
        help="end-to-end demo: synthesise data, pretrain, fine-tune, evaluate (a few CPU minutes)",
        description="Synthesise a small eukaryotic pretraining collection and an E. coli-like "
        "3D-denoising dataset, pretrain the small multi-task model briefly, fine-tune it on the "
        "bacteria, and print an evaluation table (care protocol) against the classical baselines. "
        "Set UNIFMIR_DEMO_STEPS=PRETRAIN,FINETUNE for a quicker run.",
    )
    p.add_argument("--out", default="unifmir-demo", metavar="DIR",
                   help="output folder (default: ./unifmir-demo)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the outputs of an earlier demo in --out")
    add_threads_option(p)
    p.add_argument("--device", type=device, default=None, help="torch device (default: auto)")
    p.add_argument("--pretrain-steps", type=positive_int, default=None, help="pretraining steps")
    p.add_argument("--finetune-steps", type=positive_int, default=None, help="fine-tuning steps")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo and print its evaluation table."""
    import dataclasses

    from unifmir.training.demo import run_demo, settings_from_env

    settings = settings_from_env()
    for name in ("pretrain_steps", "finetune_steps"):
        value = getattr(args, name)
        if value is not None:
            if value < 1:
                raise CliError(f"--{name.replace('_', '-')} must be at least 1")
            settings = dataclasses.replace(settings, **{name: value})
    check_output_dir("--out", args.out)
    try:  # in the --threads count that unifmir.cli.main set
        result = run_demo(Path(args.out), settings=settings, overwrite=args.overwrite,
                          device=args.device, progress=not args.quiet)
    except FileExistsError as err:
        raise CliError(str(err)) from None
    print()
    print(result.evaluation.to_markdown("unifmir demo: E. coli-like 3D denoising"))
    print("time: " + ", ".join(f"{k} {v:.0f} s" for k, v in result.timings.items()))
    print(f"outputs in {result.out}/ (evaluation.csv, evaluation.md, pretrain/, finetune/)")
    return 0
