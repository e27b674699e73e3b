"""``unifmir fetch-official`` and ``unifmir import-official``: the official UniFMIR release."""

from __future__ import annotations

import argparse
from pathlib import Path

from unifmir.cli import CliError
from unifmir.cli._checks import check_output_dir, sha256_hex
from unifmir.cli._options import add_threads_option

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    fetch = subparsers.add_parser(
        "fetch-official",
        help="download and unpack the official UniFMIR release (resumable, verified)",
        description="Download model.tgz of the UniFMIR GitHub release 2023.10.05 into a cache "
        "(resuming an interrupted download), unpack it and verify the nine checkpoints.",
    )
    from unifmir.zoo.official import RELEASE_URL

    fetch.add_argument("--url", default=RELEASE_URL, help="archive URL (default: %(default)s)")
    fetch.add_argument("--cache", type=Path, default=None,
                       help="cache folder (default: $UNIFMIR_CACHE or ~/.cache/unifmir)")
    fetch.add_argument("--sha256", type=sha256_hex, default=None, help="expected sha256 of the archive")
    fetch.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    fetch.set_defaults(func=_fetch)

    imp = subparsers.add_parser(
        "import-official",
        help="turn the official release's checkpoints into bioimage.io bundles",
        description="Convert every checkpoint of an unpacked UniFMIR release (experiment/<run>/*.pt) "
        "into a validated bioimage.io bundle with the right task, variant, dataset and citation.",
    )
    imp.add_argument("--release", type=Path, required=True,
                     help="unpacked release folder (holding experiment/), e.g. from fetch-official")
    imp.add_argument("--out", type=Path, required=True, help="output folder for the bundles")
    imp.add_argument("--only", nargs="*", default=None,
                     help="run names to convert (default: all found), e.g. SwinIRCCPs")
    imp.add_argument("--folder", action="store_true", help="also write unzipped bundle folders")
    imp.add_argument("--force", action="store_true", help="replace existing bundles")
    add_threads_option(imp)
    imp.set_defaults(func=_import)


def _fetch(args: argparse.Namespace) -> int:
    from unifmir.zoo.fetch import FetchError, default_cache_dir, fetch_official

    check_output_dir("--cache", args.cache if args.cache is not None else default_cache_dir())
    try:
        root = fetch_official(args.url, args.cache, progress=not args.no_progress, sha256=args.sha256)
    except FetchError as err:
        raise CliError(str(err)) from err
    print(root)
    return 0


def _import(args: argparse.Namespace) -> int:
    from unifmir.zoo.importer import import_release

    if not args.release.is_dir():
        raise CliError(f"--release {args.release}: no such folder; unpack model.tgz of the UniFMIR release there "
                       "or run `unifmir fetch-official`")
    check_output_dir("--out", args.out)
    reports = import_release(args.release, args.out, only=args.only, folder=args.folder, force=args.force)
    for name, path in reports.items():
        print(f"{name}: {path}")
    return 0
