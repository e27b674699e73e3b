"""Download and unpack the official UniFMIR release into a cache, resumably, and verify it.

Only the standard library's ``urllib`` is used for HTTP: the download needs nothing more than
a ranged GET, and keeping it dependency-free lets the test suite serve an archive from a
loopback ``http.server``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from unifmir.zoo.official import OFFICIAL_MODELS, RELEASE_URL, OfficialModel, scan_release

__all__ = ["default_cache_dir", "download", "unpack", "verify_release", "fetch_official", "FetchError"]

_CHUNK = 1 << 20


class FetchError(RuntimeError):
    """Downloading, unpacking or verifying the release failed."""


def default_cache_dir() -> Path:
    """``$UNIFMIR_CACHE`` or ``~/.cache/unifmir`` (:func:`unifmir._cache.cache_root`)."""
    from unifmir._cache import cache_root

    return cache_root()


def download(url: str, dest: Path, *, progress: bool = True, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest``, resuming a previous partial download (``dest.part``).

    The partial file grows with HTTP ``Range`` requests; when the server ignores the range (200
    instead of 206) the download restarts from zero. ``dest`` appears only once complete.
    """
    dest = Path(dest)
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # range not satisfiable: the part file is already complete
            os.replace(part, dest)
            return dest
        raise FetchError(f"download of {url} failed: HTTP {err.code} {err.reason}") from err
    except (urllib.error.URLError, OSError) as err:
        raise FetchError(
            f"cannot reach {url} ({err}); check the network, or download model.tgz by hand and run "
            "`unifmir import-official --release DIR` on the unpacked folder"
        ) from err
    with response:
        resumed = response.status == 206
        mode = "ab" if resumed else "wb"
        start = have if resumed else 0
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        with open(part, mode) as fh, tqdm(
            total=total, initial=start, unit="B", unit_scale=True, desc=dest.name, disable=not progress
        ) as bar:
            while chunk := response.read(_CHUNK):
                fh.write(chunk)
                bar.update(len(chunk))
    if total is not None and part.stat().st_size != total:
        raise FetchError(
            f"download of {url} stopped at {part.stat().st_size} of {total} bytes; run the command "
            "again to resume"
        )
    os.replace(part, dest)
    return dest


def sha256sum(path: Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def unpack(archive: Path, dest: Path) -> Path:
    """Unpack a ``.tgz`` into ``dest`` atomically (temporary directory, then rename).

    Members with absolute paths, ``..`` components, links or devices are refused (the
    ``data`` extraction filter), so a hostile archive cannot write outside ``dest``.
    """
    dest = Path(dest)
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, EOFError, OSError) as err:
            raise FetchError(
                f"{archive} is not a readable .tgz archive ({err}); delete it and fetch again"
            ) from err
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


@dataclass
class ReleaseCheck:
    """Result of :func:`verify_release`."""

    root: Path
    found: dict[OfficialModel, Path] = field(default_factory=dict)
    missing: list[OfficialModel] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.problems


def verify_release(root: Path, *, require_all: bool = True,
                   check: Callable[[OfficialModel, Path], None] | None = None) -> ReleaseCheck:
    """Check that the unpacked release holds the nine checkpoints and that each one loads.

    Each file is read with ``torch.load(weights_only=True)`` and recognised by
    :func:`unifmir.model.checkpoints.load_official` as the variant the release says it is
    (``check`` may replace that test).
    """
    found = scan_release(root)
    result = ReleaseCheck(root=Path(root), found=found,
                          missing=[m for m in OFFICIAL_MODELS if m not in found] if require_all else [])
    check = check or _check_loads
    for model, path in found.items():
        try:
            check(model, path)
        except Exception as err:  # report every broken file, not only the first
            result.problems[str(path)] = f"{type(err).__name__}: {err}"
    return result


def _check_loads(model: OfficialModel, path: Path) -> None:
    from unifmir.model.checkpoints import load_official

    net = load_official(path, task=model.task)
    if getattr(net, "task", None) != model.task:
        raise FetchError(f"{path} loads as task {net.task!r}, expected {model.task!r}")


def fetch_official(url: str = RELEASE_URL, cache: Path | None = None, *, progress: bool = True,
                   sha256: str | None = None) -> Path:
    """Download (resumable) and unpack the release into the cache; return the unpacked folder.

    Raises :class:`FetchError` when the archive's sha256 differs from ``sha256`` (when given)
    or when the unpacked release lacks checkpoints or holds one that does not load.
    """
    cache = Path(cache) if cache is not None else default_cache_dir()
    name = Path(urllib.request.urlparse(url).path).name or "model.tgz"
    archive = download(url, cache / "downloads" / name, progress=progress)
    if sha256 is not None and (actual := sha256sum(archive)) != sha256.lower():
        archive.unlink()
        raise FetchError(f"{archive.name}: sha256 {actual} does not match the expected {sha256}; "
                         "the corrupt download was deleted, run the command again")
    root = unpack(archive, cache / "official" / name.split(".")[0])
    report = verify_release(root)
    if not report.ok:
        details = [f"missing: experiment/{m.run}/{m.filename}" for m in report.missing]
        details += [f"{p}: {msg}" for p, msg in report.problems.items()]
        raise FetchError(f"the release unpacked at {root} is incomplete or damaged:\n  " + "\n  ".join(details))
    return root
