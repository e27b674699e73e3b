"""Helpers of the bad-input tests: run the CLI in-process, snapshot a folder tree, check a refusal."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import pytest

from unifmir.cli import main

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "unifmir-reference"


@dataclass
class Result:
    rc: int
    out: str
    err: str


def cli(argv: Sequence[str], capsys: pytest.CaptureFixture[str]) -> Result:
    """Run ``unifmir ARGV`` in this process; returns exit code and captured output."""
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return Result(rc, cap.out, cap.err)


def tree(root: Path) -> dict[str, tuple[str, int, str]]:
    """Every entry under ``root``: kind, size and content hash (files), for before/after comparison."""
    out: dict[str, tuple[str, int, str]] = {}
    if not root.exists():
        return out
    for dirpath, dirs, files in os.walk(root):
        for d in dirs:
            p = Path(dirpath) / d
            out[str(p.relative_to(root))] = ("dir", 0, "")
        for f in files:
            p = Path(dirpath) / f
            if p.is_symlink():
                out[str(p.relative_to(root))] = ("link", 0, os.readlink(p))
                continue
            data = p.read_bytes()
            out[str(p.relative_to(root))] = ("file", len(data), hashlib.sha1(data).hexdigest())
    return out


def changes(before: dict, after: dict) -> list[str]:
    """Human-readable differences between two :func:`tree` snapshots."""
    diff = [f"new: {k}" for k in sorted(set(after) - set(before))]
    diff += [f"removed: {k}" for k in sorted(set(before) - set(after))]
    diff += [f"changed: {k}" for k in sorted(set(before) & set(after)) if before[k] != after[k]]
    return diff


class Watch:
    """Snapshots of several folders; :meth:`assert_unchanged` after a refused command."""

    def __init__(self, *roots: Path) -> None:
        self.roots = [Path(r) for r in roots]
        self.before = [tree(r) for r in self.roots]

    def assert_unchanged(self) -> None:
        for root, before in zip(self.roots, self.before):
            diff = changes(before, tree(root))
            assert not diff, f"files changed under {root}: {diff[:10]}"


def assert_refused(res: Result, *needles: str, rc: int = 2) -> str:
    """A clean refusal: exit code ``rc``, no traceback, an ``error:`` line holding every needle."""
    assert res.rc == rc, f"exit code {res.rc}, stderr:\n{res.err}"
    assert "Traceback (most recent call last)" not in res.err, res.err
    assert "error:" in res.err, res.err
    assert "internal error" not in res.err, res.err
    text = " ".join(res.err.split())
    for n in needles:
        assert n in text, f"{n!r} not in the message:\n{res.err}"
    return text


def can_write(folder: Path) -> bool:
    try:
        fd, name = tempfile.mkstemp(dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(name)
    return True


def hostile_pickle(path: Path, marker: Path) -> Path:
    """A ``torch.load``-able file whose unpickling (without weights_only) would create ``marker``."""

    class Evil:
        def __reduce__(self):  # noqa: D105
            return (os.system, (f"touch {marker}",))

    import torch

    torch.save({"format": "unifmir-train-state/1", "step": 1, "payload": Evil()}, path)
    return path


def run_subprocess(code: str, *, cwd: Path, timeout: float = 240, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run Python ``code`` in a fresh interpreter (the repository importable), capturing output."""
    full = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
                OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", **(env or {}))
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=full, capture_output=True, text=True,
                          timeout=timeout)


def temp_debris(folders: Iterable[Path]) -> list[Path]:
    """Temporary names made by unifmir._atomic (``.NAME.<pid>.<random>.tmp*``) under ``folders``."""
    from unifmir._atomic import is_temp_name

    found = []
    for folder in folders:
        for dirpath, dirs, files in os.walk(folder):
            found += [Path(dirpath) / n for n in dirs + files if is_temp_name(n)]
    return found
