"""``unifmir export``: a checkpoint (ours or official) -> a validated bioimage.io bundle."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from unifmir.cli import CliError
from unifmir.cli._options import add_threads_option

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``export`` sub-command."""
    from unifmir.tasks import TASK_NAMES

    p = subparsers.add_parser(
        "export",
        help="export a model as a bioimage.io bundle (deepImageJ, ilastik, bioimageio.core)",
        description="Export a UniFMIR checkpoint (ours or an official release file) as a bioimage.io "
        "model bundle (spec 0.5). Every gate (bioimageio.core test_model per weight format, tiled vs "
        "whole image, deepImageJ and ilastik constraints) runs before anything is written.",
    )
    p.add_argument("--model", required=True,
                   help="checkpoint file (unifmir or official format), or a bundle written by `unifmir export` "
                   "(BUNDLE.zip, its folder or its rdf.yaml)")
    p.add_argument("--task", choices=TASK_NAMES, default=None, help="task (default: the checkpoint's)")
    p.add_argument("--out", required=True, help="bundle path NAME.zip (or a folder with --folder)")
    p.add_argument("--folder", action="store_true", help="write an unpacked folder instead of a zip")
    p.add_argument("--metadata", default=None, help="YAML file with metadata fields (name, authors, cite, ...)")
    p.add_argument("--name", default=None, help="model name")
    p.add_argument("--description", default=None, help="one-paragraph description")
    p.add_argument("--authors", nargs="+", default=None, help="author names (see --author for details)")
    p.add_argument("--author", action="append", default=None, metavar="'NAME[; affiliation=..][; orcid=..][; github_user=..]'",
                   help="one author with optional affiliation, ORCID, email and GitHub user (repeatable; "
                   "github_user makes bioimage.io validation contact GitHub, give it only if wanted)")
    p.add_argument("--maintainer", action="append", default=None, metavar="'github_user=..[; name=..][; affiliation=..]'",
                   help="one maintainer (repeatable; bioimage.io requires github_user for maintainers)")
    p.add_argument("--git-repo", default=None, help="URL of the repository with the training code")
    p.add_argument("--cite", nargs="+", default=None, help="extra citations (DOI or URL)")
    p.add_argument("--license", default=None, help="SPDX license id of the weights (default MIT)")
    p.add_argument("--data", default=None, help="test image (TIFF/npy, task input axes); default: synthetic")
    dim = p.add_mutually_exclusive_group()
    dim.add_argument("--2d", dest="two_d", action="store_const", const=True, default=None,
                     help="denoise: export the 2D (b, c, y, x) variant (single-slice models)")
    dim.add_argument("--3d", dest="two_d", action="store_const", const=False,
                     help="denoise: export the 3D stack variant")
    p.add_argument("--no-onnx", action="store_true", help="do not include ONNX weights")
    p.add_argument("--check-libtorch", dest="check_libtorch", action="store_const", const=True, default=None,
                   help="require the libtorch 2.0.0 check (downloads libtorch once); default: run it when cached")
    p.add_argument("--skip-libtorch", dest="check_libtorch", action="store_const", const=False)
    p.add_argument("--force", action="store_true", help="overwrite an existing bundle")
    add_threads_option(p)  # also the libtorch check's process (OMP_NUM_THREADS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the export; returns the exit code."""
    from unifmir.export.bundle import export_model
    from unifmir.export.docs import ExportMetadata, load_metadata
    from unifmir.export.gates import GateError

    import yaml

    from unifmir.cli._checks import check_model_path, check_not_inputs, check_output_dir

    model = check_model_path("--model", args.model)  # a file, or a bundle folder
    out = Path(args.out)
    if out.exists() and not args.force:
        raise CliError(f"{out} already exists; choose another --out or pass --force to replace it")
    if not args.folder and out.suffix.lower() != ".zip":
        raise CliError(f"--out must end in .zip (got {out.name}), or pass --folder")
    check_not_inputs([out], [model] + [Path(p) for p in (args.metadata, args.data) if p])  # even with --force
    check_output_dir("--out", out.parent)  # before any gate runs
    from unifmir._atomic import clean_stale

    clean_stale(out.parent, force=True)  # temporary files of a killed earlier export
    try:
        meta = load_metadata(args.metadata) if args.metadata else ExportMetadata()
        authors = (args.authors or []) + (args.author or [])
        overrides = {
            "name": args.name, "description": args.description, "authors": authors or None,
            "maintainers": args.maintainer, "git_repo": args.git_repo, "cite": args.cite, "license": args.license,
        }
        meta = meta.merged({k: v for k, v in overrides.items() if v is not None})
    except (ValueError, FileNotFoundError) as err:
        raise CliError(str(err)) from None
    except yaml.YAMLError as err:
        raise CliError(f"--metadata {args.metadata} is not plain YAML ({' '.join(str(err).split())}); "
                       "remove tags such as !!python/... and keep only keys and values") from None
    try:
        report = export_model(
            model, args.task, out, folder=args.folder, metadata=meta, force=args.force,
            data=args.data, two_d=args.two_d, onnx=not args.no_onnx, check_libtorch=args.check_libtorch,
        )
    except GateError as err:
        print(f"unifmir export: {err}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0
