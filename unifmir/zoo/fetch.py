"""Download and unpack the official UniFMIR release into a cache, resumably, and verify it.

Only the standard library's ``urllib`` is used for HTTP: the download needs nothing more than
a ranged GET, and keeping it dependency-free lets the test suite serve an archive from a
loopback ``http.server``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from unifmir._atomic import atomic_dir, clean_stale
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
            fh.flush()
            os.fsync(fh.fileno())
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


UNPACKED_FROM = ".unifmir-archive.json"
"""File in an unpacked release folder recording the archive it came from (sha256, size, mtime)."""


def _archive_id(archive: Path, sha256: str | None = None) -> dict[str, object]:
    st = archive.stat()
    return {"archive": archive.name, "sha256": sha256 or sha256sum(archive), "size": st.st_size,
            "mtime_ns": st.st_mtime_ns}


def _unpacked_from(dest: Path) -> dict[str, object] | None:
    try:
        data = json.loads((dest / UNPACKED_FROM).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def unpack(archive: Path, dest: Path, *, sha256: str | None = None) -> Path:
    """Unpack a ``.tgz`` into ``dest`` atomically (staging folder, then rename); return ``dest``.

    An existing ``dest`` is reused only when it was unpacked from this very archive (its
    :data:`UNPACKED_FROM` record matches the archive's sha256; ``sha256``, when known, saves
    hashing it again); otherwise it is replaced. Members with absolute paths, ``..`` components,
    links or devices are refused (the ``data`` extraction filter), so a hostile archive cannot
    write outside ``dest``. A killed unpack leaves only a staging folder, which the next call removes.
    """
    dest = Path(dest)
    archive = Path(archive)
    st = archive.stat()
    record = _unpacked_from(dest) if dest.is_dir() else None
    if record is not None:
        same_file = record.get("size") == st.st_size and record.get("mtime_ns") == st.st_mtime_ns
        if sha256 is not None and record.get("sha256") == sha256.lower():
            return dest
        if sha256 is None and same_file:
            return dest
        if sha256 is None and record.get("sha256") == sha256sum(archive):
            return dest
    ident = _archive_id(archive, sha256.lower() if sha256 else None)
    with atomic_dir(dest, overwrite=True) as tmp:
        try:
            with tarfile.open(archive, "r:*") as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, EOFError, OSError) as err:
            raise FetchError(
                f"{archive} is not a readable .tgz archive ({err}); delete it and fetch again"
            ) from err
        (tmp / UNPACKED_FROM).write_text(json.dumps(ident, indent=1), encoding="utf-8")
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
    from unifmir.model.network import network_task

    net = load_official(path, task=model.task)
    if network_task(net) != model.task:
        raise FetchError(f"{path} loads as task {network_task(net)!r}, expected {model.task!r}")


def fetch_official(url: str = RELEASE_URL, cache: Path | None = None, *, progress: bool = True,
                   sha256: str | None = None) -> Path:
    """Download (resumable) and unpack the release into the cache; return the unpacked folder.

    Raises :class:`FetchError` when the archive's sha256 differs from ``sha256`` (when given)
    or when the unpacked release lacks checkpoints or holds one that does not load.
    """
    cache = Path(cache) if cache is not None else default_cache_dir()
    name = Path(urllib.parse.urlparse(url).path).name or "model.tgz"
    if sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sha256.strip()):
        raise FetchError(f"--sha256 {sha256!r} is not a sha256 digest (64 hexadecimal digits)")
    dest = cache / "official" / name.split(".")[0]
    clean_stale(dest.parent, force=True)  # staging folders of a killed earlier unpack
    archive = download(url, cache / "downloads" / name, progress=progress)
    if sha256 is not None and (actual := sha256sum(archive)) != sha256.strip().lower():
        archive.unlink()
        record = _unpacked_from(dest) if dest.is_dir() else None
        if record is not None and record.get("sha256") == actual:  # unpacked from the bad archive
            shutil.rmtree(dest, ignore_errors=True)
        raise FetchError(f"{archive.name}: sha256 {actual} does not match the expected {sha256}; "
                         "the corrupt download was deleted, run the command again")
    root = unpack(archive, dest, sha256=sha256.strip().lower() if sha256 else None)
    report = verify_release(root)
    if not report.ok:
        details = [f"missing: experiment/{m.run}/{m.filename}" for m in report.missing]
        details += [f"{p}: {msg}" for p, msg in report.problems.items()]
        raise FetchError(f"the release unpacked at {root} is incomplete or damaged:\n  " + "\n  ".join(details))
    return root
