"""CAREamics 0.3.5 Noise2Void for the real-image benchmark, in its own virtual environment.

CAREamics needs torchvision, which does not load beside the project's torch 2.13.0, so it runs in
a separate virtual environment under ``$UNIFMIR_CACHE/careamics-0.3.5-venv`` (built once, on
first use, in a staging folder that is renamed into place only after ``import careamics``
works: an interrupted build never leaves a half-built environment behind). The environment holds
``torch==2.14.1 torchvision==0.29.1`` and ``careamics==0.3.5``. CAREamics 0.3.5 declares
``torch<2.14`` and ``torchvision<=0.26`` (and its dependency microssim 0.0.5 ``torch<=2.14.0``),
which no torch/torchvision pair on this project's package index satisfies together with a
working torchvision, so careamics and microssim are installed with ``--no-deps`` and their other
requirements (read from their metadata) are installed with torch/torchvision held at those
versions by a constraints file.

Each volume is written to ``.npy``, denoised by ``real_images_n2v_worker.py`` in a subprocess
(Noise2Void trained on that noisy volume itself; the recipe is in the worker) and read back.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["N2V_PINS", "venv_dir", "ensure_venv", "run_n2v"]

N2V_PINS = ("torch==2.14.1", "torchvision==0.29.1")
CAREAMICS = "careamics==0.3.5"
NO_DEPS = ("careamics==0.3.5", "microssim==0.0.5")
WORKER = Path(__file__).with_name("real_images_n2v_worker.py")


def venv_dir() -> Path:
    from real_images_data import cache_root

    return cache_root() / "careamics-0.3.5-venv"


def _python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _run(cmd: list[str], what: str, log) -> str:
    log(f"    $ {' '.join(cmd)}")
    res = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if res.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {res.returncode}): {(res.stderr or res.stdout).strip()[-1500:]}")
    return res.stdout


_REQUIREMENTS_OF = r"""
import re, sys
from importlib.metadata import requires
skip = set(sys.argv[1].split(","))
seen = set()
for dist in sys.argv[2:]:
    for r in requires(dist) or []:
        spec, _, marker = r.partition(";")
        if "extra" in marker:
            continue
        name = re.match(r"[A-Za-z0-9._-]+", spec.strip()).group(0).lower().replace("_", "-")
        if name in skip or spec in seen:
            continue
        seen.add(spec)
        print(spec.strip().replace(" ", ""))
"""


def _ok(venv: Path) -> bool:
    py = _python(venv)
    if not py.exists():
        return False
    res = subprocess.run([str(py), "-c", "import careamics, torch, torchvision; print(careamics.__version__)"],
                         capture_output=True, text=True)
    return res.returncode == 0 and res.stdout.strip() == "0.3.5"


def ensure_venv(log=print) -> Path:
    """The CAREamics environment, built on first use (a few minutes; ~5 GB with torch's CUDA
    libraries, which pip installs with the PyPI torch wheel even on a CPU machine)."""
    venv = venv_dir()
    if _ok(venv):
        return venv
    if venv.exists():
        raise RuntimeError(f"{venv} exists but `import careamics` fails in it; delete it to rebuild")
    venv.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{venv.name}.{os.getpid()}.", dir=venv.parent))
    t0 = time.perf_counter()
    log(f"  building the CAREamics environment in {venv} (once) ...")
    try:
        base = getattr(sys, "_base_executable", sys.executable)
        _run([base, "-m", "venv", str(stage)], "creating the CAREamics virtual environment", log)
        py = str(_python(stage))
        pip = [py, "-m", "pip", "install", "--quiet"]
        _run(pip + list(N2V_PINS), "installing torch/torchvision", log)
        _run(pip + ["--no-deps", *NO_DEPS], "installing careamics", log)
        skip = "torch,torchvision," + ",".join(n.split("==")[0] for n in NO_DEPS)
        reqs = _run([py, "-c", _REQUIREMENTS_OF, skip, *(n.split("==")[0] for n in NO_DEPS)],
                    "reading careamics' requirements", lambda *_: None).split()
        cons = stage / "constraints.txt"
        cons.write_text("\n".join(N2V_PINS) + "\n")
        _run(pip + ["-c", str(cons), *reqs], "installing careamics' requirements", log)
        if not _ok(stage):
            raise RuntimeError("the CAREamics environment was built but `import careamics` fails in it")
        os.replace(stage, venv)  # bin/python is a symlink and every call uses `python -m`: relocatable
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    log(f"  CAREamics environment ready ({time.perf_counter() - t0:.0f} s)")
    return venv


def _cache_key(noisy: np.ndarray, steps: int, seed: int) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(noisy, dtype=np.float32).tobytes())
    h.update(json.dumps({"shape": list(noisy.shape), "steps": steps, "seed": seed, "careamics": CAREAMICS,
                         "pins": N2V_PINS, "worker": hashlib.sha256(WORKER.read_bytes()).hexdigest()}).encode())
    return h.hexdigest()[:32]


def run_n2v(noisy: np.ndarray, workdir: Path, *, steps: int = 100, threads: int = 1, seed: int = 1,
            log=print, cache: bool = True) -> tuple[np.ndarray, dict]:
    """Noise2Void trained on ``noisy`` (Z, Y, X) itself; returns ``(denoised, facts)``.

    Results are cached under ``$UNIFMIR_CACHE/real-images/n2v/`` by the SHA-256 of the noisy
    volume, the recipe and the worker's source (the degraded inputs are seeded, so a rerun with
    new bundles need not retrain N2V); ``facts["cached"]`` says whether it was trained now.
    """
    from real_images_data import cache_root
    from unifmir._atomic import atomic_path

    cdir = cache_root() / "real-images" / "n2v"
    key = _cache_key(noisy, steps, seed)
    cpred, cfacts = cdir / f"{key}.npy", cdir / f"{key}.json"
    if cache and cpred.is_file() and cfacts.is_file():
        facts = json.loads(cfacts.read_text())
        facts["cached"] = True
        return np.load(cpred), facts
    venv = ensure_venv(log)
    workdir.mkdir(parents=True, exist_ok=True)
    src, dst = workdir / "noisy.npy", workdir / "n2v.npy"
    np.save(src, np.asarray(noisy, dtype=np.float32))
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               CUDA_VISIBLE_DEVICES="")
    cmd = [str(_python(venv)), str(WORKER), str(src), str(dst), "--workdir", str(workdir / "careamics"),
           "--steps", str(steps), "--threads", str(threads), "--seed", str(seed)]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    if res.returncode != 0:
        tail = [ln for ln in res.stderr.splitlines() if ln.strip() and "Warning" not in ln][-3:]
        raise RuntimeError(f"Noise2Void worker failed (exit {res.returncode}): {' | '.join(tail)[-1500:]}")
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    facts = json.loads(lines[-1]) if lines else {}
    facts["wall_s"] = time.perf_counter() - t0
    out = np.load(dst)
    for p in (src, dst):
        p.unlink(missing_ok=True)
    shutil.rmtree(workdir / "careamics", ignore_errors=True)
    if cache:
        cdir.mkdir(parents=True, exist_ok=True)
        with atomic_path(cpred, overwrite=True) as tmp:
            np.save(tmp, out)
        with atomic_path(cfacts, overwrite=True) as tmp:
            Path(tmp).write_text(json.dumps(facts) + "\n")
    facts["cached"] = False
    return out, facts
