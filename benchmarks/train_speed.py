"""Training speed: optimiser steps per second of the small and full-size UniFMIR networks.

Each measured step is exactly what :mod:`unifmir.training.loop` does per step (forward, the
task's staged L1 loss, backward, Adam step) on in-memory batches of the preset's training
patch/batch size (``finetune_config(task, preset=...)``), so data loading is excluded. Prints a
Markdown table; ``--json`` also writes the numbers.

    python benchmarks/train_speed.py                          # sr + denoise, small + full
    python benchmarks/train_speed.py --tasks sr --presets small --steps 20 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch


def measure(task: str, preset: str, steps: int, warmup: int, device: str) -> dict:
    from unifmir.model.config import resolve_config
    from unifmir.model.factory import build_model
    from unifmir.tasks import get_task
    from unifmir.training.config import finetune_config
    from unifmir.training.losses import StagedL1
    from unifmir.training.loop import forward_outputs

    spec = get_task(task)
    cfg = finetune_config(task, ".", preset=preset, device=device)
    patch = cfg.data.patch_for(task) or spec.patch_size
    batch = cfg.data.batch_for(task)
    torch.manual_seed(0)
    model = build_model(task, resolve_config(cfg.model.preset)).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.optim.lr, betas=cfg.optim.betas)
    loss_fn = StagedL1(task, cfg.schedule.steps_per_epoch)
    stages = spec.two_stage and loss_fn.needs_stages()
    if spec.lenslets:
        x = torch.rand(batch, spec.net_in_channels, patch // spec.lenslets, patch // spec.lenslets)
        y = torch.rand(batch, spec.net_out_channels, patch, patch)
    else:
        x = torch.rand(batch, spec.net_in_channels, patch, patch)
        y = torch.rand(batch, spec.net_out_channels, patch * spec.scale, patch * spec.scale)
    x, y = x.to(device), y.to(device)

    def step() -> None:
        outs = forward_outputs(model, x, task, False, stages)
        loss, _ = loss_fn(outs, y, 0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    return {"task": task, "preset": preset, "patch": patch, "batch": batch,
            "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
            "steps": steps, "seconds": dt, "steps_per_s": steps / dt,
            "patches_per_s": steps * batch / dt}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=["sr", "denoise"])
    ap.add_argument("--presets", nargs="+", default=["small", "full"])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"device {args.device} ({platform.processor() or platform.machine()}, {os.cpu_count()} cores), "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {load:.1f} at start")
    print("| preset | task | params (M) | patch | batch | steps/s | patches/s |")
    print("|---|---|---:|---:|---:|---:|---:|", flush=True)
    rows = []
    for p in args.presets:
        for t in args.tasks:
            r = measure(t, p, args.steps, args.warmup, args.device)
            rows.append(r)
            print(f"| {r['preset']} | {r['task']} | {r['params_M']:.2f} | {r['patch']} | {r['batch']} | "
                  f"{r['steps_per_s']:.3f} | {r['patches_per_s']:.3f} |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
