"""The error every checkpoint problem raises, and the helpers its messages share."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

__all__ = ["CheckpointError", "LIST_LIMIT", "describe", "listing"]

LIST_LIMIT = 5
"""Keys shown per category in error messages."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the network (message says why and how to fix)."""


def describe(path: Path | None) -> str:
    """How a message names the checkpoint: its path, or "the given object" for a loaded one."""
    return str(path) if path is not None else "the given object"


def listing(items: Sequence[str], what: str) -> str:
    """One message line: how many ``what`` there are and the first :data:`LIST_LIMIT` of them."""
    shown = ", ".join(items[:LIST_LIMIT])
    more = f", ... and {len(items) - LIST_LIMIT} more" if len(items) > LIST_LIMIT else ""
    noun = what if len(items) == 1 else what + "s"
    return f"  {len(items)} {noun}: {shown}{more}"
