"""``unifmir zoo build``: build the model suite from the recipes in ``packaging/``."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    zoo = subparsers.add_parser("zoo", help="build the model suite (zoo_models/) from packaging/ recipes")
    zsub = zoo.add_subparsers(dest="zoo_command", metavar="ZOO_COMMAND", required=True)
    build = zsub.add_parser(
        "build",
        help="pretrain once, fine-tune, evaluate and export every (or the named) suite model",
        description="Pretrain the suite's shared multi-task checkpoint (cached), then fine-tune, "
        "evaluate against the classical baseline and export (all gates) each recipe; writes "
        "OUT/<name>/ and OUT/<name>.zip and regenerates OUT/README.md. Resumable.",
    )
    build.add_argument("names", nargs="*", help="recipe ids (default: all); see packaging/recipes/")
    build.add_argument("--out", type=Path, default=Path("zoo_models"), help="output folder (default: %(default)s)")
    build.add_argument("--work", type=Path, default=Path(".zoo-work"),
                       help="work folder for data, runs and step records (default: %(default)s)")
    build.add_argument("--packaging", type=Path, default=None, help="recipes folder (default: the repo's packaging/)")
    build.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                       help="skip finished steps and continue interrupted runs (default: on)")
    build.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    build.add_argument("--step-scale", type=float, default=1.0,
                       help="multiply every training budget (quick trial builds)")
    build.add_argument("--data-scale", type=float, default=1.0, help="multiply every dataset size")
    build.set_defaults(func=_build)
    listing = zsub.add_parser("list", help="list the suite's recipes")
    listing.add_argument("--packaging", type=Path, default=None)
    listing.set_defaults(func=_list)


def _build(args: argparse.Namespace) -> int:
    from unifmir.zoo.build import BuildOptions, build_suite

    opts = BuildOptions(out=args.out, work=args.work, packaging=args.packaging, resume=args.resume,
                        device=args.device, step_scale=args.step_scale, data_scale=args.data_scale)
    for r in build_suite(args.names or None, opts):
        print(f"{r['id']}: {r['zip']}  PSNR {r['psnr']:.2f} dB (baseline {r['baseline']}: "
              f"{r['baseline_psnr'] if r['baseline_psnr'] is None else round(r['baseline_psnr'], 2)})")
    return 0


def _list(args: argparse.Namespace) -> int:
    from unifmir.zoo.recipe import load_recipes

    for rid, r in load_recipes(args.packaging).items():
        print(f"{rid}\t{r.task}\t{r.metadata.name}")
    return 0
