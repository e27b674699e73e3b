"""The training loop: :func:`train` runs fine-tuning or pretraining from a :class:`TrainConfig`.

The loop only trains. Model construction and initialisation live in :mod:`.finetune_model` /
:mod:`.pretrain_model`, sampling in :mod:`.sampling`, files in :mod:`.checkpointing` and
:mod:`.run_log`, the process group in :mod:`.ddp`.

Per step: pick the task (:class:`~unifmir.training.pretrain_model.TaskSampler`), draw the next batch
of its stream, forward (autocast on CUDA when ``amp``), the staged L1 loss of the registry,
stop with :class:`TrainingDiverged` if the loss is NaN/Inf (nothing is written, so ``last.pt``
stays the last good checkpoint), backward, optimiser and scheduler step. Every
``checkpoint.val_every`` steps (and at step 0 and at the end): validation with the ``care``
protocol, ``best.pt`` when the monitored score improves, ``last.pt`` + ``train_state.pt``
(exact resume), the CSV log and the plot, and early stopping.

On CPU a run is bit-reproducible for a seed (and a fixed thread count); a run resumed from
``train_state.pt`` reproduces the uninterrupted run's weights exactly.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from unifmir.tasks import get_task

from . import ddp
from .checkpointing import (
    RunPaths,
    all_finite,
    capture_rng_state,
    load_train_state,
    restore_rng_state,
    save_model,
    save_train_state,
)
from .config import TrainConfig, load_config, save_config, with_absolute_paths
from .run_log import Progress, TrainLogger
from .losses import StagedL1, match_size
from .sampling import TaskStream, derive_seed, seeded_item

if TYPE_CHECKING:
    from unifmir.data.datasets import PatchDataset

__all__ = ["train", "TrainResult", "StepInfo", "TrainingDiverged", "resolve_device", "forward_outputs",
           "make_dataset", "check_data"]

_MAXIMISE = {"val_psnr": True, "val_ssim": True, "val_loss": False, "val_nrmse": False}


class TrainingDiverged(RuntimeError):
    """The loss (or the weights) became NaN/Inf; training stopped without writing them."""

    def __init__(self, message: str, step: int, last_good: Path | None) -> None:
        super().__init__(message)
        self.step = step
        self.last_good = last_good


@dataclass
class StepInfo:
    """What a callback sees after each optimiser step."""

    step: int
    task: str
    loss: float
    lr: float
    val: dict[str, float] | None = None


Callback = Callable[[StepInfo], None]


@dataclass
class TrainResult:
    """Outcome of :func:`train`."""

    run_dir: Path
    best_checkpoint: Path | None
    last_checkpoint: Path
    final_step: int
    history: list[dict[str, Any]]
    stopped: str
    """``completed`` or ``early_stopping``."""
    best_score: float | None
    monitor: str
    config: TrainConfig
    init: dict[str, Any] = field(default_factory=dict)

    @property
    def val_history(self) -> list[dict[str, Any]]:
        return [r for r in self.history if r.get("kind") == "val"]


# -- helpers ------------------------------------------------------------------------------------


def resolve_device(spec: str | torch.device | None, info: ddp.DistInfo | None = None) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; under DDP on CUDA, the process's local GPU."""
    spec = "auto" if spec is None else str(spec)
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(spec)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {spec!r} requested but CUDA is not available; use --device cpu")
        if dev.index is None:
            dev = torch.device("cuda", info.local_rank if info is not None and info.enabled else 0)
    return dev


def make_dataset(root: Path, task: str, split: str, patch_size: int | None, seed: int,
                 length: int | None, augment: bool) -> PatchDataset:
    """The patch dataset of ``task``: :class:`unifmir.data.datasets.PatchDataset` over the files of
    ``split``, or for the ``train`` split of a stream dataset (``dataset.yaml`` ``stream``)
    :class:`unifmir.data.stream.StreamDataset` drawing pairs on the fly."""
    from unifmir.data.datasets import PatchDataset
    from unifmir.data.pairs import load_dataset_info

    stream = load_dataset_info(root, task).stream if split == "train" else None
    if stream is not None:
        from unifmir.data.stream import StreamDataset

        return StreamDataset(task, patch_size=patch_size, seed=seed + stream.get("seed", 0),
                             length=length or stream.get("epoch_size"), augment=augment,
                             image_size=stream.get("image_size"))
    return PatchDataset(root, task, split=split, patch_size=patch_size, seed=seed, length=length, augment=augment)


def check_data(config: TrainConfig, progress: bool = False) -> None:
    """Validate the training and validation pairs of every task of ``config``
    (:func:`unifmir.data.datasets.validate_dataset`); raises naming the file and the fix."""
    from unifmir.data.datasets import validate_dataset

    for t in config.tasks:
        root = Path(config.data.roots[t])
        if not root.is_dir():
            raise FileNotFoundError(f"dataset folder {root} (task {t}) does not exist; check data.roots / --data")
        splits = tuple(dict.fromkeys(("train", _val_split(root, config.data.val_split))))
        validate_dataset(root, t, splits, patch_size=config.data.patch_for(t), progress=progress)


def _val_split(root: Path, wanted: str) -> str:
    if wanted != "auto":
        return wanted
    return "val" if (Path(root) / "val").is_dir() else "test"


def forward_outputs(model: nn.Module, x: torch.Tensor, task: str, multi: bool, stages: bool) -> dict[str, torch.Tensor]:
    """Run the network; ``{"final": y}`` or ``{"stage1": s, "final": y}`` when ``stages``."""
    if multi:
        out = model(x, task=task, return_stages=stages)
    elif stages:
        out = model(x, return_stages=True)
    else:
        out = model(x)
    if stages:
        s1, final = out
        return {"stage1": s1, "final": final}
    return {"final": out}


def _pair_metrics(pred: torch.Tensor, gt: torch.Tensor, protocol: str) -> dict[str, float]:
    """PSNR/SSIM/NRMSE of one sample (``C, H, W``; C>1 is treated as a z-stack)."""
    from unifmir.metrics import evaluate_pair

    p = pred.detach().float().cpu().numpy()
    g = gt.detach().float().cpu().numpy()
    if p.shape[0] == 1:
        p, g = p[0], g[0]
    res = evaluate_pair(p, g, protocol)
    if not isinstance(res, Mapping):
        res = {k: getattr(res, k) for k in ("psnr", "ssim", "nrmse") if hasattr(res, k)}
    return {k.lower(): float(v) for k, v in res.items() if k.lower() in ("psnr", "ssim", "nrmse")}


def _seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _lr(opt: torch.optim.Optimizer) -> float:
    return float(opt.param_groups[0]["lr"])


def _check_resume_config(saved: TrainConfig, new: TrainConfig) -> None:
    """A resumed run may change its length, logging, device and early stopping, nothing else."""
    free = {"schedule": {"steps"}, "logging": None, "device": None, "early_stopping": None, "amp": None,
            "cpu_bf16": None}
    a, b = with_absolute_paths(saved).to_dict(), with_absolute_paths(new).to_dict()
    diffs = []
    for key in a:
        loose = free.get(key, set())
        if loose is None:
            continue
        if key in free:
            sa = {k: v for k, v in a[key].items() if k not in loose}
            sb = {k: v for k, v in b[key].items() if k not in loose}
            if sa != sb:
                diffs.append(key)
        elif a[key] != b[key]:
            diffs.append(key)
    if diffs:
        raise ValueError(
            f"cannot resume with a different configuration ({', '.join(diffs)} changed); resume with the "
            "run's own config.yaml (omit --config) or start a new run"
        )


# -- the loop -----------------------------------------------------------------------------------


class _Run:
    """State of one training run (one process)."""

    def __init__(self, config: TrainConfig, run_dir: Path, device: torch.device, info: ddp.DistInfo,
                 progress: bool, callbacks: Sequence[Callback]) -> None:
        self.cfg = config
        self.paths = RunPaths(run_dir)
        self.dev = device
        self.info = info
        self.callbacks = list(callbacks)
        self.show_progress = progress and config.logging.progress and info.is_main
        self.multi = config.mode == "pretrain"
        self.monitor = config.checkpoint.monitor
        self.maximise = _MAXIMISE[self.monitor]

    # ---- setup
    def build(self) -> None:
        from .finetune_model import prepare_finetune_model
        from .pretrain_model import TaskSampler, prepare_pretrain_model

        cfg = self.cfg
        _seed_everything(cfg.seed)
        if self.dev.type == "cuda" and cfg.deterministic:
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
        prepare = prepare_pretrain_model if self.multi else prepare_finetune_model
        model, self.report = prepare(cfg)
        self.bare = model.to(self.dev)
        params = [p for p in self.bare.parameters() if p.requires_grad]
        if not params:
            raise ValueError("every parameter is frozen; nothing to train")
        opt_cls = torch.optim.Adam if cfg.optim.name == "adam" else torch.optim.AdamW
        self.opt = opt_cls(params, lr=cfg.optim.lr, betas=cfg.optim.betas, eps=cfg.optim.eps,
                           weight_decay=cfg.optim.weight_decay)
        self.sched = torch.optim.lr_scheduler.MultiStepLR(
            self.opt, milestones=cfg.schedule.resolved_milestones(), gamma=cfg.schedule.gamma)
        cpu_bf16 = bool(cfg.cpu_bf16 and self.dev.type == "cpu")
        self.amp = bool(cfg.amp and self.dev.type == "cuda") or cpu_bf16
        bf16 = cpu_bf16 or (cfg.amp_dtype == "bfloat16" and self.dev.type == "cuda" and torch.cuda.is_bf16_supported())
        self.amp_dtype = torch.bfloat16 if bf16 else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp and self.amp_dtype == torch.float16)
        self.sampler = TaskSampler(cfg.tasks, cfg.task_sampling, cfg.schedule.steps_per_epoch, cfg.seed,
                                   cfg.task_weights)
        self.losses = {
            t: StagedL1(t, cfg.schedule.steps_per_epoch, cfg.schedule.loss_phase_steps,
                        cfg.loss.stage_weights.get(t), total_steps=cfg.schedule.steps,
                        kind=cfg.loss.kind)
            for t in cfg.tasks
        }
        self.stages = {t: get_task(t).two_stage and self.losses[t].needs_stages() for t in cfg.tasks}
        self.redrawer = None
        if cfg.enla_redraw_interval and any(get_task(t).redraws_attention for t in cfg.tasks):
            from unifmir.model.enlcn import ProjectionRedrawer

            self.redrawer = ProjectionRedrawer(self.bare, cfg.enla_redraw_interval)
        # data
        self.streams: dict[str, TaskStream] = {}
        self.val_items: dict[str, list[dict[str, torch.Tensor]]] = {}
        self.val_counts: dict[str, int] = {}
        for i, t in enumerate(cfg.tasks):
            root = Path(cfg.data.roots[t])
            if not root.is_dir():
                raise FileNotFoundError(f"dataset folder {root} (task {t}) does not exist")
            gbatch = cfg.data.batch_for(t)
            ds = make_dataset(root, t, "train", cfg.data.patch_for(t), cfg.seed, None, cfg.data.augment)
            self.streams[t] = TaskStream(ds, gbatch, derive_seed(cfg.seed, 100 + i), rank=self.info.rank,
                                         world_size=self.info.world_size, workers=cfg.data.workers,
                                         pin_memory=self.dev.type == "cuda")
            vds = make_dataset(root, t, _val_split(root, cfg.data.val_split),
                               cfg.data.patch_for(t, validation=True), cfg.seed + 1, cfg.data.val_samples, False)
            n = len(vds)
            mine = range(self.info.rank, n, self.info.world_size)
            self.val_items[t] = [seeded_item(vds, j, derive_seed(cfg.seed, 200 + i, j)) for j in mine]
            self.val_counts[t] = n
        find_unused = self.multi or any(get_task(t).two_stage for t in cfg.tasks) or cfg.freeze_body
        self.model = ddp.wrap_model(self.bare, self.info, self.dev, find_unused)
        # bookkeeping
        self.step = 0
        self.best: float | None = None
        self.best_step: int | None = None
        self.bad_vals = 0
        self.elapsed_before = 0.0
        self.stopped = "completed"
        extra_cols: list[str] = []
        for t in cfg.tasks:
            extra_cols += [f"loss_{s}" for s in get_task(t).stages if get_task(t).two_stage]
        if self.multi:
            for t in cfg.tasks:
                extra_cols += [f"val_loss_{t}", f"val_psnr_{t}", f"val_ssim_{t}"]
        self.logger = TrainLogger(self.paths.log, self.paths.plot if cfg.logging.plot else None,
                                  list(dict.fromkeys(extra_cols)))

    def autocast(self) -> ContextManager[Any]:
        if self.amp:
            return torch.autocast(device_type=self.dev.type, dtype=self.amp_dtype)
        return nullcontext()

    # ---- state
    def state_dict(self, rng_states: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "step": self.step,
            "model": {k: v.detach().cpu() for k, v in self.bare.state_dict().items()},
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "scaler": self.scaler.state_dict(),
            "streams": {t: s.state_dict() for t, s in self.streams.items()},
            "redraw_calls": self.redrawer.calls if self.redrawer is not None else 0,
            "rng": rng_states,
            "world_size": self.info.world_size,
            "best": self.best,
            "best_step": self.best_step,
            "bad_vals": self.bad_vals,
            "stopped": self.stopped,
            "history": self.logger.rows,
            "elapsed": self.elapsed_before + (time.time() - self.t_start),
            "init": self.report.to_dict(),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.bare.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        for t, s in state["streams"].items():
            self.streams[t].load_state_dict(s)
        if self.redrawer is not None:
            self.redrawer.calls = int(state.get("redraw_calls", 0))
        self.step = int(state["step"])
        self.best = state["best"]
        self.best_step = state["best_step"]
        self.bad_vals = int(state["bad_vals"])
        self.elapsed_before = float(state.get("elapsed", 0.0))
        self.logger.set_rows(state["history"])
        es = self.cfg.early_stopping
        if state.get("stopped") == "early_stopping" and es.enabled and self.bad_vals >= es.patience:
            self.stopped = "early_stopping"  # resuming a run that already stopped early: nothing to do
        rng = state["rng"]
        if state.get("world_size", 1) != self.info.world_size:
            import warnings

            warnings.warn("resuming with another process count: data order is kept, random "
                          "augmentation of the network (drop-path) is not bit-identical", stacklevel=2)
        restore_rng_state(rng[min(self.info.rank, len(rng) - 1)])

    def save_resume_point(self, val: dict[str, float] | None) -> None:
        """Write ``last.pt`` and ``train_state.pt`` (rank 0); all ranks take part."""
        if not all_finite(self.bare):
            raise self.diverged(f"the weights contain NaN/Inf at step {self.step}")
        rng = ddp.all_gather_objects(capture_rng_state(), self.info)
        if self.info.is_main:
            save_model(self.paths.last, self.bare, provenance=self.provenance(), extra=self.extra(val))
            save_train_state(self.paths.state, self.state_dict(rng))
            self.logger.flush(plot=self.cfg.logging.plot)
        ddp.barrier(self.info)

    def provenance(self) -> dict[str, Any]:
        return {"source": "unifmir training", "training_run": str(self.paths.root.resolve()),
                "parent_checkpoint": self.cfg.init, "mode": self.cfg.mode, "tasks": list(self.cfg.tasks),
                "step": self.step}

    def extra(self, val: dict[str, float] | None) -> dict[str, Any]:
        return {"step": self.step, "val": dict(val or {}), "train_config": self.cfg.to_dict()}

    def diverged(self, what: str) -> TrainingDiverged:
        last = self.paths.last if self.paths.last.exists() else None
        where = f"the last good checkpoint is {last}" if last else "no checkpoint had been written yet"
        lr = _lr(self.opt)
        msg = (f"training stopped: {what}. Nothing was saved from this step; {where}. "
               f"Try a lower learning rate (optim.lr, now {lr:g})"
               + (", or disable AMP (amp: false)" if self.amp else "")
               + ", and check the data for NaN/Inf or constant images.")
        return TrainingDiverged(msg, self.step, last)

    # ---- validation
    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        bare = self.bare
        was_training = bare.training
        bare.eval()
        sums: dict[str, float] = {}
        try:
            for t in self.cfg.tasks:
                items = self.val_items[t]
                b = max(1, self.cfg.data.batch_for(t) // self.info.world_size)
                for k in ("loss", "psnr", "ssim", "nrmse", "n"):
                    sums[f"{t}/{k}"] = 0.0
                for s in range(0, len(items), b):
                    chunk = items[s:s + b]
                    x = torch.stack([c["input"] for c in chunk]).to(self.dev)
                    y = torch.stack([c["target"] for c in chunk]).to(self.dev)
                    with self.autocast():
                        out = forward_outputs(bare, x, t, self.multi, False)["final"]
                    out = match_size(out, y).float()
                    per = (out - y.float()).abs().flatten(1).mean(1)
                    for i in range(out.shape[0]):
                        m = _pair_metrics(out[i], y[i], self.cfg.checkpoint.protocol)
                        sums[f"{t}/loss"] += float(per[i])
                        for k in ("psnr", "ssim", "nrmse"):
                            sums[f"{t}/{k}"] += m.get(k, float("nan"))
                        sums[f"{t}/n"] += 1
        finally:
            bare.train(was_training)
        sums = ddp.all_reduce_sums(sums, self.info, self.dev)
        res: dict[str, float] = {}
        for t in self.cfg.tasks:
            n = max(sums[f"{t}/n"], 1.0)
            for k in ("loss", "psnr", "ssim", "nrmse"):
                res[f"val_{k}_{t}"] = sums[f"{t}/{k}"] / n
        for k in ("loss", "psnr", "ssim", "nrmse"):
            res[f"val_{k}"] = float(np.mean([res[f"val_{k}_{t}"] for t in self.cfg.tasks]))
        return res

    def on_validation(self, val: dict[str, float]) -> bool:
        """Record a validation, write checkpoints; return True when early stopping triggers."""
        if not math.isfinite(val["val_loss"]):
            raise self.diverged(f"the validation loss is {val['val_loss']} at step {self.step}")
        row: dict[str, Any] = {"step": self.step, "kind": "val", "task": "+".join(self.cfg.tasks),
                               "lr": _lr(self.opt), "time_s": self.elapsed()}
        row.update({k: v for k, v in val.items() if self.multi or not k.endswith(f"_{self.cfg.task}")})
        self.logger.log(row)
        score = val[self.monitor]
        es = self.cfg.early_stopping
        improved = self.best is None or (
            score > self.best + es.min_delta if self.maximise else score < self.best - es.min_delta)
        if improved:
            self.best, self.best_step, self.bad_vals = score, self.step, 0
            if not all_finite(self.bare):
                raise self.diverged(f"the weights contain NaN/Inf at step {self.step}")
            if self.info.is_main:
                save_model(self.paths.best, self.bare, provenance=self.provenance(), extra=self.extra(val))
        else:
            self.bad_vals += 1
        stop = es.enabled and self.bad_vals >= es.patience
        if stop:
            self.stopped = "early_stopping"
        self.save_resume_point(val)
        return stop

    def elapsed(self) -> float:
        return round(self.elapsed_before + (time.time() - self.t_start), 3)

    # ---- main loop
    def run(self, resume: bool) -> TrainResult:
        cfg = self.cfg
        self.t_start = time.time()
        total = cfg.schedule.steps
        if resume:
            state = load_train_state(self.paths.state)
            try:
                self.load_state(state)
            except (RuntimeError, ValueError, KeyError, TypeError, IndexError, AttributeError) as err:
                first = next((ln.strip() for ln in str(err).splitlines() if ln.strip()), type(err).__name__)
                raise ValueError(
                    f"cannot resume from {self.paths.state}: it does not fit this run's model, optimiser or data "
                    f"({first[:200]}); it was written by another run or damaged. Start a new run, e.g. "
                    f"`unifmir finetune --from {self.paths.last} --out NEW_RUN`"
                ) from None
            if self.info.is_main:
                save_config(self.cfg, self.paths.config)
        elif cfg.checkpoint.validate_at_start:
            self.on_validation(self.validate())
        else:
            self.save_resume_point(None)
        bar = Progress(total, self.step, self.show_progress, desc=f"{cfg.mode} {'+'.join(cfg.tasks)}")
        if self.show_progress:
            bar.write(self.report.summary())
        acc: dict[str, float] = {}
        acc_tasks: set[str] = set()
        stop = self.stopped == "early_stopping"
        try:
            while self.step < total and not stop:
                task = self.sampler.task_at(self.step)
                batch = self.streams[task].next()
                x = batch["input"].to(self.dev, non_blocking=True)
                y = batch["target"].to(self.dev, non_blocking=True)
                self.model.train()
                if self.redrawer is not None and get_task(task).redraws_attention:
                    self.redrawer.step()
                with self.autocast():
                    outs = forward_outputs(self.model, x, task, self.multi, self.stages[task])
                loss, parts = self.losses[task](outs, y, self.step)
                value = float(loss.detach())
                if ddp.any_flag(not math.isfinite(value), self.info, self.dev):
                    raise self.diverged(f"the {task} loss is {value} at step {self.step + 1}")
                self.opt.zero_grad(set_to_none=True)
                self.scaler.scale(loss).backward()
                if cfg.optim.grad_clip is not None:
                    self.scaler.unscale_(self.opt)
                    torch.nn.utils.clip_grad_norm_([p for g in self.opt.param_groups for p in g["params"]],
                                                   cfg.optim.grad_clip)
                self.scaler.step(self.opt)
                self.scaler.update()
                lr = _lr(self.opt)
                self.sched.step()
                self.step += 1
                acc["loss"] = acc.get("loss", 0.0) + value
                acc["n"] = acc.get("n", 0.0) + 1
                for k, v in parts.items():
                    acc[f"loss_{k}"] = acc.get(f"loss_{k}", 0.0) + v
                    acc[f"n_{k}"] = acc.get(f"n_{k}", 0.0) + 1
                acc_tasks.add(task)
                if self.step % cfg.logging.log_every == 0 or self.step == total:
                    red = ddp.all_reduce_sums(acc, self.info, self.dev)
                    row: dict[str, Any] = {"step": self.step, "kind": "train", "task": "+".join(sorted(acc_tasks)),
                                           "lr": lr, "loss": red["loss"] / red["n"], "time_s": self.elapsed()}
                    if get_task(task).two_stage or self.multi:
                        for k in list(red):
                            if k.startswith("loss_") and red.get("n_" + k[5:]):
                                row[k] = red[k] / red["n_" + k[5:]]
                    self.logger.log(row)
                    acc, acc_tasks = {}, set()
                val = None
                if self.step % cfg.checkpoint.val_every == 0 or self.step == total:
                    val = self.validate()
                    stop = self.on_validation(val)
                elif cfg.checkpoint.save_every and self.step % cfg.checkpoint.save_every == 0:
                    self.save_resume_point(None)
                bar.update(1, loss=value, val_psnr=val["val_psnr"] if val else None)
                info = StepInfo(self.step, task, value, lr, val)
                for cb in self.callbacks:
                    cb(info)
        finally:
            bar.close()
        if self.show_progress and self.best is not None:
            print(f"{self.stopped} at step {self.step}; best {self.monitor} {self.best:.4g} at step "
                  f"{self.best_step} -> {self.paths.best}")
        return self.result()

    def result(self) -> TrainResult:
        return TrainResult(
            run_dir=self.paths.root,
            best_checkpoint=self.paths.best if self.paths.best.exists() else None,
            last_checkpoint=self.paths.last,
            final_step=self.step,
            history=list(self.logger.rows),
            stopped=self.stopped,
            best_score=self.best,
            monitor=self.monitor,
            config=self.cfg,
            init=self.report.to_dict(),
        )


def train(
    config: TrainConfig | None,
    run_dir: str | Path,
    *,
    resume: bool = False,
    device: str | torch.device | None = None,
    progress: bool = True,
    callbacks: Sequence[Callback] = (),
) -> TrainResult:
    """Train according to ``config``, writing everything into ``run_dir``.

    Parameters
    ----------
    config:
        The run's configuration. With ``resume=True`` it may be ``None`` (the run's own
        ``config.yaml`` is used); otherwise it must match the saved one except for
        ``schedule.steps``, logging, device, AMP and early stopping.
    run_dir:
        Output folder (``config.yaml``, ``best.pt``, ``last.pt``, ``train_state.pt``,
        ``log.csv``, ``curves.png``). A new run refuses a folder that already holds one.
    resume:
        Continue the interrupted run in ``run_dir`` exactly where its last resume point left it.
    device:
        Overrides ``config.device`` (``cpu``, ``cuda``, ``cuda:1``, ``auto``).
    progress:
        Show a tqdm bar (rank 0 only).
    callbacks:
        Called after every optimiser step with a :class:`StepInfo` (e.g. for monitoring; an
        exception raised by a callback stops the run like an interruption).

    Runs under ``torchrun`` with DistributedDataParallel when the environment says so.
    Raises :class:`TrainingDiverged` on NaN/Inf loss or weights.
    """
    paths = RunPaths(run_dir)
    if resume:
        if not paths.state.is_file():
            raise FileNotFoundError(
                f"{paths.root} holds no resumable run (no {paths.state.name}); start it without --resume")
        saved = load_config(paths.config)
        if config is None:
            config = saved
        else:
            _check_resume_config(saved, config)
    else:
        if config is None:
            raise ValueError("a TrainConfig is needed to start a new run")
        if paths.has_run():
            raise FileExistsError(
                f"{paths.root} already holds a training run; continue it with --resume {paths.root} "
                "or choose another output folder")
    check_data(config, progress=progress)  # every pair of every split, before anything is written
    dev_spec = str(device) if device is not None else config.device
    dev_type = "cuda" if (dev_spec.startswith("cuda") or (dev_spec == "auto" and torch.cuda.is_available())) else "cpu"
    info = ddp.init_distributed(dev_type)
    made = [p for p in (paths.root, *paths.root.parents) if not p.exists()]  # folders this call creates
    if paths.root.is_dir():
        from unifmir._atomic import clean_stale

        clean_stale(paths.root, force=True)  # temporary files of a killed earlier run
    had_config = paths.config.exists()
    try:
        dev = resolve_device(dev_spec, info)
        if info.is_main:
            paths.root.mkdir(parents=True, exist_ok=True)
            if not resume:  # a resumed run rewrites its config only once its state has loaded
                save_config(config, paths.config)
        ddp.barrier(info)
        run = _Run(config, paths.root, dev, info, progress, callbacks)
        run.build()
        return run.run(resume)
    except BaseException:
        if not resume and info.is_main and not paths.has_run():
            # a new run that failed before its first checkpoint leaves nothing behind
            if not had_config:
                paths.config.unlink(missing_ok=True)
            for folder in made:  # innermost first; only while empty
                if not folder.is_dir() or any(folder.iterdir()):
                    break
                folder.rmdir()
        raise
    finally:
        ddp.shutdown(info)
