"""Checkpoints of a training run: ``best.pt`` / ``last.pt`` plus an exact-resume state file.

Layout of a run directory::

    RUN_DIR/config.yaml      the TrainConfig (written next to every checkpoint)
    RUN_DIR/best.pt          model checkpoint (unifmir format) with the best validation score
    RUN_DIR/last.pt          model checkpoint of the latest resume point
    RUN_DIR/train_state.pt   everything needed for an exact resume: model, optimiser, scheduler,
                             AMP scaler, RNG states (Python, NumPy, torch, CUDA), sampler
                             positions, step, best score, early-stopping counter, history
    RUN_DIR/log.csv, RUN_DIR/curves.png   (see :mod:`unifmir.training.run_log`)

``best.pt`` and ``last.pt`` are written with :func:`unifmir.model.checkpoints.save_checkpoint`
(our model format, loadable with ``unifmir.load_checkpoint`` / ``load_any`` / ``predict``).
Every file is written atomically (temporary file + rename), and ``train_state.pt`` only after
``last.pt``, so an interruption at any moment leaves a consistent, loadable pair. All files load
with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from unifmir._atomic import atomic_path

__all__ = [
    "RunPaths",
    "capture_rng_state",
    "restore_rng_state",
    "save_model",
    "save_train_state",
    "load_train_state",
    "unwrap",
    "all_finite",
]

STATE_FORMAT = "unifmir-train-state/1"


class RunPaths:
    """File names inside a run directory."""

    def __init__(self, run_dir: str | Path) -> None:
        self.root = Path(run_dir)
        self.config = self.root / "config.yaml"
        self.best = self.root / "best.pt"
        self.last = self.root / "last.pt"
        self.state = self.root / "train_state.pt"
        self.log = self.root / "log.csv"
        self.plot = self.root / "curves.png"

    def has_run(self) -> bool:
        """Whether the directory already holds a (possibly partial) run."""
        return any(p.exists() for p in (self.state, self.last, self.best, self.log))


def unwrap(model: nn.Module) -> nn.Module:
    """The bare module inside DistributedDataParallel / DataParallel wrappers."""
    while hasattr(model, "module") and isinstance(model.module, nn.Module):
        model = model.module
    return model


def all_finite(model: nn.Module) -> bool:
    """Whether every parameter and floating buffer of ``model`` is finite."""
    with torch.no_grad():
        for t in list(model.parameters()) + [b for b in model.buffers() if b.is_floating_point()]:
            if not torch.isfinite(t).all():
                return False
    return True


def capture_rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU and CUDA RNG states in a ``weights_only``-loadable form."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [int(version), [int(v) for v in internal], gauss],
        "numpy": [str(kind), torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((int(version), tuple(int(v) for v in internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_model(
    path: str | Path,
    model: nn.Module,
    *,
    provenance: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` (unwrapped) in our checkpoint format, atomically, replacing ``path``."""
    from unifmir.model.checkpoints import save_checkpoint

    path = Path(path)
    bare = unwrap(model)
    with atomic_path(path, overwrite=True) as tmp:
        tmp.unlink(missing_ok=True)  # let save_checkpoint create the file itself
        save_checkpoint(tmp, bare, provenance=provenance or {}, extra=extra or {})
    return path


def save_train_state(path: str | Path, state: dict[str, Any]) -> Path:
    """Write the resume state atomically (``torch.save``; only tensors and plain Python values)."""
    path = Path(path)
    payload = {"format": STATE_FORMAT, **state}
    with atomic_path(path, overwrite=True) as tmp:
        torch.save(payload, tmp)
    return path


_STATE_KEYS: dict[str, type | tuple[type, ...]] = {
    "step": int, "model": dict, "optimizer": dict, "scheduler": dict, "scaler": dict, "streams": dict,
    "rng": list, "best": (float, int, type(None)), "best_step": (int, type(None)), "bad_vals": int,
    "history": list,
}


def _damaged(path: Path, what: str) -> ValueError:
    run = path.parent
    return ValueError(
        f"cannot resume from {path}: {what}. The run's weights may still be usable: start a new run from "
        f"them with `unifmir finetune --from {run / 'last.pt'} --out NEW_RUN` (or best.pt), or restart the run"
    )


def load_train_state(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a state written by :func:`save_train_state` (``weights_only=True``).

    A missing, truncated, foreign or code-carrying file raises ``FileNotFoundError`` /
    ``ValueError`` naming the file and what to do instead (never an unpickling traceback); the
    entries the resume needs are checked for presence and type.
    """
    import pickle
    import zipfile

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: the run directory has no resume state (was it started with a "
            "version that did not save one, or did it stop before its first checkpoint?)"
        )
    if path.stat().st_size == 0:
        raise _damaged(path, "the file is empty (0 bytes)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        msg = str(err)
        if "GLOBAL" in msg or "global" in msg or "Unsupported" in msg:
            raise _damaged(path, "it holds pickled Python objects or code, not just tensors, and is refused "
                                 "(it was not written by unifmir, or was replaced)") from None
        raise _damaged(path, "the file is corrupted") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError, IndexError,
            AttributeError, TypeError) as err:
        if isinstance(err, PermissionError):
            raise
        first = next((ln.strip() for ln in str(err).splitlines() if ln.strip()), type(err).__name__)
        raise _damaged(path, f"the file is truncated or corrupted ({first[:160]})") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise _damaged(path, f"it is not a unifmir training state ({STATE_FORMAT})")
    for key, kind in _STATE_KEYS.items():
        if key not in state:
            raise _damaged(path, f"its {key!r} entry is missing")
        if not isinstance(state[key], kind) or (kind is int and isinstance(state[key], bool)):
            raise _damaged(path, f"its {key!r} entry is a {type(state[key]).__name__}")
    if state["step"] < 0 or not state["rng"]:
        raise _damaged(path, "its step or RNG entries are invalid")
    bad = [k for k, v in state["model"].items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise _damaged(path, f"its model entry holds non-tensors ({', '.join(map(str, bad[:3]))})")
    return state
