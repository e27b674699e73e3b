"""Prediction speed and memory: SR and denoise, small and full networks, whole vs tiled, eager vs TorchScript.

Each configuration runs in its own subprocess so that its peak RSS (``ru_maxrss``) is its own.
Timings are for one ``unifmir.predict`` call after building the network (random weights, seed 0),
including normalisation and, for tiled runs, the receptive-field probe (cached on disk after the
first run: the probe is timed separately and reported in the "probe" column).

    python benchmarks/predict_speed.py            # 2048x2048 SR, 64x512x512 denoise (slow on a CPU)
    python benchmarks/predict_speed.py --quick    # 256x256 SR, 4x256x256 denoise, tile 192
    python benchmarks/predict_speed.py --presets small --json out.json

A whole-image run whose estimated memory (``unifmir.predict.api.bytes_per_pixel``) exceeds 80 % of
the available memory is reported as skipped instead of run (``--force-whole`` runs it anyway).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _child(cfg: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    import torch

    if cfg.get("threads"):
        torch.set_num_threads(int(cfg["threads"]))
    from unifmir.model.factory import build_model
    from unifmir.predict.api import available_memory, bytes_per_pixel, halo_for, predict, prepare_module

    torch.manual_seed(0)
    net = build_model(cfg["task"], cfg["preset"]).eval()
    tm = prepare_module(net, cfg["task"])
    shape = tuple(cfg["shape"])
    img = np.random.default_rng(0).random(shape, dtype=np.float32)
    n2d = shape[0] if len(shape) == 3 else 1
    res: dict[str, Any] = {"probe_s": 0.0}
    if cfg["mode"] == "whole":
        est = bytes_per_pixel(tm) * shape[-1] * shape[-2] * min(n2d, cfg["batch"]) + img.nbytes * 8
        avail = available_memory("cpu")
        if est > 0.8 * avail and not cfg.get("force_whole"):
            return {"skipped": f"whole image needs ~{est / 2**30:.1f} GiB (model estimate) > 80% of "
                               f"{avail / 2**30:.1f} GiB available"}
        tile = 10**6
    else:
        tile = cfg["tile"]
        t0 = time.perf_counter()
        rf = halo_for(tm)
        res["probe_s"] = time.perf_counter() - t0
        res["receptive_field"] = rf
    t0 = time.perf_counter()
    y = predict(tm, img, tile=tile, backend=cfg["backend"], batch_size=cfg["batch"])
    dt = time.perf_counter() - t0
    mpix = float(np.prod(shape)) / 1e6
    res.update(
        seconds=dt,
        mpix_per_s=mpix / dt,
        peak_rss_gib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        out_shape=list(y.shape),
    )
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small images (256^2 SR, 4x256^2 denoise, tile 192)")
    ap.add_argument("--presets", default="small,full")
    ap.add_argument("--tasks", default="sr,denoise")
    ap.add_argument("--modes", default="whole,tiled")
    ap.add_argument("--backends", default="eager,torchscript")
    ap.add_argument("--tile", type=int, default=None, help="tile side for tiled runs (default 512, quick 192)")
    ap.add_argument("--batch", type=int, default=4, help="2-D images per call (denoise)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per configuration")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--force-whole", action="store_true",
                    help="run whole-image configurations even where the memory model says they do not fit "
                         "(the operating system may kill them)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(_child(json.loads(args.child))), flush=True)
        return 0
    shapes = {"sr": (256, 256), "denoise": (4, 256, 256)} if args.quick else {
        "sr": (2048, 2048), "denoise": (64, 512, 512)}
    tile = args.tile or (192 if args.quick else 512)
    rows = []
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for preset in args.presets.split(","):
        for task in args.tasks.split(","):
            for mode in args.modes.split(","):
                for backend in args.backends.split(","):
                    cfg = dict(task=task, preset=preset, mode=mode, backend=backend, shape=shapes[task],
                               tile=tile, batch=args.batch, threads=args.threads,
                               force_whole=args.force_whole)
                    t0 = time.time()
                    try:
                        p = subprocess.run([sys.executable, __file__, "--child", json.dumps(cfg)], env=env,
                                           capture_output=True, text=True, timeout=args.timeout)
                        line = [l for l in p.stdout.splitlines() if l.startswith("RESULT ")]
                        if line:
                            res = json.loads(line[-1][7:])
                        elif p.returncode < 0:  # SIGKILL here is usually the out-of-memory killer
                            res = {"error": f"killed by signal {-p.returncode} (out of memory?)"}
                        else:
                            res = {"error": " ".join(p.stderr.strip().splitlines()[-1:]) or f"exit {p.returncode}"}
                    except subprocess.TimeoutExpired:
                        res = {"skipped": f"timeout after {args.timeout:.0f} s"}
                    row = {**cfg, **res, "wall_s": time.time() - t0}
                    rows.append(row)
                    print(_fmt(row), flush=True)
    print()
    print(_table(rows))
    print(f"\nload average at end: {os.getloadavg()}, cpus: {os.cpu_count()}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


def _fmt(r: dict[str, Any]) -> str:
    shape = "x".join(map(str, r["shape"]))
    if "seconds" in r:
        return (f"{r['preset']:5s} {r['task']:7s} {shape:11s} {r['mode']:5s} {r['backend']:11s} "
                f"{r['seconds']:9.1f} s {r['mpix_per_s']:8.4g} MPix/s  peak RSS {r['peak_rss_gib']:5.2f} GiB"
                f"  probe {r['probe_s']:.1f} s")
    return f"{r['preset']:5s} {r['task']:7s} {shape:11s} {r['mode']:5s} {r['backend']:11s} {r.get('skipped') or r.get('error')}"


def _table(rows: list[dict[str, Any]]) -> str:
    out = ["| network | task | image | mode | backend | seconds | MPix/s | peak RSS (GiB) |",
           "|---|---|---|---|---|---:|---:|---:|"]
    for r in rows:
        shape = "x".join(map(str, r["shape"]))
        mode = r["mode"] if r["mode"] == "whole" else f"tiled {r['tile']} (halo from RF {r.get('receptive_field')})"
        if "seconds" in r:
            out.append(f"| {r['preset']} | {r['task']} | {shape} | {mode} | {r['backend']} | {r['seconds']:.1f} | "
                       f"{r['mpix_per_s']:.4g} | {r['peak_rss_gib']:.2f} |")
        else:
            out.append(f"| {r['preset']} | {r['task']} | {shape} | {mode} | {r['backend']} | "
                       f"{r.get('skipped') or r.get('error')} | | |")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
