"""Synthetic pairs per second per task (and structure) on this CPU.

    python benchmarks/synth_speed.py [--repeats 5] [--threads N]

Times :func:`unifmir.data.forward.synthesize` at each task's default size (ground truth + forward
model + noise; no disk I/O) after one warm-up call, and prints a Markdown table. Pair ``i`` uses
``numpy.random.default_rng([0, i])``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from unifmir.data.forward import DEFAULT_SIZE, synthesize

CASES = [
    ("sr", "biosr"),
    ("sr", "bacteria"),
    ("denoise", "nuclei"),
    ("denoise", "ecoli"),
    ("isotropic", "tissue"),
    ("projection", "epithelium"),
    ("volumetric", "neurons"),
]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = ap.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, "
          f"numpy {np.__version__}")
    print()
    print("| task | structure | input shape | target shape | s/pair (median) | pairs/s |")
    print("|---|---|---|---|---|---|")
    for task, structure in CASES:
        p = synthesize(task, np.random.default_rng([0, 999]), structure=structure)  # warm-up
        times = []
        for i in range(args.repeats):
            t = time.perf_counter()
            synthesize(task, np.random.default_rng([0, i]), structure=structure)
            times.append(time.perf_counter() - t)
        med = float(np.median(times))
        print(f"| {task} | {structure} | {tuple(p.input.shape)} | {tuple(p.target.shape)} | "
              f"{med:.3f} | {1 / med:.1f} |")
    print()
    print(f"default sizes: {DEFAULT_SIZE}")
    print()
    print("| ground-truth generator | shape | s (median) |")
    print("|---|---|---|")
    from unifmir.data import synthetic as S

    gens = [
        ("microtubules", S.microtubules, (512, 512)),
        ("actin", S.actin, (512, 512)),
        ("ccps", S.ccps, (512, 512)),
        ("er_network", S.er_network, (512, 512)),
        ("ecoli", S.ecoli, (512, 512)),
        ("saureus", S.saureus, (512, 512)),
        ("cell_junctions", S.cell_junctions, (512, 512)),
        ("nuclei", S.nuclei, (512, 512)),
        ("nuclei", S.nuclei, (64, 256, 256)),
        ("filaments3d", S.filaments3d, (64, 256, 256)),
    ]
    for name, fn, shape in gens:
        fn(shape, np.random.default_rng(999))
        times = []
        for i in range(args.repeats):
            t = time.perf_counter()
            fn(shape, np.random.default_rng([0, i]))
            times.append(time.perf_counter() - t)
        print(f"| {name} | {shape} | {float(np.median(times)):.3f} |")
    if hasattr(os, "getloadavg"):
        print()
        print(f"load average during the run: {os.getloadavg()[0]:.1f} (on {os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
