"""Checks shared by the sub-commands: argparse types for numbers, and up-front input/output checks.

The argparse types reject invalid numbers at parse time (``--batch-size 0`` ends in a usage error
naming the flag, before anything is loaded or written). The ``check_*`` functions run at the start
of a sub-command, before any work, and raise :class:`unifmir.cli.CliError` naming the flag, the
file and the fix.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from pathlib import Path
from typing import Any, Callable, Iterable

from unifmir.cli import CliError

__all__ = [
    "int_at_least",
    "float_above",
    "fraction",
    "positive_int",
    "nonneg_int",
    "positive_float",
    "sha256_hex",
    "device",
    "check_model_path",
    "check_output_dir",
    "check_output_file",
    "check_not_inputs",
    "check_dataset_dir",
]


def int_at_least(least: int) -> Callable[[str], int]:
    """argparse type: an integer ``>= least``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
        return value

    parse.__name__ = f"integer >= {least}"
    return parse


def float_above(low: float, *, high: float | None = None, inclusive_high: bool = True) -> Callable[[str], float]:
    """argparse type: a finite number ``> low`` (and ``<= high`` / ``< high`` when given)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or value <= low:
            raise argparse.ArgumentTypeError(f"must be a number greater than {low:g}, got {text}")
        if high is not None and (value > high or (value == high and not inclusive_high)):
            raise argparse.ArgumentTypeError(
                f"must be {'at most' if inclusive_high else 'less than'} {high:g}, got {text}")
        return value

    parse.__name__ = "number"
    return parse


positive_int = int_at_least(1)
nonneg_int = int_at_least(0)
positive_float = float_above(0.0)


def fraction(text: str) -> float:
    """argparse type: a number in ``[0, 1)``."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1) (a share of the pairs), got {text}")
    return value


def device(text: str) -> str:
    """argparse type: a torch device name (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``)."""
    value = text.strip().lower()
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda, cuda:N, mps or auto, got {text!r}")
    return value


def sha256_hex(text: str) -> str:
    """argparse type: 64 hexadecimal digits."""
    value = text.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", value):
        raise argparse.ArgumentTypeError(f"expected a sha256 digest (64 hexadecimal digits), got {text!r}")
    return value


# --------------------------------------------------------------------------------------------
# up-front checks


def _bundle_names() -> tuple[str, ...]:
    """File names that make a folder a bioimage.io bundle readable by ``--model`` (none when
    unifmir cannot read bundles)."""
    try:
        from unifmir.model.bundles import RDF_NAMES
    except ImportError:  # pragma: no cover - bundle reading not available
        return ()
    return tuple(RDF_NAMES)


def check_model_path(flag: str, path: str | os.PathLike, *, allow_scratch: bool = False) -> Path:
    """A model given on the command line: an existing, readable checkpoint file (or bundle)."""
    p = Path(path)
    if allow_scratch and str(path) == "scratch":
        return p
    if not p.exists():
        alt = " or 'scratch'" if allow_scratch else ""
        raise CliError(f"{flag} {p}: no such checkpoint file; check the path, or give a unifmir or official "
                       f"UniFMIR checkpoint{alt}")
    if p.is_dir():
        names = _bundle_names()
        if any((p / n).is_file() for n in names):
            return p
        found = sorted(q.name for q in p.iterdir() if q.suffix.lower() in (".pt", ".pth", ".zip"))[:5]
        inside = f" (it holds {', '.join(found)})" if found else ""
        bundle = f" or a bundle folder holding {names[0]}" if names else ""
        raise CliError(f"{flag} {p} is a folder, not a checkpoint file{inside}; give the .pt/.pth file inside "
                       f"it{bundle}")
    if not os.access(p, os.R_OK):
        raise CliError(f"{flag} {p}: permission denied; make the file readable")
    if p.stat().st_size == 0:
        raise CliError(f"{flag} {p} is empty (0 bytes): the download or copy failed; fetch the file again")
    return p


def check_output_dir(flag: str, path: str | os.PathLike) -> Path:
    """An output folder (created later if missing) that this process can write."""
    from unifmir._atomic import ensure_writable_dir

    try:
        return ensure_writable_dir(path, what=f"{flag} folder")
    except OSError as err:
        raise CliError(f"{flag} {path}: {err}") from None


def check_output_file(flag: str, path: str | os.PathLike, *, overwrite: bool, overwrite_flag: str = "--overwrite") -> Path:
    """An output file: its folder writable, and not existing unless ``overwrite``."""
    p = Path(path)
    if p.is_dir():
        raise CliError(f"{flag} {p} is a folder; give a file name")
    if p.exists() and not overwrite:
        raise CliError(f"{flag} {p} already exists; choose another name or pass {overwrite_flag} to replace it")
    check_output_dir(flag, p.parent)
    return p


def _same(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def check_not_inputs(outputs: Iterable[Path], inputs: Iterable[Path], *, what: str = "input") -> None:
    """Refuse (even with --overwrite) when an output would replace one of the inputs."""
    ins = list(inputs)
    for out in outputs:
        for src in ins:
            if _same(Path(out), Path(src)):
                raise CliError(
                    f"the output {out} would replace the {what} {src}; --overwrite never replaces an input: "
                    "choose another --output folder"
                )


def check_dataset_dir(flag: str, path: str | os.PathLike) -> Path:
    """A dataset folder that exists and is a folder."""
    p = Path(path)
    if not p.exists():
        raise CliError(f"{flag} {p}: no such dataset folder; create one with `unifmir synth` or bring "
                       "DIR/train/{input,target}")
    if not p.is_dir():
        raise CliError(f"{flag} {p} is a file, not a dataset folder (DIR/train/{{input,target}}, see `unifmir synth`)")
    return p


def first_line(err: Any) -> str:
    """The first non-empty line of an error message."""
    return next((ln.strip() for ln in str(err).splitlines() if ln.strip()), type(err).__name__)
