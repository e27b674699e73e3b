"""The ``unifmir`` command line.

Each sub-command lives in its own module of this package and exposes
``register(subparsers) -> None``; the module adds its parser and sets ``func`` (a callable taking
the parsed ``argparse.Namespace`` and returning an exit code) with ``parser.set_defaults``.
Modules are discovered automatically, so adding a command never edits this file.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import Sequence

__all__ = ["main", "build_parser", "CliError"]


class CliError(Exception):
    """An error caused by the user's input; printed without a traceback (exit code 2)."""


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every discovered sub-command."""
    from unifmir import __version__

    parser = argparse.ArgumentParser(
        prog="unifmir",
        description="UniFMIR for fluorescence-microscopy image restoration: "
        "synthesise data, pretrain, fine-tune, evaluate, predict and export to bioimage.io.",
    )
    parser.add_argument("--version", action="version", version=f"unifmir {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 1
    try:
        return int(func(args) or 0)
    except CliError as err:
        print(f"unifmir {args.command}: error: {err}", file=sys.stderr)
        return 2
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        print(f"unifmir {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
