"""The ``unifmir`` command line.

Each sub-command lives in its own module of this package and exposes
``register(subparsers) -> None``; the module adds its parser and sets ``func`` (a callable taking
the parsed ``argparse.Namespace`` and returning an exit code) with ``parser.set_defaults``.
Modules are discovered automatically, so adding a command never edits this file.

One rule for errors: a user mistake, a missing, unreadable or corrupt file, a permission or
disk problem ends in one line ``unifmir <command>: error: <what is wrong and how to fix it>``
(exit code 2), never in a traceback. Sub-commands check their inputs up front and raise
:class:`CliError`; the exception classes that the package's validators and the operating system
raise for such problems are turned into the same kind of message here (:func:`user_message`).
Anything else is a bug in unifmir and is reported as an internal error (exit code 1). The global
flag ``--debug`` (anywhere on the command line, or ``UNIFMIR_DEBUG=1``) prints the traceback too.
``SIGTERM`` is handled like Ctrl-C, so temporary files are removed on the way out (exit 130).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import pickle
import pkgutil
import signal
import sys
import traceback
from typing import Sequence

__all__ = ["main", "build_parser", "CliError", "user_message"]


class CliError(Exception):
    """An error caused by the user's input; printed without a traceback (exit code 2)."""


def _add_debug(parser: argparse.ArgumentParser, top: bool) -> None:
    """``--debug`` on ``parser`` and, recursively, on all its sub-command parsers."""
    if not any("--debug" in a.option_strings for a in parser._actions):
        parser.add_argument("--debug", action="store_true",
                            default=False if top else argparse.SUPPRESS,
                            help="show the full traceback of an error (for bug reports)")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _add_debug(sub, False)


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
    _add_debug(parser, True)
    return parser


# --------------------------------------------------------------------------------------------
# errors -> messages


_OS_HINTS = {
    errno.EACCES: "check the permissions of the file/folder or choose another location",
    errno.EPERM: "check the permissions of the file/folder or choose another location",
    errno.EROFS: "the file system is read-only: choose another location",
    errno.ENOSPC: "the disk is full: free some space or choose another location",
    errno.EDQUOT: "the disk quota is exceeded: free some space or choose another location",
    errno.ENOENT: "check the path",
    errno.EISDIR: "give a file, not a folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EEXIST: "choose another output or pass --overwrite/--force",
    errno.ENAMETOOLONG: "use a shorter path",
    errno.EMFILE: "too many open files: raise the limit (ulimit -n) or use fewer workers",
}


def _os_message(err: OSError) -> str:
    text = str(err)
    raw = err.strerror is not None and text.startswith(f"[Errno {err.errno}]")
    if not raw:  # our own message (a single argument), already naming the file and the fix
        return text
    where = " ".join(f"{f}" for f in (err.filename, err.filename2) if f is not None)
    hint = _OS_HINTS.get(err.errno or -1, "")
    return f"{err.strerror}" + (f": {where}" if where else "") + (f"; {hint}" if hint else "")


def user_message(err: BaseException) -> str | None:
    """The one-line message for an error caused by the user's input or environment, or ``None``
    when ``err`` is not such an error (a bug)."""
    import yaml

    from unifmir.training.loop import TrainingDiverged
    from unifmir.zoo.fetch import FetchError

    if isinstance(err, CliError):
        return str(err)
    if isinstance(err, MemoryError) or type(err).__name__ == "OutOfMemoryError":
        first = next((ln.strip() for ln in str(err).splitlines() if ln.strip()), "")
        return (f"out of memory{f' ({first[:200]})' if first else ''}; use a smaller --tile, --batch-size or "
                "--patch-size, or a machine/GPU with more memory")
    if isinstance(err, OSError):
        return _os_message(err)
    if isinstance(err, yaml.YAMLError):
        where = getattr(err, "problem_mark", None)
        name = getattr(where, "name", None)
        src = f" in {name}" if name and not str(name).startswith("<") else ""
        return (f"invalid YAML{src}: {' '.join(str(err).split())}. Only plain YAML is read (no !!python or "
                "other tags); fix the file")
    if isinstance(err, pickle.UnpicklingError):
        return (f"refusing to load a file that holds pickled Python objects or code ({err}); unifmir reads "
                "only plain tensor files (torch.load weights_only=True)")
    if isinstance(err, (ValueError, FetchError, TrainingDiverged, EOFError)):
        text = str(err).strip()
        return text or type(err).__name__
    gate_error = _gate_error_class()
    if gate_error is not None and isinstance(err, gate_error):
        return str(err)
    return None


def _gate_error_class() -> type | None:
    mod = sys.modules.get("unifmir.export.gates")
    return getattr(mod, "GateError", None) if mod is not None else None


def _command_name(args: argparse.Namespace) -> str:
    parts = [getattr(args, "command", None), getattr(args, "zoo_command", None), getattr(args, "experiment", None)]
    return " ".join(p for p in parts if p)


class _Terminated(BaseException):
    """Raised in the main thread on SIGTERM so that ``finally`` blocks (temporary files) run."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # argparse already printed the usage error (or --help/--version)
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 2)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 1
    debug = bool(getattr(args, "debug", False)) or os.environ.get("UNIFMIR_DEBUG", "") not in ("", "0")
    name = f"unifmir {_command_name(args)}"
    previous = None
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread
        previous = None
    try:
        from unifmir.cli._options import command_threads

        with command_threads(args, name):  # --threads: the whole command and the processes it starts
            return int(func(args) or 0)
    except (KeyboardInterrupt, _Terminated):
        if debug:
            traceback.print_exc()
        print(f"{name}: interrupted; nothing half-written was left under a final name", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the one place where errors become messages
        message = user_message(err)
        if debug:
            traceback.print_exc()
        if message is not None:
            print(f"{name}: error: {message}", file=sys.stderr)
            return 2
        print(f"{name}: internal error ({type(err).__name__}: {err}). This is a bug in unifmir, not in your "
              "input: rerun with --debug to see the traceback and please report it", file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
