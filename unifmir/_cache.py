"""The one cache folder of the package: ``$UNIFMIR_CACHE`` or ``~/.cache/unifmir``.

Downloads (official release, libtorch 2.0.0) and measured receptive fields live under it.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_root"]


def cache_root() -> Path:
    """``$UNIFMIR_CACHE`` (``~`` expanded) or ``~/.cache/unifmir``."""
    env = os.environ.get("UNIFMIR_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "unifmir"
