"""bf16 vs fp32 prediction: speed of the full-size SR network and quality change on synthetic evaluation data.

* speed: ``unifmir.predict`` on one ``--size``² image with the full-size SR network (random
  weights, seed 0; weights do not change the speed), ``precision="fp32"`` and ``"bf16"`` timed
  interleaved in one process (median of ``--rounds``), with max |bf16 - fp32| in normalised units;
* quality: a trained SR model (``--model``, default the committed ``zoo_models/unifmir-sr``)
  on the test split of a synthetic dataset (``--data``, default: ``unifmir synth --task sr --n 40
  --seed 7`` written to a temporary folder), PSNR/SSIM under the ``care`` and ``unifmir``
  protocols for fp32 and bf16, and their difference (the bar is <= 0.05 dB);
* real images (``--real-images sr,denoise``): each committed suite bundle of those tasks on the
  real-image benchmark's crops and degradations (``benchmarks/real_images_physics.py``, every
  condition), ``unifmir.predict`` fp32 vs bf16, ``care`` PSNR/SSIM per condition and the largest
  per-crop PSNR change.

bf16 is forced even where the CPU lacks AMX/AVX-512-BF16 (then it is emulated, slower): this
script measures, ``precision="auto"`` decides.

Usage::

    python benchmarks/precision_speed.py --threads 1 --size 128 --rounds 3
    python benchmarks/precision_speed.py --skip-speed --skip-synthetic --real-images sr,denoise
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import unifmir.predict.precision as precision_mod  # noqa: E402
from unifmir.data.io import read_image  # noqa: E402
from unifmir.data.pairs import list_pairs, synthesize_dataset  # noqa: E402
from unifmir.metrics import evaluate_pair  # noqa: E402
from unifmir.model import build_model  # noqa: E402
from unifmir.predict.api import load_model, predict  # noqa: E402


def speed(size: int, rounds: int) -> None:
    torch.manual_seed(0)
    net = build_model("sr", {"preset": "full"}).eval()
    img = np.random.default_rng(0).uniform(100, 4000, (size, size)).astype(np.float32)
    outs = {p: predict(net, img, precision=p, output_units="normalized") for p in ("fp32", "bf16")}  # warm-up
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for _ in range(rounds):
        for p in times:
            t0 = time.perf_counter()
            predict(net, img, precision=p, output_units="normalized")
            times[p].append(time.perf_counter() - t0)
    med = {p: statistics.median(t) for p, t in times.items()}
    print(f"speed: full-size SR, {size}² input, whole image, {torch.get_num_threads()} thread(s), median of {rounds}")
    print("| precision | seconds | vs fp32 | max abs diff vs fp32 (normalised) |")
    print("|---|---:|---:|---:|")
    for p in ("fp32", "bf16"):
        diff = float(np.abs(outs[p] - outs["fp32"]).max())
        print(f"| {p} | {med[p]:.2f} | {med['fp32'] / med[p]:.2f}x | {diff:.1e} |", flush=True)


def quality(model: str, data: Path | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if data is None:
            data = synthesize_dataset("sr", 40, Path(tmp) / "sr", seed=7)
        net = load_model(model, "sr")
        rows: dict[str, dict[str, list[float]]] = {}
        pairs = list_pairs(data, "test")
        for src, tgt in pairs:
            x, _ = read_image(src)
            gt, _ = read_image(tgt)
            for p in ("fp32", "bf16"):
                y = predict(net, np.asarray(x), task="sr", precision=p)
                for proto in ("care", "unifmir"):
                    m = evaluate_pair(y, np.asarray(gt), proto)
                    r = rows.setdefault(f"{proto} {p}", {"psnr": [], "ssim": []})
                    r["psnr"].append(m["psnr"])
                    r["ssim"].append(m["ssim"])
    print(f"\nquality: {model} on {len(pairs)} synthetic SR test pairs ({data if data else 'temporary'})")
    print("| protocol | PSNR fp32 | PSNR bf16 | delta dB | SSIM fp32 | SSIM bf16 | delta SSIM | max per-image |delta dB| |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for proto in ("care", "unifmir"):
        a, b = rows[f"{proto} fp32"], rows[f"{proto} bf16"]
        per = max(abs(u - v) for u, v in zip(a["psnr"], b["psnr"]))
        print(
            f"| {proto} | {np.mean(a['psnr']):.3f} | {np.mean(b['psnr']):.3f} | {np.mean(b['psnr']) - np.mean(a['psnr']):+.4f} | "
            f"{np.mean(a['ssim']):.4f} | {np.mean(b['ssim']):.4f} | {np.mean(b['ssim']) - np.mean(a['ssim']):+.5f} | {per:.4f} |"
        )


def real_images(tasks: list[str]) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import real_images_data as rd
    import real_images_physics as rp

    images = {k: rd.load_image(k, p) for k, p in rd.fetch_images(log=lambda m: None).items()}
    print("\nreal images: fp32 vs bf16, care protocol, mean over the crops (n) of each condition")
    print("| bundle | condition | n | PSNR fp32 | PSNR bf16 | delta dB | SSIM fp32 | SSIM bf16 | max per-crop |delta dB| |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for task in tasks:
        crops = rp.make_crops(task, images)
        for folder in sorted((ROOT / "zoo_models").glob("*/rdf.yaml")):
            net = load_model(folder.parent, task) if _task_of(folder) == task else None
            if net is None:
                continue
            for cond in rp.CONDITIONS[task]:
                got: dict[str, list[tuple[float, float]]] = {"fp32": [], "bf16": []}
                for crop in crops:
                    lq, target = rp.degrade(crop, cond)
                    for p in got:
                        m = evaluate_pair(predict(net, lq, task=task, precision=p), target, "care")
                        got[p].append((m["psnr"], m["ssim"]))
                a, b = np.array(got["fp32"]), np.array(got["bf16"])
                print(f"| {folder.parent.name} | {cond.name} | {len(a)} | {a[:, 0].mean():.3f} | {b[:, 0].mean():.3f} | "
                      f"{b[:, 0].mean() - a[:, 0].mean():+.4f} | {a[:, 1].mean():.4f} | {b[:, 1].mean():.4f} | "
                      f"{np.abs(b[:, 0] - a[:, 0]).max():.4f} |", flush=True)


def _task_of(rdf: Path) -> str:
    import yaml

    return str(yaml.safe_load(rdf.read_text(encoding="utf-8"))["config"]["unifmir"]["task"])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--model", default=str(ROOT / "zoo_models" / "unifmir-sr"))
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-synthetic", action="store_true", help="skip the synthetic SR quality run")
    ap.add_argument("--real-images", default="", help="comma-separated tasks for the real-image comparison")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    flags = precision_mod.cpu_bf16_flags()
    print(f"torch {torch.__version__}; CPU bf16 flags: {', '.join(flags) or 'none'}; load {os.getloadavg()}")
    if not flags:
        precision_mod.cpu_bf16_flags = lambda: ("forced",)  # type: ignore[assignment]  # measure anyway
    if not args.skip_speed:
        speed(args.size, args.rounds)
    if not args.skip_synthetic:
        quality(args.model, args.data)
    if args.real_images:
        real_images([t.strip() for t in args.real_images.split(",") if t.strip()])
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
