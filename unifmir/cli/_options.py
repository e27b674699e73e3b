"""Options shared by every sub-command that runs PyTorch: ``--threads``.

A sub-command adds the option with :func:`add_threads_option`; :func:`unifmir.cli.main` runs the
command inside :func:`command_threads`, so the thread count (see :mod:`unifmir._threads`) applies to
the whole command and to the processes it starts, and a bad value is one CliError naming the flag.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Iterator

from unifmir.cli import CliError

__all__ = ["THREADS_HELP", "add_threads_option", "command_threads"]

THREADS_HELP = ("CPU threads of PyTorch: auto (default: OMP_NUM_THREADS when set, else the cores that the "
                "other processes leave free, from the load average) or a number; use 1 on a busy or shared "
                "machine")


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--threads auto|N`` to ``parser`` (checked when the command starts)."""
    parser.add_argument("--threads", default="auto", metavar="auto|N", help=THREADS_HELP)


@contextlib.contextmanager
def command_threads(args: argparse.Namespace, name: str) -> Iterator[None]:
    """Run the block with the thread count of ``args.threads`` (nothing when the command has no
    ``--threads``); an oversubscribed count is reported as ``<name>: warning: ...`` on stderr."""
    threads = getattr(args, "threads", None)
    if threads is None:
        yield
        return
    from unifmir._threads import cpu_threads, parse_threads

    try:
        parse_threads(threads)
    except ValueError:
        raise CliError(f"--threads {threads}: expected auto or a positive whole number of CPU threads "
                       "(e.g. --threads 1 on a busy machine)") from None

    def warn(message: str) -> None:
        print(f"{name}: warning: {message}", file=sys.stderr)

    with cpu_threads(threads, warn=warn):
        yield
