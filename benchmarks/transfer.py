"""Transfer-experiment benchmark on synthetic bacteria (the DeepBacs-style comparison).

1. Synthesise eukaryotic pretraining datasets (default generators, *no bacteria*) for the
   pretraining tasks and pretrain the ``small`` multi-task model on them
   (``unifmir.training.config.pretrain_config`` + ``unifmir.training.loop.train``).
2. Synthesise the new data: 3D denoising of E. coli-like rods (``structure="ecoli"``) and 2x SR
   of S. aureus-like cocci and of E. coli-like rods (``structure="saureus"`` / ``"ecoli"``).
3. For each, run the transfer experiment (``unifmir experiment transfer``): at an equal step budget,
   (a) from scratch, (b) pretrained without fine-tuning, (c) pretrained + fine-tuned, plus the
   classical baselines, ``care`` protocol; write the tables.

Usage (the README's numbers; about 20 minutes on a 2-core CPU shared with other work)::

    python benchmarks/transfer.py --out bench-transfer

Everything is written under ``--out`` (``data/``, ``pretrain/``, ``transfer-*/``, ``transfer.md``
with all tables). The equivalent shell commands are printed at the start.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch


def _synth(task: str, n: int, out: Path, seed: int, structure: str | None, size: int,
           test_fraction: float) -> Path:
    from unifmir.data.pairs import synthesize_dataset

    if not (out / "dataset.yaml").exists():
        synthesize_dataset(task, n, out, seed, structure=structure, size=size,
                           test_fraction=test_fraction)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("bench-transfer"))
    p.add_argument("--pretrain-tasks", default="sr,denoise,isotropic",
                   help="comma-separated pretraining tasks (eukaryotic structures)")
    p.add_argument("--pretrain-images", type=int, default=12, help="pairs per pretraining task")
    p.add_argument("--pretrain-size", type=int, default=64, help="pretraining image side (input px)")
    p.add_argument("--pretrain-steps", type=int, default=400)
    p.add_argument("--images", type=int, default=24,
                   help="pairs per bacteria dataset (a quarter held out for testing)")
    p.add_argument("--size", type=int, default=64, help="bacteria image side (input pixels)")
    p.add_argument("--steps", type=int, default=200, help="steps per trained arm")
    p.add_argument("--patch", type=int, default=None,
                   help="training patch side (input px) of the trained arms (default: the small "
                   "preset's: SR 64, denoise 32)")
    p.add_argument("--lr", type=float, default=5e-4,
                   help="learning rate of pretraining and of both trained arms")
    p.add_argument("--folds", type=int, default=None, help="K-fold CV instead of train/test")
    p.add_argument("--experiments", default="denoise:ecoli,sr:saureus,sr:ecoli",
                   help="comma-separated TASK:STRUCTURE transfer experiments")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (1: on a CPU shared with other processes, 2 threads "
                   "were 20x slower than 1 from OpenMP oversubscription)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    from unifmir.training.config import pretrain_config
    from unifmir.training.experiment import run_transfer
    from unifmir.training.loop import train

    torch.set_num_threads(args.threads)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    tasks = [t for t in args.pretrain_tasks.split(",") if t]
    experiments = [tuple(e.split(":")) for e in args.experiments.split(",") if e]
    timings: dict[str, float] = {}
    t_all = time.perf_counter()

    print("equivalent commands:")
    for i, t in enumerate(tasks):
        print(f"  unifmir synth --task {t} --n {args.pretrain_images} --size {args.pretrain_size} "
              f"--out {out}/data/pretrain-{t} --seed {args.seed + i}")
    print(f"  unifmir pretrain --config CFG --out RUN   # CFG = {out}/pretrain/config.yaml as written "
          f"by this script: small preset, {args.pretrain_steps} steps, lr {args.lr:g}, task "
          "sampled per step, validation at the end")
    for j, (task, structure) in enumerate(experiments):
        d = f"{out}/data/{structure}-{task}"
        print(f"  unifmir synth --task {task} --structure {structure} --n {args.images} "
              f"--size {args.size} --test-fraction 0.25 --out {d} --seed {args.seed + 100 + j}")
        print(f"  unifmir experiment transfer --task {task} --data {d} --from {out}/pretrain/last.pt "
              f"--steps {args.steps} --lr {args.lr:g}" + (f" --folds {args.folds}" if args.folds else "")
              + (f" --patch {args.patch}" if args.patch else "")
              + f" --out {out}/transfer-{structure}-{task}")

    t0 = time.perf_counter()
    roots = {t: _synth(t, args.pretrain_images, out / "data" / f"pretrain-{t}", args.seed + i,
                       None, args.pretrain_size, 0.1)
             for i, t in enumerate(tasks)}
    new_data = {(task, s): _synth(task, args.images, out / "data" / f"{s}-{task}",
                                  args.seed + 100 + j, s, args.size, 0.25)
                for j, (task, s) in enumerate(experiments)}
    timings["synthesis"] = time.perf_counter() - t0

    pretrained = out / "pretrain" / "last.pt"
    done = out / "pretrain" / "DONE"  # last.pt alone also exists mid-run
    t0 = time.perf_counter()
    if not done.exists():
        cfg = pretrain_config(roots, preset="small", steps=args.pretrain_steps, seed=args.seed,
                              device="cpu", task_sampling="step", lr=args.lr,
                              overrides={"checkpoint": {"val_every": args.pretrain_steps},
                                         "data": {"val_samples": 4}})
        train(cfg, out / "pretrain", device="cpu", progress=True)
        done.write_text(f"{args.pretrain_steps} steps\n")
    timings["pretraining"] = time.perf_counter() - t0

    tables = []
    for (task, s), root in new_data.items():
        t0 = time.perf_counter()
        overrides: dict = {"optim": {"lr": args.lr}, "checkpoint": {"val_every": args.steps},
                           "data": {"val_samples": 4}}
        if args.patch:
            overrides["data"]["patch_size"] = args.patch
        res = run_transfer(task, root, pretrained, out / f"transfer-{s}-{task}", steps=args.steps,
                           folds=args.folds, preset="small", seed=args.seed, device="cpu",
                           overrides=overrides)
        timings[f"transfer {s} {task}"] = time.perf_counter() - t0
        tables.append(res.to_markdown())
        print(res.to_markdown())
        _write_report(out, tables, timings)
    timings["total"] = time.perf_counter() - t_all
    print(_write_report(out, tables, timings))
    return 0


def _write_report(out: Path, tables: list[str], timings: dict[str, float]) -> str:
    report = "\n".join(tables) + "\n## Wall-clock (s)\n\n" + "\n".join(
        f"- {k}: {v:.0f}" for k, v in timings.items()) + "\n"
    (out / "transfer.md").write_text(report)
    return report


if __name__ == "__main__":
    sys.exit(main())
