"""The end-to-end demo behind the README's first command (``unifmir demo``).

Everything runs on built-in synthetic data with the CPU-friendly ``small`` preset:

1. synthesise a small *pretraining* collection (eukaryotic structures: SR and 3D-denoising pairs
   from the default generators) and a small *new* dataset (E. coli-like bacteria, 3D denoising);
2. pretrain the multi-task network briefly on the pretraining collection;
3. fine-tune it briefly on the bacteria training images;
4. evaluate the pretrained and the fine-tuned model and the classical baselines (noisy input,
   Gaussian filter) on the bacteria test images under the ``care`` protocol, and print the table.

Outputs go to ``./unifmir-demo/`` by default: ``data/``, ``pretrain/`` and ``finetune/`` (run
folders with checkpoints, CSV logs and plots) and ``evaluation.csv`` / ``evaluation.md``.
The step counts are options (and ``UNIFMIR_DEMO_STEPS="PRETRAIN,FINETUNE"`` for quick checks);
the defaults finish in a few minutes on a 2-core CPU.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from unifmir._threads import choose_threads, cpu_threads  # re-exported: they moved to unifmir._threads
from unifmir.training.evaluate import EvaluationResult, evaluate_models, load_pairs, write_report

__all__ = ["DemoSettings", "DemoResult", "run_demo", "settings_from_env", "DEMO_MARKER",
           "choose_threads", "cpu_threads"]

DEMO_MARKER = ".unifmir-demo"
"""File written into the demo folder; ``--overwrite`` only clears folders that carry it."""

_DEMO_ENTRIES = ("data", "pretrain", "finetune", "evaluation.csv", "evaluation.md", DEMO_MARKER)


@dataclass(frozen=True)
class DemoSettings:
    """Size of the demo. The defaults take a few minutes on a 2-core CPU."""

    pretrain_tasks: tuple[str, ...] = ("sr", "denoise")
    """Tasks of the pretraining collection (default structures: no bacteria)."""
    target_task: str = "denoise"
    target_structure: str = "ecoli"
    pretrain_images: int = 6
    """Image pairs per pretraining task (train + test together)."""
    target_images: int = 8
    image_size: int = 64
    """Side (input pixels) of every synthetic image."""
    pretrain_steps: int = 120
    finetune_steps: int = 120
    lr: float = 5e-4
    """Learning rate of both runs: higher than the reference's 5e-5 / 1e-4, for a short CPU run."""
    seed: int = 0
    protocol: str = "care"

    def train_overrides(self, steps: int) -> dict[str, dict[str, object]]:
        """Validate once, at the end, on a few patches (the demo evaluates whole images anyway)."""
        return {"checkpoint": {"val_every": steps}, "data": {"val_samples": 4}}


def settings_from_env(base: DemoSettings | None = None) -> DemoSettings:
    """``base`` with ``UNIFMIR_DEMO_STEPS="PRETRAIN,FINETUNE"`` (and ``UNIFMIR_DEMO_IMAGES="N"``)
    applied — a tiny budget for tests and smoke checks."""
    base = base or DemoSettings()
    kw = {f: getattr(base, f) for f in base.__dataclass_fields__}
    steps = os.environ.get("UNIFMIR_DEMO_STEPS")
    if steps:
        try:
            p, f = (int(v) for v in steps.split(","))
        except ValueError:
            raise ValueError(f"UNIFMIR_DEMO_STEPS must be 'PRETRAIN,FINETUNE' integers, got {steps!r}") from None
        kw.update(pretrain_steps=p, finetune_steps=f)
    images = os.environ.get("UNIFMIR_DEMO_IMAGES")
    if images:
        kw.update(pretrain_images=int(images), target_images=int(images))
    return DemoSettings(**kw)


@dataclass
class DemoResult:
    """Where the demo wrote its outputs and what it measured."""

    out: Path
    evaluation: EvaluationResult
    pretrained_checkpoint: Path
    finetuned_checkpoint: Path
    timings: dict[str, float] = field(default_factory=dict)


def prepare_output(out: Path, overwrite: bool) -> None:
    """Create ``out``; refuse a non-empty one unless ``overwrite`` and it is an earlier demo."""
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"{out} exists and is not empty; pass --overwrite to replace an earlier demo there "
                "or --out to choose another folder"
            )
        if not (out / DEMO_MARKER).exists():
            raise FileExistsError(
                f"{out} is not an earlier demo folder (no {DEMO_MARKER} file); refusing to clear it "
                "even with --overwrite — choose another --out"
            )
        for name in _DEMO_ENTRIES:
            p = out / name
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            elif p.exists() or p.is_symlink():
                p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    (out / DEMO_MARKER).write_text("folder written by `unifmir demo`\n")


def _synthesize(task: str, n: int, out: Path, seed: int, structure: str | None, size: int) -> Path:
    """``n`` pairs (a quarter, at least one, for testing) of ``size`` pixels into ``out``."""
    from unifmir.data.pairs import synthesize_dataset

    synthesize_dataset(task, n, out, seed, structure=structure, test_fraction=0.25, size=size)
    return out


def run_demo(
    out: str | os.PathLike = "unifmir-demo",
    *,
    settings: DemoSettings | None = None,
    overwrite: bool = False,
    device: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> DemoResult:
    """Run the whole demo (see the module docstring) and return its result."""
    from unifmir.training.config import finetune_config, pretrain_config
    from unifmir.training.experiment import load_for_task
    from unifmir.training.loop import train

    s = settings or DemoSettings()
    out = Path(out)
    prepare_output(out, overwrite)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    log(f"1/4 synthesising data in {out / 'data'} ...")
    pre_roots = {
        t: _synthesize(t, s.pretrain_images, out / "data" / f"pretrain-{t}", s.seed + i, None,
                       s.image_size)
        for i, t in enumerate(s.pretrain_tasks)
    }
    target_root = _synthesize(s.target_task, s.target_images,
                              out / "data" / f"{s.target_structure}-{s.target_task}",
                              s.seed + 100, s.target_structure, s.image_size)
    timings["synthesis"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    log(f"2/4 pretraining the small multi-task model on {', '.join(s.pretrain_tasks)} "
        f"({s.pretrain_steps} steps) ...")
    cfg = pretrain_config(pre_roots, preset="small", steps=s.pretrain_steps, seed=s.seed,
                          device=device or "auto", task_sampling="step", lr=s.lr,
                          overrides=s.train_overrides(s.pretrain_steps))
    pretrained = Path(train(cfg, out / "pretrain", device=device, progress=progress).last_checkpoint)
    timings["pretraining"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    log(f"3/4 fine-tuning on {s.target_structure} {s.target_task} ({s.finetune_steps} steps) ...")
    cfg = finetune_config(s.target_task, target_root, init=pretrained, preset="small",
                          steps=s.finetune_steps, seed=s.seed, device=device or "auto", lr=s.lr,
                          overrides=s.train_overrides(s.finetune_steps))
    finetuned = Path(train(cfg, out / "finetune", device=device, progress=progress).last_checkpoint)
    timings["fine-tuning"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    log("4/4 evaluating on the held-out test images ...")
    models = {
        "pretrained, no fine-tuning": load_for_task(pretrained, s.target_task),
        "pretrained + fine-tuned": load_for_task(finetuned, s.target_task),
    }
    pairs = load_pairs(target_root, s.target_task, "test")
    ev = evaluate_models(models, pairs, s.target_task, s.protocol, device=device,
                         source=str(target_root / "test"))
    write_report(ev, out, overwrite=True, title="unifmir demo: E. coli-like 3D denoising")
    timings["evaluation"] = time.perf_counter() - t0
    return DemoResult(out, ev, pretrained, finetuned, timings)
