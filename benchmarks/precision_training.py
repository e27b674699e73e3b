"""bf16 vs fp32 training: loss curves, final validation PSNR and speed of the same fine-tune.

For each task (default ``sr`` and ``denoise``) the small network is trained from scratch twice
on the same randomised stream dataset (``unifmir synth --task T --randomized``: training pairs
drawn on the fly, ``--n`` held-out pairs), with the same seed, steps and batch: once in float32,
once with ``cpu_bf16`` (``--precision bf16``: bfloat16 autocast, float32 weights, optimiser and
loss). The runs are sequential in one process with the same thread count. Printed: steps per
second, the final training loss (mean of the last 10 % of logged steps) and the validation PSNR of
both runs; ``--plot`` writes both loss curves into one PNG per task. The bar (speed issue): final
validation PSNR within 0.1 dB of float32 at equal steps.

    python benchmarks/precision_training.py --steps 400 --threads 1 --plot docs/images/precision_training.png
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from unifmir.data.pairs import synthesize_dataset  # noqa: E402
from unifmir.predict import precision as precision_mod  # noqa: E402
from unifmir.training.config import finetune_config  # noqa: E402
from unifmir.training.loop import train  # noqa: E402


def _log(run: Path) -> tuple[list[int], list[float], list[tuple[int, float]]]:
    steps, loss, val = [], [], []
    with open(run / "log.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["kind"] == "train":
                steps.append(int(row["step"]))
                loss.append(float(row["loss"]))
            elif row["kind"] == "val" and row["val_psnr"]:
                val.append((int(row["step"]), float(row["val_psnr"])))
    return steps, loss, val


def run(task: str, steps: int, batch: int, n: int, work: Path) -> dict[str, dict]:
    data = synthesize_dataset(task, n, work / f"{task}-data", seed=11, randomized=True)
    out: dict[str, dict] = {}
    for name, bf16 in (("fp32", False), ("bf16", True)):
        cfg = finetune_config(task, data, init="scratch", preset="small", steps=steps, lr=5e-4, device="cpu",
                              overrides={"cpu_bf16": bf16, "data": {"batch_size": batch, "patch_size": 64},
                                         "checkpoint": {"val_every": max(1, steps // 4)}})
        t0 = time.perf_counter()
        train(cfg, work / f"{task}-{name}", progress=False)
        seconds = time.perf_counter() - t0
        s, loss, val = _log(work / f"{task}-{name}")
        tail = max(1, len(loss) // 10)
        out[name] = {"seconds": seconds, "steps": s, "loss": loss, "final_loss": float(np.mean(loss[-tail:])),
                     "val": val}
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", default="sr,denoise")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--n", type=int, default=8, help="held-out pairs (validation)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--plot", type=Path, default=None, help="PNG of the loss curves (one panel per task)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    flags = precision_mod.cpu_bf16_flags()
    print(f"torch {torch.__version__}; CPU bf16 flags: {', '.join(flags) or 'none'}; "
          f"{args.threads} thread(s); load {os.getloadavg()}")
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for task in tasks:
            results[task] = run(task, args.steps, args.batch, args.n, Path(tmp))
    print(f"\nsmall preset from scratch, {args.steps} steps, batch {args.batch}, patch 64, lr 5e-4, randomised stream")
    print("| task | precision | seconds | steps/s | vs fp32 | final train loss | val PSNR (last) | delta vs fp32 (dB) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for task, r in results.items():
        for name in ("fp32", "bf16"):
            m = r[name]
            v = m["val"][-1][1]
            print(f"| {task} | {name} | {m['seconds']:.0f} | {args.steps / m['seconds']:.2f} | "
                  f"{r['fp32']['seconds'] / m['seconds']:.2f}x | {m['final_loss']:.4f} | {v:.2f} | "
                  f"{v - r['fp32']['val'][-1][1]:+.2f} |")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.5), squeeze=False)
        for ax, (task, r) in zip(axes[0], results.items()):
            for name in ("fp32", "bf16"):
                ax.plot(r[name]["steps"], r[name]["loss"], label=name, lw=1)
            ax.set(title=f"{task}: training loss (small, from scratch)", xlabel="step", ylabel="L1", yscale="log")
            ax.legend()
        fig.tight_layout()
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plot, dpi=100)
        print(f"wrote {args.plot}")
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
