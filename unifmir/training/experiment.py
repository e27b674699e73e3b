"""The transfer experiment: does pretraining help on a new dataset?

At an equal optimiser-step budget, three arms are compared on the same held-out images:

* **(a) from scratch** — the single-task network trained on the new data from random weights;
* **(b) pretrained, no fine-tuning** — the pretrained checkpoint applied as it is;
* **(c) pretrained + fine-tuned** — the pretrained checkpoint fine-tuned on the new data.

The classical baselines of the task (:mod:`unifmir.training.baselines`) are evaluated on the same
images. Arms (a) and (c) use the same config (:func:`unifmir.training.config.finetune_config`,
same preset, steps, seed, data) except ``init``; both are evaluated at their *last* step, so the
held-out images never select a checkpoint.

Without cross-validation the arms train on ``DIR/train`` and are evaluated on ``DIR/test``. With
``folds=K`` (the DeepBacs recipe uses 5) the ``train`` images are split into K folds
(round-robin over sorted names); fold ``k`` trains on the other K-1 folds and is evaluated on
fold ``k``, and the table pools the held-out images of all folds (each image is held out once).
Fold datasets are built as symbolic links (copies where links are not possible) under
``OUT/folds/``.

This is the comparison of the UniFMIR paper's DeepBacs experiment; the reference recipe is
SR at scale 1 / denoising, 5-fold CV, lr 1e-4 (github.com/cxm12/UNiFMIR).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from unifmir._atomic import atomic_path
from unifmir.tasks import TASKS, get_task, other_task
from unifmir.training.evaluate import (
    EvaluationResult,
    ImagePair,
    evaluate_models,
    load_pairs,
    markdown_table,
)

__all__ = [
    "ARM_SCRATCH",
    "ARM_PRETRAINED",
    "ARM_FINETUNED",
    "TransferResult",
    "load_for_task",
    "make_fold_datasets",
    "run_transfer",
]

ARM_SCRATCH = "(a) from scratch"
ARM_PRETRAINED = "(b) pretrained, no fine-tuning"
ARM_FINETUNED = "(c) pretrained + fine-tuned"

TRANSFER_TASKS: tuple[str, ...] = tuple(sorted(n for n, s in TASKS.items() if s.transfer_experiment))
"""Tasks the experiment is offered for (``TaskSpec.transfer_experiment``: the DeepBacs transfer tasks)."""


def load_for_task(source: str | os.PathLike, task: str) -> torch.nn.Module:
    """Load a checkpoint (ours or official, single- or multi-task) as the eval-mode single-task
    network of ``task`` (a multi-task checkpoint gives its ``task`` part, see
    :func:`unifmir.model.checkpoints.load_any`)."""
    from unifmir.model.checkpoints import load_any
    from unifmir.model.network import network_task

    model = load_any(source, task=task)
    model_task = network_task(model)
    if model_task is None or other_task(model_task, task):
        raise ValueError(f"{source} holds a {model_task or 'multi-task'!r} model, not a {task!r} one")
    return model.eval()


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.symlink(src.resolve(), dst)
    except OSError:
        shutil.copy2(src, dst)


def _split_files(root: Path, split: str) -> list[tuple[Path, Path]]:
    """(input, target) files of ``root/split``, paired by file name."""
    inp, tgt = root / split / "input", root / split / "target"
    if not inp.is_dir() or not tgt.is_dir():
        raise FileNotFoundError(f"{root / split} must contain input/ and target/ folders")
    pairs = []
    for f in sorted(p for p in inp.iterdir() if p.is_file() and not p.name.startswith(".")):
        t = tgt / f.name
        if not t.exists():
            raise FileNotFoundError(f"{f} has no target {t}")
        pairs.append((f, t))
    return pairs


def make_fold_datasets(data: str | os.PathLike, folds: int, out: str | os.PathLike,
                       split: str = "train") -> list[Path]:
    """Build ``folds`` dataset folders under ``out`` for K-fold cross-validation of ``data``.

    Fold ``k`` has ``train/`` = the ``split`` images not in fold ``k`` and ``test/`` = fold ``k``
    (files assigned round-robin over sorted names), plus ``data``'s ``dataset.yaml``.
    """
    data, out = Path(data), Path(out)
    files = _split_files(data, split)
    if folds < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {folds}")
    if len(files) < folds:
        raise ValueError(f"{data / split} has {len(files)} image pairs, fewer than {folds} folds")
    roots = []
    for k in range(folds):
        root = out / f"fold{k}"
        if root.exists():
            shutil.rmtree(root)
        for i, (fi, ft) in enumerate(files):
            dest = "test" if i % folds == k else "train"
            _link_or_copy(fi, root / dest / "input" / fi.name)
            _link_or_copy(ft, root / dest / "target" / ft.name)
        for extra in data.iterdir():
            if extra.is_file():
                _link_or_copy(extra, root / extra.name)
        roots.append(root)
    return roots


@dataclass
class TransferResult:
    """The evaluation of the three arms and the baselines, plus how they were obtained."""

    evaluation: EvaluationResult
    settings: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    run_dirs: dict[str, list[str]] = field(default_factory=dict)

    def comparisons(self) -> list[tuple[str, str, str, float, bool]]:
        """``(metric, better arm, worse arm, difference of means, holds)`` for (c) vs (a), (b)."""
        s = self.evaluation.summary_by_method()
        out: list[tuple[str, str, str, float, bool]] = []
        if ARM_FINETUNED not in s:
            return out
        for other in (ARM_SCRATCH, ARM_PRETRAINED):
            if other not in s:
                continue
            for metric in ("psnr", "ssim"):
                diff = s[ARM_FINETUNED].mean[metric] - s[other].mean[metric]
                out.append((metric, ARM_FINETUNED, other, diff, diff > 0))
        return out

    def to_markdown(self) -> str:
        """The experiment's table with its settings and the (c) > (a), (c) > (b) checks."""
        ev = self.evaluation
        st = self.settings
        lines = [
            f"# Transfer experiment: {ev.task}",
            "",
            *ev.header_lines(),
            f"- pretrained checkpoint: `{st.get('pretrained')}`",
            f"- step budget per trained arm: {st.get('steps')} steps, preset `{st.get('preset')}`, "
            f"seed {st.get('seed')}"
            + (f", {st.get('folds')}-fold cross-validation on the train split"
               if st.get("folds") else ", trained on train, evaluated on test"),
            "",
        ]
        lines += markdown_table(ev.summary(), set(ev.model_methods))
        lines += ["", "PSNR in dB, SSIM, NRMSE: mean ± standard deviation over held-out images.", ""]
        for metric, better, worse, diff, holds in self.comparisons():
            sign = ">" if holds else "<="
            lines.append(f"- {metric.upper()}: {better[:3]} {sign} {worse[:3]} "
                         f"(difference of means {diff:+.4f})")
        if self.timings:
            lines += ["", "Wall-clock: " + ", ".join(f"{k} {v:.0f} s" for k, v in self.timings.items())]
        return "\n".join(lines) + "\n"

    def write(self, out: str | os.PathLike, overwrite: bool = True) -> tuple[Path, Path, Path]:
        """Write ``transfer.md``, ``transfer.csv`` (per image) and ``transfer.json`` in ``out``."""
        out = Path(out)
        md, csv_path, js = out / "transfer.md", out / "transfer.csv", out / "transfer.json"
        self.evaluation.write_csv(csv_path, overwrite=overwrite)
        with atomic_path(md, overwrite=overwrite) as tmp:
            tmp.write_text(self.to_markdown())
        summary = {
            s.method: {"n": s.n, "mean": dict(s.mean), "std": dict(s.std)}
            for s in self.evaluation.summary()
        }
        payload = {"settings": self.settings, "summary": summary, "timings": self.timings,
                   "run_dirs": self.run_dirs,
                   "comparisons": [dict(metric=m, better=b, worse=w, diff=d, holds=h)
                                   for m, b, w, d, h in self.comparisons()]}
        with atomic_path(js, overwrite=overwrite) as tmp:
            tmp.write_text(json.dumps(payload, indent=2, default=str))
        return md, csv_path, js


def _train_arm(task: str, data: Path, init: str, run_dir: Path, *, preset: str, steps: int,
               seed: int, device: str | None, progress: bool,
               overrides: Mapping[str, Any] | None, model_overrides: Mapping[str, Any] | None
               ) -> Path:
    """Fine-tune one arm and return its last checkpoint."""
    from unifmir.training.config import finetune_config
    from unifmir.training.loop import train

    cfg = finetune_config(task, data, init=init, preset=preset, steps=steps, seed=seed,
                          device=device or "auto", overrides=overrides,
                          model_overrides=model_overrides)
    last = Path(train(cfg, run_dir, device=device, progress=progress).last_checkpoint)
    if not last.exists():
        raise RuntimeError(f"training in {run_dir} wrote no last checkpoint ({last})")
    return last


def run_transfer(
    task: str,
    data: str | os.PathLike,
    pretrained: str | os.PathLike,
    out: str | os.PathLike,
    *,
    steps: int = 300,
    folds: int | None = None,
    preset: str = "small",
    protocol: str = "care",
    seed: int = 0,
    device: str | None = None,
    progress: bool = True,
    overrides: Mapping[str, Any] | None = None,
    model_overrides: Mapping[str, Any] | None = None,
    log: Callable[[str], None] = print,
) -> TransferResult:
    """Run the transfer experiment on ``data`` and return (and write to ``out``) its result.

    ``overrides`` is merged into both trained arms' configs (e.g. ``{"checkpoint":
    {"val_every": 50}}``); ``model_overrides`` configures a task variant the pretrained model
    has no head for (e.g. ``{"upscale": 1}``) — both arms get it. Writes ``transfer.md``,
    ``transfer.csv``, ``transfer.json`` and the run folders under ``out``.
    """
    spec = get_task(task)
    if not spec.transfer_experiment:
        raise ValueError(f"the transfer experiment is offered for {', '.join(TRANSFER_TASKS)}, "
                         f"not {task!r}")
    data, out, pretrained = Path(data), Path(out), Path(pretrained)
    if not pretrained.is_file():
        raise FileNotFoundError(f"pretrained checkpoint {pretrained} does not exist")
    out.mkdir(parents=True, exist_ok=True)
    if folds:
        roots = make_fold_datasets(data, folds, out / "folds")
    else:
        roots = [data]
    settings = {"task": spec.name, "data": str(data), "pretrained": str(pretrained),
                "steps": steps, "folds": folds, "preset": preset, "protocol": protocol,
                "seed": seed, "device": device or "auto", "overrides": dict(overrides or {}),
                "model_overrides": dict(model_overrides or {})}
    timings = {ARM_SCRATCH: 0.0, ARM_FINETUNED: 0.0, "evaluation": 0.0}
    run_dirs: dict[str, list[str]] = {ARM_SCRATCH: [], ARM_FINETUNED: []}
    pretrained_model = load_for_task(pretrained, spec.name)
    combined: EvaluationResult | None = None
    for k, root in enumerate(roots):
        tag = f"fold{k}" if folds else "main"
        arms: dict[str, torch.nn.Module] = {}
        for arm, init, sub in ((ARM_SCRATCH, "scratch", "scratch"),
                               (ARM_FINETUNED, str(pretrained), "finetuned")):
            run_dir = out / "runs" / tag / sub
            if run_dir.exists():
                shutil.rmtree(run_dir)
            log(f"[{tag}] training {arm}: {steps} steps on {root}/train")
            t0 = time.perf_counter()
            last = _train_arm(spec.name, root, init, run_dir, preset=preset, steps=steps,
                              seed=seed, device=device, progress=progress,
                              overrides=overrides, model_overrides=model_overrides)
            timings[arm] += time.perf_counter() - t0
            run_dirs[arm].append(str(run_dir))
            arms[arm] = load_for_task(last, spec.name)
        models = {ARM_SCRATCH: arms[ARM_SCRATCH], ARM_PRETRAINED: pretrained_model,
                  ARM_FINETUNED: arms[ARM_FINETUNED]}
        t0 = time.perf_counter()
        pairs = load_pairs(root, spec.name, "test")
        if folds:
            pairs = [ImagePair(f"{tag}/{p.name}", p.input, p.target) for p in pairs]
        log(f"[{tag}] evaluating on {len(pairs)} held-out image(s) ({protocol} protocol)")
        ev = evaluate_models(models, pairs, spec.name, protocol, device=device,
                             source=f"{data} ({'train, ' + str(folds) + '-fold CV' if folds else 'test'})")
        timings["evaluation"] += time.perf_counter() - t0
        if combined is None:
            combined = ev
        else:
            combined.extend(ev)
    assert combined is not None
    result = TransferResult(combined, settings, timings, run_dirs)
    result.write(out)
    return result

