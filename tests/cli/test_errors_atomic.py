"""``unifmir._atomic``: the fsync its docstring promises, pid-named temporary files, stale clean-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from unifmir import _atomic
from unifmir._atomic import atomic_dir, atomic_path, clean_stale, ensure_writable_dir, is_temp_name


def _fsynced(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        try:
            calls.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            calls.append("?")
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return calls


def test_atomic_path_fsyncs_the_file_and_its_folder(tmp_path, monkeypatch) -> None:
    calls = _fsynced(monkeypatch)
    with atomic_path(tmp_path / "a.txt") as tmp:
        assert is_temp_name(tmp.name) and f".{os.getpid()}." in tmp.name
        tmp.write_text("x")
    assert (tmp_path / "a.txt").read_text() == "x"
    if Path("/proc/self/fd").is_dir():
        assert any(c.endswith(".tmp.txt") for c in calls), calls  # the file, before the rename
        assert str(tmp_path) in calls, calls  # the folder, after it
    else:  # pragma: no cover
        assert len(calls) >= 2


def test_atomic_dir_fsyncs_and_swaps(tmp_path, monkeypatch) -> None:
    calls = _fsynced(monkeypatch)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "old.txt").write_text("old")
    with atomic_dir(tmp_path / "d", overwrite=True) as stage:
        (stage / "new.txt").write_text("new")
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["d"]
    assert len(calls) >= 2
    with pytest.raises(FileExistsError):
        with atomic_dir(tmp_path / "d"):
            pass


def test_failure_leaves_the_previous_file_and_no_temporary(tmp_path) -> None:
    (tmp_path / "a.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "a.txt") as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert (tmp_path / "a.txt").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_clean_stale_removes_only_dead_writers_files(tmp_path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    stale = tmp_path / f".a.tif.{pid}.abcd1234.tmp.tif"
    stale.write_text("partial")
    stale_dir = tmp_path / f".ds.{pid}.efgh5678.tmp"
    stale_dir.mkdir()
    live = tmp_path / f".b.tif.{os.getpid()}.ijkl9012.tmp.tif"
    live.write_text("being written")
    mine = tmp_path / ".hidden.txt"
    mine.write_text("user file")
    removed = clean_stale(tmp_path, force=True)
    assert sorted(removed) == sorted([stale, stale_dir])
    assert live.exists() and mine.exists()


def test_ensure_writable_dir_leaves_nothing_behind(tmp_path) -> None:
    ensure_writable_dir(tmp_path / "new" / "deeper")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "f").write_text("")
    with pytest.raises(NotADirectoryError, match="is a file"):
        ensure_writable_dir(tmp_path / "f" / "out")
    _atomic._CLEANED.discard(str(tmp_path))
