"""Prove that a TorchScript file loads and reproduces its outputs in **libtorch 2.0.0**.

deepImageJ (through JDLL/DJL) runs TorchScript weights on libtorch, newest engine 2.0.0. Our
TorchScript files are written by a much newer torch, and they load in 2.0.0 only if every operator
their code calls exists there with a compatible schema (a scripted ``F.interpolate``, for example,
drags in ``aten::_upsample_lanczos2d_aa``, which 2.0.0 lacks). The only reliable check is to run the
file in libtorch 2.0.0 itself, which is what this module does:

1. :func:`ensure_libtorch` downloads, once, the PyPI wheels ``torch==2.0.0`` (cp311, manylinux x86_64,
   about 620 MB: headers, ``libtorch_cpu.so``, ``libc10.so``) and the two CUDA runtime wheels whose
   libraries ``libtorch_cpu.so`` links against (``libcupti.so.11.7``, ``libcudart.so.11.0``; they are
   loaded, never used), and extracts only ``include/`` and the needed libraries into
   ``$UNIFMIR_CACHE/libtorch-2.0.0`` (default ``~/.cache/unifmir/libtorch-2.0.0``, about 560 MB). The
   wheels are fetched with ``pip download`` (so the user's index, proxy and certificate settings
   apply) and pinned by sha256. Nothing is installed into any environment. Concurrent processes
   serialise on a lock file; extraction goes to a temporary directory that is renamed into place, so
   an interrupted download never leaves a half-extracted tree. ``UNIFMIR_LIBTORCH_DIR`` points at a
   pre-extracted tree instead (``include/`` + ``lib/``; an official libtorch 2.0.0 zip works too).
2. :func:`ensure_loader` compiles ``libtorch_loader.cpp`` (shipped next to this module) against it with
   ``g++`` (``$CXX``), once per source/compiler/libtorch combination, into ``$UNIFMIR_CACHE/bin``.
3. :func:`check_torchscript` writes the inputs (and expected outputs) as raw little-endian tensor
   files, runs the loader in a subprocess (``torch::jit::load`` + ``forward``) and returns a
   :class:`LibtorchResult`.

Runs on Linux x86_64 only (the wheels are Linux builds). Command line::

    python -m unifmir.export.libtorch_check MODEL.pt --input x.npy [--expected y.npy] [--atol 1e-4]
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import platform
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np

if TYPE_CHECKING:  # torch is imported only where it is used
    import torch

__all__ = [
    "LIBTORCH_VERSION",
    "LibtorchResult",
    "LibtorchUnavailableError",
    "cache_root",
    "check_torchscript",
    "ensure_libtorch",
    "ensure_loader",
    "is_available",
    "read_tensor_file",
    "write_tensor_file",
]

LIBTORCH_VERSION = "2.0.0"
LOADER_SOURCE = Path(__file__).with_name("libtorch_loader.cpp")

_ENV_CACHE = "UNIFMIR_CACHE"
_ENV_LIBTORCH_DIR = "UNIFMIR_LIBTORCH_DIR"
_MARKER = "UNIFMIR_LIBTORCH_OK.json"


@dataclasses.dataclass(frozen=True)
class _Wheel:
    requirement: str
    sha256: str
    # zip member prefix -> destination subdirectory (whole tree copied)
    trees: tuple[tuple[str, str], ...]
    # zip member path -> destination (relative to the libtorch dir)
    files: tuple[tuple[str, str], ...]


# The exact files deepImageJ's engine corresponds to; pinned by hash so a changed upload is refused.
_WHEELS: tuple[_Wheel, ...] = (
    _Wheel(
        requirement="torch==2.0.0",
        sha256="09651bff72e439d004c991f15add0c397c66f98ab36fe60d5514b44e4da722e8",
        trees=(("torch/include/", "include/"),),
        files=(
            ("torch/lib/libtorch_cpu.so", "lib/libtorch_cpu.so"),
            ("torch/lib/libc10.so", "lib/libc10.so"),
            ("torch/lib/libgomp-a34b3233.so.1", "lib/libgomp-a34b3233.so.1"),
        ),
    ),
    _Wheel(
        requirement="nvidia-cuda-cupti-cu11==11.7.101",
        sha256="e0cfd9854e1f2edaa36ca20d21cd0bdd5dcfca4e3b9e130a082e05b33b6c5895",
        trees=(),
        files=(("nvidia/cuda_cupti/lib/libcupti.so.11.7", "lib/libcupti.so.11.7"),),
    ),
    _Wheel(
        requirement="nvidia-cuda-runtime-cu11==11.7.99",
        sha256="cc768314ae58d2641f07eac350f40f99dcb35719c4faff4bc458a7cd2b119e31",
        trees=(),
        files=(("nvidia/cuda_runtime/lib/libcudart.so.11.0", "lib/libcudart.so.11.0"),),
    ),
)
_DOWNLOAD_BYTES = 633_000_000  # the three wheels
_EXTRACTED_BYTES = 560_000_000
_REQUIRED = ("include/torch/script.h", "lib/libtorch_cpu.so", "lib/libc10.so")


class LibtorchUnavailableError(RuntimeError):
    """libtorch 2.0.0 (or a compiler for the loader) could not be obtained."""


@dataclasses.dataclass
class LibtorchResult:
    """Outcome of running a TorchScript file in libtorch 2.0.0.

    ``ok``: loaded, ran, and (when expected outputs were given) every output matched within
    ``atol + rtol * |expected|``. ``loaded``: ``torch::jit::load`` succeeded. ``ran``: ``forward``
    succeeded. ``max_abs_diff``: over all compared outputs (``None`` if nothing was compared, NaN
    if an output had NaNs). ``message``: the reason on failure (for a load failure, libtorch's
    error, which names the missing operator). ``outputs``: what libtorch 2.0.0 computed.
    """

    ok: bool
    loaded: bool
    max_abs_diff: float | None
    output_shapes: list[tuple[int, ...]]
    message: str
    ran: bool = False
    libtorch_version: str | None = None
    outputs: list[np.ndarray] = dataclasses.field(default_factory=list, repr=False)


# --------------------------------------------------------------------------------------------
# cache and locking


from unifmir._cache import cache_root  # noqa: E402  (re-exported: the package-wide cache folder)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Exclusive advisory lock (``flock``) held for the duration of the block."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _check_platform() -> None:
    if sys.platform != "linux" or platform.machine().lower() not in ("x86_64", "amd64"):
        raise LibtorchUnavailableError(
            f"the libtorch {LIBTORCH_VERSION} check runs on Linux x86_64 only (this is "
            f"{sys.platform}/{platform.machine()}); run it on a Linux machine or in CI"
        )


def _missing(root: Path) -> list[str]:
    return [rel for rel in _REQUIRED if not (root / rel).is_file()]


# --------------------------------------------------------------------------------------------
# libtorch 2.0.0


def ensure_libtorch() -> Path:
    """Return a directory with libtorch 2.0.0's ``include/`` and ``lib/``, downloading it if needed.

    ``$UNIFMIR_LIBTORCH_DIR`` wins if set (it is validated, never modified). Otherwise the tree lives
    in ``cache_root()/libtorch-2.0.0`` and is downloaded on first use (about 630 MB from PyPI, a few
    seconds to minutes depending on the network). Raises :class:`LibtorchUnavailableError` with the
    reason and the way out when the registry cannot be reached.
    """
    env = os.environ.get(_ENV_LIBTORCH_DIR)
    if env:
        root = Path(env).expanduser().resolve()
        missing = _missing(root)
        if missing:
            raise LibtorchUnavailableError(
                f"{_ENV_LIBTORCH_DIR}={env} is not a libtorch tree: missing {', '.join(missing)}. "
                "Point it at a directory holding include/ and lib/ of libtorch 2.0.0, or unset it to "
                "let unifmir download libtorch 2.0.0 from PyPI."
            )
        return root

    _check_platform()
    cache = cache_root()
    target = cache / f"libtorch-{LIBTORCH_VERSION}"
    if (target / _MARKER).is_file() and not _missing(target):
        return target
    with _file_lock(cache / f"libtorch-{LIBTORCH_VERSION}.lock"):
        # another process may have finished while we waited for the lock
        if (target / _MARKER).is_file() and not _missing(target):
            return target
        _download_and_extract(cache, target)
    return target


def is_available() -> bool:
    """True if libtorch 2.0.0 is usable without downloading (cached, or ``$UNIFMIR_LIBTORCH_DIR``).

    Cheap (no download, no compile): for callers that run the check only when it costs nothing.
    """
    env = os.environ.get(_ENV_LIBTORCH_DIR)
    if env:
        return not _missing(Path(env).expanduser())
    target = cache_root() / f"libtorch-{LIBTORCH_VERSION}"
    return (target / _MARKER).is_file() and not _missing(target)


def _download_and_extract(cache: Path, target: Path) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(cache).free
    need = _DOWNLOAD_BYTES + _EXTRACTED_BYTES + 50_000_000
    if free < need:
        raise LibtorchUnavailableError(
            f"not enough disk space in {cache} to fetch libtorch {LIBTORCH_VERSION}: "
            f"{free / 1e9:.1f} GB free, {need / 1e9:.1f} GB needed. Free some space or set "
            f"{_ENV_CACHE} to another directory."
        )
    # leftovers of interrupted attempts (we hold the lock, so nobody else is using them)
    for stale in cache.glob(f".libtorch-{LIBTORCH_VERSION}.tmp*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".libtorch-{LIBTORCH_VERSION}.tmp", dir=cache))
    try:
        wheel_dir = tmp / "wheels"
        tree = tmp / "tree"
        wheel_dir.mkdir()
        tree.mkdir()
        t0 = time.monotonic()
        _pip_download(wheel_dir)
        t_download = time.monotonic() - t0
        for spec in _WHEELS:
            _extract_wheel(_find_wheel(wheel_dir, spec), spec, tree)
        missing = _missing(tree)
        if missing:  # pragma: no cover - would mean the pinned wheels changed layout
            raise LibtorchUnavailableError(f"downloaded wheels lack {', '.join(missing)}")
        manifest = {
            "libtorch_version": LIBTORCH_VERSION,
            "wheels": {w.requirement: w.sha256 for w in _WHEELS},
            "download_seconds": round(t_download, 1),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (tree / _MARKER).write_text(json.dumps(manifest, indent=2) + "\n")
        if target.exists():  # incomplete tree from an older, interrupted layout
            shutil.rmtree(target)
        os.replace(tree, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _pip_download(dest: Path) -> None:
    req = dest / "requirements.txt"
    req.write_text("".join(f"{w.requirement} --hash=sha256:{w.sha256}\n" for w in _WHEELS))
    cmd = [
        sys.executable, "-m", "pip", "download",
        "--no-deps", "--only-binary=:all:", "--require-hashes",
        "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
        "--platform", "manylinux1_x86_64",
        "-r", str(req), "-d", str(dest),
    ]  # fmt: skip
    env = dict(os.environ)
    env["PIP_CONSTRAINT"] = ""  # a user constraint such as torch==2.x must not block this download
    env.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    except subprocess.TimeoutExpired as exc:
        raise LibtorchUnavailableError(
            f"downloading libtorch {LIBTORCH_VERSION} from PyPI timed out after {exc.timeout:.0f} s"
            + _way_out()
        ) from None
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        if "No module named pip" in tail:
            reason = f"pip is not available in {sys.executable}"
        else:
            reason = "pip download failed (is the package registry reachable?)"
        raise LibtorchUnavailableError(
            f"could not download libtorch {LIBTORCH_VERSION} ({', '.join(w.requirement for w in _WHEELS)}): "
            f"{reason}.\n{tail}" + _way_out()
        )


def _way_out() -> str:
    return (
        f"\nEither give this machine access to PyPI, or fetch the wheels elsewhere, extract include/ and "
        f"the libraries (libtorch_cpu.so, libc10.so, libgomp-*.so.1, libcupti.so.11.7, libcudart.so.11.0) "
        f"into DIR/include and DIR/lib, and set {_ENV_LIBTORCH_DIR}=DIR."
    )


def _find_wheel(wheel_dir: Path, spec: _Wheel) -> Path:
    for path in wheel_dir.glob("*.whl"):
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        if digest.hexdigest() == spec.sha256:
            return path
    raise LibtorchUnavailableError(f"pip did not leave the wheel for {spec.requirement} in {wheel_dir}")


def _extract_wheel(wheel: Path, spec: _Wheel, tree: Path) -> None:
    files = dict(spec.files)
    found: set[str] = set()
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            name = info.filename
            if info.is_dir() or ".." in Path(name).parts:
                continue
            dest_rel = files.get(name)
            if dest_rel is None:
                for prefix, dest_prefix in spec.trees:
                    if name.startswith(prefix):
                        dest_rel = dest_prefix + name[len(prefix):]
                        break
            if dest_rel is None:
                continue
            dest = tree / dest_rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(dest, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            if name in files:
                found.add(name)
    lost = set(files) - found
    if lost:
        raise LibtorchUnavailableError(f"{wheel.name} lacks {', '.join(sorted(lost))}")


# --------------------------------------------------------------------------------------------
# the loader binary


def _uses_cxx11_abi(libdir: Path) -> bool:
    """True if libc10 was built with the new libstdc++ ABI (official ``cxx11-abi`` libtorch zips).

    Functions returning ``std::string`` carry the ``[abi:cxx11]`` tag (mangled ``B5cxx11``) only in
    new-ABI builds; the PyPI 2.0.0 wheel is a pre-cxx11 build.
    """
    override = os.environ.get("UNIFMIR_LIBTORCH_CXX11_ABI")
    if override in ("0", "1"):
        return override == "1"
    return b"B5cxx11" in (libdir / "libc10.so").read_bytes()


def _compiler() -> str:
    cxx = os.environ.get("CXX", "g++")
    found = shutil.which(cxx)
    if not found:
        raise LibtorchUnavailableError(
            f"no C++ compiler: {cxx!r} not found on PATH. Install g++ (e.g. `apt-get install g++`) or set "
            "CXX to a C++17 compiler; it is needed to build the libtorch 2.0.0 loader."
        )
    return found


def ensure_loader(libtorch_dir: str | os.PathLike | None = None) -> Path:
    """Return the path of the compiled loader, building it (about 10-60 s) if not cached."""
    root = Path(libtorch_dir).resolve() if libtorch_dir is not None else ensure_libtorch()
    libdir = root / "lib"
    cxx = _compiler()
    abi = "1" if _uses_cxx11_abi(libdir) else "0"
    source = LOADER_SOURCE.read_bytes()
    cxx_version = subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    flags = [
        "-std=c++17", "-O1", f"-D_GLIBCXX_USE_CXX11_ABI={abi}",
        "-I", str(root / "include"), "-I", str(root / "include" / "torch" / "csrc" / "api" / "include"),
    ]  # fmt: skip
    link = [
        "-L", str(libdir), "-Wl,--no-as-needed", "-Wl,--disable-new-dtags", f"-Wl,-rpath,{libdir}",
        "-ltorch_cpu", "-lc10",
    ]  # fmt: skip
    key = hashlib.sha256(
        b"\0".join([source, cxx_version.encode(), " ".join(flags + link).encode()])
    ).hexdigest()[:16]
    bindir = cache_root() / "bin"
    exe = bindir / f"libtorch_loader-{LIBTORCH_VERSION}-{key}"
    if exe.is_file() and os.access(exe, os.X_OK):
        return exe
    with _file_lock(bindir / ".build.lock"):
        if exe.is_file() and os.access(exe, os.X_OK):
            return exe
        fd, tmp = tempfile.mkstemp(prefix=f".{exe.name}.", suffix=".tmp", dir=bindir)
        os.close(fd)
        try:
            cmd = [cxx, *flags, str(LOADER_SOURCE), "-o", tmp, *link]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                tail = "\n".join(proc.stderr.strip().splitlines()[-25:])
                raise LibtorchUnavailableError(
                    f"compiling the libtorch {LIBTORCH_VERSION} loader failed:\n{' '.join(cmd)}\n{tail}"
                )
            os.chmod(tmp, 0o755)
            os.replace(tmp, exe)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return exe


# --------------------------------------------------------------------------------------------
# tensor exchange (mirrors read_tensor/write_tensor in libtorch_loader.cpp)

# (numpy kind, itemsize) -> dtype code of the loader's tensor files
_DTYPE_CODES: dict[tuple[str, int], int] = {("f", 4): 0, ("f", 8): 1, ("i", 4): 2, ("i", 8): 3, ("u", 1): 4, ("b", 1): 5}
_CODE_DTYPES: dict[int, np.dtype[Any]] = {0: np.dtype("<f4"), 1: np.dtype("<f8"), 2: np.dtype("<i4"), 3: np.dtype("<i8"), 4: np.dtype("u1"), 5: np.dtype("?")}


def write_tensor_file(path: str | os.PathLike, array: Any) -> None:
    """Write ``array`` in the loader's raw format (magic, version, dtype, ndim, int64 shape, data)."""
    arr = _to_numpy(array)
    code = _DTYPE_CODES.get((arr.dtype.kind, arr.dtype.itemsize))
    if code is None:
        raise TypeError(
            f"cannot pass an array of dtype {arr.dtype} to libtorch; use float32, float64, int32, int64, "
            "uint8 or bool"
        )
    arr = np.ascontiguousarray(arr, dtype=_CODE_DTYPES[code])  # little-endian, C order
    with open(path, "wb") as fh:
        fh.write(b"UFMT")
        fh.write(struct.pack("<III", 1, code, arr.ndim))
        fh.write(struct.pack(f"<{arr.ndim}q", *arr.shape))
        fh.write(arr.tobytes(order="C"))


def read_tensor_file(path: str | os.PathLike) -> np.ndarray:
    data = Path(path).read_bytes()
    if data[:4] != b"UFMT":
        raise ValueError(f"{path} is not a UFMT tensor file")
    version, code, ndim = struct.unpack_from("<III", data, 4)
    if version != 1 or code not in _CODE_DTYPES:
        raise ValueError(f"{path}: unsupported version {version} or dtype code {code}")
    shape = struct.unpack_from(f"<{ndim}q", data, 16)
    offset = 16 + 8 * ndim
    return np.frombuffer(data, dtype=_CODE_DTYPES[code], offset=offset).reshape(shape).copy()


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor, without importing torch
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _as_list(x: Any) -> list[np.ndarray]:
    if isinstance(x, (list, tuple)):
        return [_to_numpy(a) for a in x]
    return [_to_numpy(x)]


# --------------------------------------------------------------------------------------------
# the check


def check_torchscript(
    ts_path: str | os.PathLike | torch.jit.ScriptModule,
    inputs: Sequence[np.ndarray] | np.ndarray,
    expected: Sequence[np.ndarray] | np.ndarray | None = None,
    atol: float = 1e-4,
    rtol: float = 1e-4,
    timeout: float = 600,
    threads: int | None = None,
) -> LibtorchResult:
    """Load ``ts_path`` in libtorch 2.0.0, run ``forward(*inputs)`` and compare with ``expected``.

    ``ts_path``: a TorchScript file (or an in-memory ``torch.jit.ScriptModule``, saved to a temporary
    file first). ``inputs``: one array or a list, passed as positional tensors. ``expected``: one
    array or a list, matched in order against the tensors ``forward`` returns (a tensor, or a
    tuple/list of tensors, flattened); element-wise ``|got - expected| <= atol + rtol * |expected|``.
    Without ``expected`` the result is ok when the file loads and runs.

    Never raises for a model that fails in libtorch 2.0.0 (that is reported in the result); raises
    :class:`LibtorchUnavailableError` if libtorch 2.0.0 or the compiler cannot be obtained, and
    ``FileNotFoundError`` for a missing model file.
    """
    is_file = isinstance(ts_path, (str, os.PathLike))
    if is_file and not Path(ts_path).is_file():
        raise FileNotFoundError(f"TorchScript file not found: {ts_path}")
    if not is_file and not (callable(getattr(ts_path, "save", None)) and hasattr(ts_path, "code")):
        raise TypeError(
            f"expected a TorchScript file or a torch.jit.ScriptModule, got {type(ts_path).__name__}; "
            "script or trace the module first (torch.jit.script / torch.jit.trace)"
        )
    input_list = _as_list(inputs)
    expected_list = _as_list(expected) if expected is not None else []
    exe = ensure_loader()
    with tempfile.TemporaryDirectory(prefix="unifmir-libtorch-") as tmp_str:
        tmp = Path(tmp_str)
        if isinstance(ts_path, (str, os.PathLike)):
            model_path = Path(ts_path)
        else:  # a ScriptModule
            model_path = tmp / "model.pt"
            ts_path.save(str(model_path))
        cmd = [str(exe), str(model_path.resolve()), "--atol", repr(float(atol)), "--rtol", repr(float(rtol))]
        for i, arr in enumerate(input_list):
            write_tensor_file(tmp / f"input_{i}.bin", arr)
            cmd += ["--input", str(tmp / f"input_{i}.bin")]
        for i, arr in enumerate(expected_list):
            write_tensor_file(tmp / f"expected_{i}.bin", arr)
            cmd += ["--expected", str(tmp / f"expected_{i}.bin")]
        out_dir = tmp / "outputs"
        out_dir.mkdir()
        cmd += ["--save-output-dir", str(out_dir)]
        if threads:
            cmd += ["--threads", str(int(threads))]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, errors="replace")
        except subprocess.TimeoutExpired:
            return LibtorchResult(
                ok=False, loaded=False, max_abs_diff=None, output_shapes=[],
                message=f"libtorch {LIBTORCH_VERSION} loader timed out after {timeout:g} s",
            )  # fmt: skip
        report = _parse_report(proc.stdout)
        if report is None:
            why = (
                f"killed by signal {signal.Signals(-proc.returncode).name}"
                if proc.returncode < 0
                else f"exit status {proc.returncode}"
            )
            return LibtorchResult(
                ok=False, loaded=False, max_abs_diff=None, output_shapes=[],
                message=f"libtorch {LIBTORCH_VERSION} loader crashed ({why}) without a report:\n"
                + _tail(proc.stderr) + _tail(proc.stdout),
            )  # fmt: skip
        outputs = [read_tensor_file(p) for p in sorted(out_dir.glob("output_*.bin"), key=_out_index)]
    diff = report.get("max_abs_diff")
    if diff is None and report.get("ok") is False and "NaN" in report.get("message", ""):
        diff = float("nan")
    return LibtorchResult(
        ok=bool(report.get("ok")),
        loaded=bool(report.get("loaded")),
        ran=bool(report.get("ran")),
        max_abs_diff=None if diff is None else float(diff),
        output_shapes=[tuple(int(s) for s in shape) for shape in report.get("output_shapes", [])],
        message=str(report.get("message", "")),
        libtorch_version=report.get("libtorch_version"),
        outputs=outputs,
    )


def _out_index(path: Path) -> int:
    return int(path.stem.rsplit("_", 1)[1])


def _parse_report(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return None


def _tail(text: str, n: int = 20) -> str:
    lines = [ln for ln in (text or "").strip().splitlines() if "nvfuser" not in ln]
    return "\n".join(lines[-n:]) + ("\n" if lines else "")


# --------------------------------------------------------------------------------------------
# command line


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m unifmir.export.libtorch_check",
        description=f"Check that a TorchScript file loads and reproduces its outputs in libtorch {LIBTORCH_VERSION}.",
    )
    parser.add_argument("model", help="TorchScript file")
    parser.add_argument("--input", action="append", default=[], help=".npy input (repeat for several)")
    parser.add_argument("--expected", action="append", default=[], help=".npy expected output (repeatable)")
    parser.add_argument("--atol", type=float, default=1e-4)
    parser.add_argument("--rtol", type=float, default=1e-4)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args(argv)
    if not args.input:
        parser.error("give at least one --input .npy file")
    try:
        result = check_torchscript(
            args.model,
            [np.load(p) for p in args.input],
            [np.load(p) for p in args.expected] or None,
            atol=args.atol,
            rtol=args.rtol,
            timeout=args.timeout,
        )
    except (LibtorchUnavailableError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = {k: v for k, v in dataclasses.asdict(result).items() if k != "outputs"}
    print(json.dumps(summary))
    return 0 if result.ok else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
