"""Atomic file writing: write to a temporary sibling, fsync, then rename over the target.

Used everywhere the package writes results, so an interrupted run never leaves a half-written
file where a complete one is expected:

* :func:`atomic_path` yields a temporary sibling ``.NAME.<pid>.<random>.tmp<suffix>``; on success
  the file is flushed to disk (``fsync``), renamed onto the target and the folder's entry is
  flushed too (``fsync`` of the directory), so after a crash or power loss the target is either
  the old file or the complete new one. On an exception the temporary file is removed.
* :func:`atomic_dir` does the same for a whole folder (staged as ``.NAME.<pid>.<random>.tmp``).
* A run that is killed (``SIGKILL``, power loss) cannot clean up; its temporary files carry the
  writer's process id, and the next write into the same folder removes those of dead processes
  (:func:`clean_stale`).
* :func:`check_writable` refuses to replace an existing file without an explicit flag;
  :func:`ensure_writable_dir` checks, before any work starts, that a folder can be written.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

__all__ = ["atomic_path", "atomic_dir", "check_writable", "ensure_writable_dir", "clean_stale", "fsync_dir",
           "is_temp_name"]

# ".<target name>.<pid>.<random>.tmp[<suffix>]"
_TEMP_RE = re.compile(r"^\..+\.(\d+)\.[a-z0-9_]{8}\.tmp(\.[^/]*)?$")
_CLEANED: set[str] = set()


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is a temporary name made by this module."""
    return _TEMP_RE.match(name) is not None


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def clean_stale(folder: str | os.PathLike, *, force: bool = False) -> list[Path]:
    """Remove temporary files/folders left in ``folder`` by writers that were killed.

    Only names made by this module whose process id no longer runs are removed (a live writer's
    temporary files are kept). Each folder is scanned once per process unless ``force``.
    Returns the removed paths.
    """
    folder = Path(folder)
    key = str(folder.absolute())
    if key in _CLEANED and not force:
        return []
    _CLEANED.add(key)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _TEMP_RE.match(entry.name)
        if m is None or _pid_alive(int(m.group(1))):
            continue
        p = Path(entry.path)
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(p)
            else:
                p.unlink()
            removed.append(p)
        except OSError:
            pass
    return removed


def fsync_dir(folder: str | os.PathLike) -> None:
    """Flush a folder's entries (renames, new files) to disk; a no-op where unsupported."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # e.g. filesystems that refuse fsync on directories
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            if p.is_file() and not p.is_symlink():
                _fsync_file(p)
        fsync_dir(dirpath)


def check_writable(path: str | os.PathLike, overwrite: bool) -> Path:
    """Raise ``FileExistsError`` if ``path`` exists and ``overwrite`` is false."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"{path} already exists; choose another output or pass --overwrite/--force to replace it"
        )
    return path


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def ensure_writable_dir(folder: str | os.PathLike, what: str = "output folder") -> Path:
    """Check that ``folder`` (created later if missing) can be written; return it.

    The nearest existing folder on the path must be a folder in which this process can create a
    file (tested by creating and removing an empty temporary file, so read-only file systems are
    caught as well as permissions). Nothing is left behind. Raises ``NotADirectoryError`` or
    ``PermissionError`` with a message naming the folder and the fix.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{what} {folder} exists and is a file, not a folder; choose another path")
    base = _nearest_existing(folder)
    if not base.is_dir():
        raise NotADirectoryError(
            f"cannot create {what} {folder}: {base} is a file, not a folder; choose another path"
        )
    hint = "choose another location or fix the folder's permissions"
    if not os.access(base, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write to {base} (permission denied); {hint}")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".unifmir-write-test.{os.getpid()}.", suffix=".tmp", dir=base)
    except OSError as err:
        reason = os.strerror(err.errno) if err.errno else str(err)
        raise PermissionError(f"cannot write to {base} ({reason}); {hint}") from None
    os.close(fd)
    os.unlink(probe)
    return folder


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}."


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success fsync it and rename it onto ``path``.

    On any exception the temporary file is removed and ``path`` is untouched. The temporary
    name keeps the target's suffix so that writers that infer the format from it still work.
    Temporary files of killed writers in the same folder are removed first (:func:`clean_stale`).
    """
    path = check_writable(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.is_file():  # mkstemp creates 0600; give the file the usual umask permissions
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp_path, 0o666 & ~umask)
            _fsync_file(tmp_path)
        os.replace(tmp_path, path)
        fsync_dir(path.parent)
    finally:
        if tmp_path.is_dir() and not tmp_path.is_symlink():
            shutil.rmtree(tmp_path, ignore_errors=True)
        elif tmp_path.exists() or tmp_path.is_symlink():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty staging folder next to ``path``; on success it replaces ``path``.

    The staged files are fsynced before the swap. An existing ``path`` is refused unless
    ``overwrite``; when replaced, it is first renamed aside and deleted only after the new folder
    is in place (a crash in between leaves a stale ``.NAME.<pid>...tmp`` folder that the next write
    removes, never a missing target). On an exception the staging folder is removed and ``path``
    is untouched.
    """
    path = check_writable(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(path.parent, force=True)  # folder writes are rare: always look for a killed run's staging
    stage = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent))
    old: Path | None = None
    try:
        yield stage
        _fsync_tree(stage)
        if path.exists() or path.is_symlink():
            old = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent))
            os.rmdir(old)
            os.replace(path, old)
            try:
                os.replace(stage, path)
            except BaseException:
                os.replace(old, path)  # put the previous folder back
                old = None
                raise
        else:
            os.replace(stage, path)
        fsync_dir(path.parent)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
        if old is not None and (old.exists() or old.is_symlink()):
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink()
