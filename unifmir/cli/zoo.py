"""``unifmir zoo build``: build the model suite from the recipes in ``packaging/``."""

from __future__ import annotations

import argparse
from pathlib import Path

from unifmir.cli._checks import check_output_dir, device, positive_float
from unifmir.cli._options import add_threads_option

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
    build.add_argument("--device", type=device, default="cpu", help="cpu, cuda or cuda:N")
    build.add_argument("--step-scale", type=positive_float, default=1.0,
                       help="multiply every training budget (quick trial builds)")
    build.add_argument("--data-scale", type=positive_float, default=1.0, help="multiply every dataset size")
    build.add_argument("--weights-from", type=Path, default=None, metavar="FOLDER",
                       help="take each recipe's trained weights from FOLDER/<name>/ (e.g. zoo_models) instead of "
                       "fine-tuning: re-export and re-evaluate without retraining")
    add_threads_option(build)
    build.set_defaults(func=_build)
    pack = zsub.add_parser("pack", help="zip committed bundle folders for upload (rdf.yaml as written)")
    pack.add_argument("names", nargs="+", help="bundle folder names under --out")
    pack.add_argument("--out", type=Path, default=Path("zoo_models"), help="suite folder (default: %(default)s)")
    pack.add_argument("--dest", type=Path, default=Path("."), help="folder for the zips (default: current folder)")
    pack.add_argument("--force", action="store_true", help="replace existing zips")
    pack.set_defaults(func=_pack)
    listing = zsub.add_parser("list", help="list the suite's recipes")
    listing.add_argument("--packaging", type=Path, default=None)
    listing.set_defaults(func=_list)


def _build(args: argparse.Namespace) -> int:
    from unifmir.zoo.build import BuildOptions, build_suite

    _check_packaging(args.packaging)
    check_output_dir("--out", args.out)
    check_output_dir("--work", args.work)
    _check_recipe_data(args.packaging, args.names)
    from unifmir._atomic import clean_stale

    for folder in (args.out, args.work / "steps"):
        clean_stale(folder, force=True)  # temporary files of a killed earlier build
    opts = BuildOptions(out=args.out, work=args.work, packaging=args.packaging, resume=args.resume,
                        device=args.device, step_scale=args.step_scale, data_scale=args.data_scale,
                        weights_from=args.weights_from)
    for r in build_suite(args.names or None, opts):
        print(f"{r['id']}: {r['zip']}  PSNR {r['psnr']:.2f} dB (baseline {r['baseline']}: "
              f"{r['baseline_psnr'] if r['baseline_psnr'] is None else round(r['baseline_psnr'], 2)})")
    return 0


def _pack(args: argparse.Namespace) -> int:
    from unifmir.zoo.build import pack_bundle

    for name in args.names:
        print(pack_bundle(args.out / name, args.dest / f"{name}.zip", force=args.force))
    return 0


def _check_packaging(folder: Path | None) -> None:
    """``--packaging``: a folder holding recipes/*.yaml (suite.yaml is needed only for the pretraining)."""
    from unifmir.cli import CliError

    if folder is None:
        return
    if not folder.is_dir():
        raise CliError(f"--packaging {folder}: no such folder; give the folder that holds recipes/ and suite.yaml")
    if not any((folder / "recipes").glob("*.yaml")):
        raise CliError(f"--packaging {folder}: no recipes/*.yaml in it; see the repository's packaging/ folder")


def _check_recipe_data(packaging: Path | None, names: list[str]) -> None:
    """Validate the user datasets (``data.source: folder``) of the recipes to build, before any training."""
    from unifmir.data.datasets import validate_dataset
    from unifmir.zoo.recipe import load_recipes

    recipes = load_recipes(packaging)
    for rid in names or list(recipes):
        recipe = recipes.get(rid)
        if recipe is not None and recipe.data.source == "folder" and recipe.data.path:
            validate_dataset(Path(recipe.data.path), recipe.task, ("train", "test"), progress=True)


def _list(args: argparse.Namespace) -> int:
    from unifmir.zoo.recipe import load_recipes

    _check_packaging(args.packaging)
    for rid, r in load_recipes(args.packaging).items():
        print(f"{rid}\t{r.task}\t{r.metadata.name}")
    return 0
