"""Noise2Void (CAREamics 0.3.5) on one noisy 3D volume: train on the volume itself, predict it.

Runs inside the benchmark's own CAREamics virtual environment (torch 2.14.1 + torchvision 0.29.1,
which do not load beside the project's torch), started by :mod:`real_images_n2v` as::

    <venv>/bin/python real_images_n2v_worker.py IN.npy OUT.npy --workdir DIR [--steps 100] ...

It imports only numpy, torch and careamics (never ``unifmir``). The recipe is the one a user
without ground truth would pick: 3D UNet of depth 2 with 32 initial channels, patch ``8x64x64``
(``Z Y X``; each side clipped to the largest power of two that fits the volume, CAREamics' rule
for patch sizes), batch 8, ``--steps`` optimiser steps (default 100), default N2V masking,
CAREamics' default mean/std normalisation, whole-volume prediction (reflect-padded to
multiples of ``2**depth``, CAREamics' UNet rule, and cropped back). Writes the prediction
(float32, same shape as the input) to ``OUT.npy`` and prints one JSON line with timings.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def _pow2_at_most(n: int, cap: int) -> int:
    p = 8
    while p * 2 <= min(n, cap):
        p *= 2
    return p


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("input", help="noisy volume (.npy, Z Y X)")
    p.add_argument("output", help="where to write the denoised volume (.npy)")
    p.add_argument("--workdir", required=True, help="CAREamics work folder (checkpoints)")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--patch", default="8,64,64", help="Z,Y,X patch size")
    p.add_argument("--depth", type=int, default=2)
    p.add_argument("--channels", type=int, default=32, help="initial UNet channels")
    p.add_argument("--seed", type=int, default=1, help="CAREamics seed (> 0)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from careamics import CAREamist
    from careamics.config import create_advanced_n2v_config

    vol = np.load(args.input).astype(np.float32)
    if vol.ndim != 3:
        raise SystemExit(f"expected a Z Y X volume, got shape {vol.shape}")
    want = [int(v) for v in args.patch.split(",")]
    patch = [_pow2_at_most(s, w) for s, w in zip(vol.shape, want)]
    if min(vol.shape) < 8:
        raise SystemExit(f"CAREamics patches need >= 8 pixels per axis; volume {vol.shape}")
    t0 = time.perf_counter()
    cfg = create_advanced_n2v_config(
        experiment_name="real_images_n2v",
        data_type="array",
        axes="ZYX",
        patch_size=patch,
        batch_size=args.batch,
        # one epoch of exactly `steps` batches: CAREamics draws ~volume/patch random patches per
        # image per epoch (one batch for a 16x128x160 volume), so the volume is listed often
        # enough to fill the epoch; with one-batch epochs the default ReduceLROnPlateau
        # scheduler (stepped per epoch) would shrink the learning rate to 1e-8 within 100 steps.
        num_epochs=1,
        num_steps=args.steps,
        n_val_patches=2,
        num_workers=0,
        model_params={"depth": args.depth, "num_channels_init": args.channels},
        trainer_params={
            "accelerator": "cpu",
            "devices": 1,
            "enable_model_summary": False,
        },
        seed=args.seed,
    )
    os.makedirs(args.workdir, exist_ok=True)
    cm = CAREamist(cfg, work_dir=args.workdir, enable_progress_bar=False)
    per_copy = max(1, (vol.shape[0] // patch[0]) * (vol.shape[1] // patch[1]) * (vol.shape[2] // patch[2]))
    copies = -(-args.steps * args.batch // per_copy) + 1
    cm.train(train_data=[vol] * copies)
    t1 = time.perf_counter()
    # whole-volume prediction needs every side divisible by 2**depth: reflect-pad, then crop
    m = 2 ** args.depth
    pad = [(0, (-n) % m) for n in vol.shape]
    preds, _ = cm.predict(np.pad(vol, pad, mode="reflect"), data_type="array", axes="ZYX")
    full = np.asarray(preds[0], dtype=np.float32).reshape([n + p[1] for n, p in zip(vol.shape, pad)])
    pred = full[: vol.shape[0], : vol.shape[1], : vol.shape[2]]
    t2 = time.perf_counter()
    np.save(args.output, pred)
    steps = int(getattr(cm.trainer, "global_step", -1))
    print(json.dumps({"train_s": t1 - t0, "predict_s": t2 - t1, "steps": steps, "copies": copies, "epochs": int(getattr(cm.trainer, "current_epoch", -1)), "patch": patch,
                      "batch": args.batch, "depth": args.depth, "channels": args.channels,
                      "careamics": __import__("careamics").__version__,
                      "torch": torch.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
