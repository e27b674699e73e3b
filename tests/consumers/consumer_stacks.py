"""The consumers' own Python stacks, as cached virtual environments, and the commands run in them.

Two stacks, each a virtual environment built once under ``$UNIFMIR_CACHE/consumer-envs/``
(default ``~/.cache/unifmir/consumer-envs/``) and reused by every later run:

* ``ilastik``: what ilastik runs models with. ilastik hands models to tiktorch, and tiktorch 26.5.0
  pins the bioimage.io libraries (pins and sources next to :data:`STACKS`).
* ``spec-newest``: the newest ``bioimageio.spec`` on PyPI, what the bioimage.io collection validates
  uploads with. No ``bioimageio.core`` release accepts it yet (core 0.11.0 pins spec 0.5.12.0), so
  ``validate-format`` is run as the spec's own ``load_description`` (what core's
  ``bioimageio validate-format`` calls; see :data:`_VALIDATE_FORMAT_SPEC_ONLY`).

An environment's folder name carries a hash of its pins, so a changed pin builds a new one. It is
built in a temporary folder and renamed into place only when complete (a killed build is never
reused), under an ``fcntl`` lock, so parallel pytest-xdist workers build it once. Everything is run
as ``ENV/bin/python -m ...``: a renamed virtual environment keeps working that way (its console
scripts would still name the temporary folder).

The only network access of the consumer tests is this one-time ``pip install`` from PyPI.
``torch`` is pinned to the local CPU build ``2.13.0+cpu`` (``pip`` takes it from the machine's wheel
folder): PyPI has no such version, so a machine without that wheel fails fast instead of
downloading a multi-GB CUDA build.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

from unifmir._cache import cache_root

__all__ = [
    "STACKS",
    "Stack",
    "StackUnavailableError",
    "bioimage_test",
    "ensure_stack",
    "stack_python",
    "validate_format",
]

_MARKER = "UNIFMIR_CONSUMER_ENV_OK.json"
_FAILED: dict[str, "StackUnavailableError"] = {}
_INSTALL_TIMEOUT_S = 1800
_RUN_TIMEOUT_S = 1200


class StackUnavailableError(RuntimeError):
    """A consumer's environment could not be built (no network, a pin gone from PyPI, ...)."""


@dataclasses.dataclass(frozen=True)
class Stack:
    """One consumer's pinned Python environment."""

    name: str
    requirements: tuple[str, ...]
    # the library whose ``validate-format`` decides; "core" = the ``bioimageio`` CLI of
    # bioimageio.core, "spec" = bioimageio.spec's ``load_description`` (no core accepts the spec)
    validator: str

    def key(self) -> str:
        """Short hash of the pins and the interpreter the environment is built with."""
        text = json.dumps([self.requirements, sys.version_info[:2], self.validator])
        return hashlib.sha256(text.encode()).hexdigest()[:12]


STACKS: dict[str, Stack] = {
    "ilastik": Stack(
        name="ilastik",
        requirements=(
            # tiktorch 26.5.0 setup.py `install_requires` ("bioimageio.core==0.10.2"; commit 031c450
            # "Bump bioimage deps, spec 0.5.9.1, core 0.10.2", ilastik/tiktorch#244)
            "bioimageio.core==0.10.2",
            # bioimageio.core 0.10.2's own metadata pins `bioimageio.spec==0.5.9.1` (tiktorch's
            # vendor/spec-bioimage-io submodule is bumped to the same release in the same commit)
            "bioimageio.spec==0.5.9.1",
            # tiktorch 26.5.0 environment.yml: `pydantic >=2.10.3,<2.12`
            "pydantic>=2.10.3,<2.12",
            # tiktorch's environment.yml runs pytorch 2.7; we use the machine's local CPU wheel
            # (the project's torch); TorchScript/state-dict loading is what is exercised
            "torch==2.13.0+cpu",
        ),
        validator="core",
    ),
    "spec-newest": Stack(
        name="spec-newest",
        requirements=(
            # newest bioimageio.spec on PyPI (`pip index versions bioimageio.spec`, 2026-12)
            "bioimageio.spec==0.5.14.3",
        ),
        validator="spec",
    ),
}

# `bioimageio validate-format SOURCE` of bioimageio.core (cli.ValidateFormatCmd) is exactly this:
# load_description with IO checks, print the summary, exit 0 iff the status is valid-format/passed.
_VALIDATE_FORMAT_SPEC_ONLY = """
import sys
from bioimageio.spec import load_description
descr = load_description(sys.argv[1], perform_io_checks=True)
summary = descr.validation_summary
summary.save(sys.argv[2])
print(summary.format())
sys.exit(0 if summary.status in ("valid-format", "passed") else 1)
"""


def envs_root() -> Path:
    return cache_root() / "consumer-envs"


def _env_dir(stack: Stack) -> Path:
    return envs_root() / f"{stack.name}-{stack.key()}"


def stack_python(env: Path) -> Path:
    return env / "bin" / "python"


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


def _complete(env: Path) -> bool:
    return (env / _MARKER).is_file() and stack_python(env).exists()


def _run_checked(cmd: list[str], what: str, stack: Stack) -> str:
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=_INSTALL_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise StackUnavailableError(f"consumer stack {stack.name!r}: {what} failed: {err}") from err
    if res.returncode != 0:
        tail = (res.stdout + res.stderr)[-4000:]
        raise StackUnavailableError(
            f"consumer stack {stack.name!r}: {what} failed (exit {res.returncode}); it needs PyPI once "
            f"(pins: {', '.join(stack.requirements)}). Output:\n{tail}"
        )
    return res.stdout


def _build(stack: Stack, target: Path) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f".build-{stack.name}-", dir=target.parent))
    try:
        _run_checked([sys.executable, "-m", "venv", str(tmp)], "creating the virtual environment", stack)
        py = str(stack_python(tmp))
        _run_checked([py, "-m", "pip", "install", "-q", *stack.requirements], "pip install", stack)
        frozen = _run_checked([py, "-m", "pip", "freeze"], "pip freeze", stack)
        (tmp / _MARKER).write_text(
            json.dumps({"requirements": stack.requirements, "freeze": frozen.splitlines()}, indent=1)
        )
        tmp.chmod(0o755)  # mkdtemp made it private
        os.replace(tmp, target)  # atomic: the folder appears only when complete
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def ensure_stack(name: str) -> Path:
    """The folder of consumer environment ``name`` (a :data:`STACKS` key), built on first use.

    Raises :class:`StackUnavailableError` with pip's output when it cannot be built."""
    stack = STACKS[name]
    target = _env_dir(stack)
    if _complete(target):
        return target
    if name in _FAILED:  # tried in this process already: fail at once, with the same message
        raise _FAILED[name]
    try:
        with _file_lock(envs_root() / f"{target.name}.lock"):
            if _complete(target):  # another worker built it while we waited
                return target
            if target.exists():  # incomplete (should not happen: builds are renamed into place)
                shutil.rmtree(target)
            _build(stack, target)
    except StackUnavailableError as err:
        _FAILED[name] = err
        raise
    return target


def installed_versions(env: Path) -> dict[str, str]:
    """``{distribution: version}`` as frozen when the environment was built."""
    frozen = json.loads((env / _MARKER).read_text())["freeze"]
    return dict(line.split("==", 1) for line in frozen if "==" in line)


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # nothing of the project's own environment leaks in
    env["PYTHONNOUSERSITE"] = "1"
    return subprocess.run(cmd, capture_output=True, text=True, timeout=_RUN_TIMEOUT_S, cwd=cwd, env=env)


def _summary(path: Path) -> tuple[str | None, str]:
    """``(status, the failed checks' errors and all warnings as text)`` of a saved JSON summary."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None, "(no summary written)"
    lines = [f"status: {data.get('status')}"]
    for detail in data.get("details") or []:
        for kind in ("errors", "warnings"):
            for item in detail.get(kind) or []:
                loc = ".".join(str(x) for x in item.get("loc") or ())
                lines.append(f"{kind[:-1]} [{detail.get('name')}] {loc}: {item.get('msg')}")
    return data.get("status"), "\n".join(lines)


def _crash(res: subprocess.CompletedProcess[str], status: str | None) -> str:
    """The command's own output, where it wrote no summary (it crashed)."""
    return "" if status is not None else f"\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"


def validate_format(env: Path, rdf_path: Path) -> tuple[bool, str]:
    """``bioimageio validate-format`` of the stack in ``env`` on ``rdf_path`` (rdf.yaml or zip).

    Returns ``(ok, output)``; ``ok`` is the exit code 0 of the consumer's command and the status
    ``valid-format``/``passed`` in its summary."""
    stack = next(s for s in STACKS.values() if env.name == f"{s.name}-{s.key()}")
    with tempfile.TemporaryDirectory(prefix="unifmir-vf-") as tmp:
        summary = Path(tmp) / "summary.json"
        py = str(stack_python(env))
        if stack.validator == "core":
            cmd = [py, "-m", "bioimageio.core", "validate-format", str(rdf_path), "--summary", str(summary)]
        else:
            cmd = [py, "-c", _VALIDATE_FORMAT_SPEC_ONLY, str(rdf_path), str(summary)]
        res = _run(cmd, Path(tmp))
        status, text = _summary(summary)
    ok = res.returncode == 0 and status in ("valid-format", "passed")
    return ok, f"{stack.name} validate-format {rdf_path}: exit {res.returncode}\n{text}{_crash(res, status)}"


def bioimage_test(env: Path, rdf_path: Path, weight_format: str | None = None) -> tuple[bool, str]:
    """``bioimageio test RDF --devices cpu [--weight-format F]`` of bioimageio.core in ``env``.

    In core 0.10.2 the command exits 0 exactly when the summary's status is ``passed``
    (``bioimageio.core.commands.test``); both are required."""
    with tempfile.TemporaryDirectory(prefix="unifmir-bt-") as tmp:
        summary = Path(tmp) / "summary.json"
        cmd = [str(stack_python(env)), "-m", "bioimageio.core", "test", str(rdf_path), "--devices", "cpu",
               "--summary", str(summary)]
        if weight_format:
            cmd += ["--weight-format", weight_format]
        res = _run(cmd, Path(tmp))
        status, text = _summary(summary)
    ok = res.returncode == 0 and status == "passed"
    head = f"bioimageio test {rdf_path} ({weight_format or 'all'}): exit {res.returncode}"
    return ok, f"{head}\n{text}{_crash(res, status)}"
