"""Forward throughput and peak memory of the UniFMIR networks, per task and input size.

Compares eager vs TorchScript (``torch.jit.script``) and the two window-attention
implementations (``sdpa`` = ``F.scaled_dot_product_attention``, ``matmul`` = the reference's
explicit softmax), for the ``full`` (official) and ``small`` presets. Prints a Markdown table.

* throughput: output megapixels per second, output pixels = ``C_out x H_out x W_out`` per image
  (voxels for the 61-slice volumetric output), batch 1, median over the timed calls;
* peak memory: increase of the process's peak RSS (``VmHWM``) during the forward calls over the
  RSS before the first call (model built, weights resident), read from ``/proc/self/status``
  after resetting the peak with ``/proc/self/clear_refs`` (Linux only, else ``n/a``): activations,
  workspaces and what the allocator keeps, not the weights.

Usage::

    python benchmarks/model_speed.py --quick            # a few minutes on a laptop CPU
    python benchmarks/model_speed.py --presets full --tasks sr denoise --threads 8
    python benchmarks/model_speed.py --versus-reference --tasks sr denoise --size 128 --thread-counts 1 2

``--versus-reference``: the full-size network against the reference's own explicit-matmul
formulation (``benchmarks/reference_swinir.py``, same weights, checked within 1e-5), eager and
TorchScript (fp32) and eager under bf16 autocast, timed interleaved in one process (one call
of each per round, median over rounds) at each thread count, next to the fp32 GEMM bound
measured in the same run (a 2048² ``torch.mm``; network FLOPs counted with
``torch.utils.flop_counter``).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from unifmir.model import build_model  # noqa: E402
from unifmir.tasks import TASKS  # noqa: E402

# input (H = W) sizes per task: (quick, normal); volumetric inputs are light-field views (x11 out)
SIZES: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "sr": ((32, 64), (64, 128)),
    "denoise": ((32, 64), (64, 128)),
    "isotropic": ((32, 64), (64, 128)),
    "projection": ((16, 32), (32, 64)),
    "volumetric": ((8, 16), (8, 16)),  # reflect padding to 8 needs >= 5 pixels; 5..8 all run at 8
}
MODES_QUICK = [("eager", "sdpa"), ("eager", "matmul"), ("script", "sdpa")]
MODES_FULL = [("eager", "sdpa"), ("eager", "matmul"), ("script", "sdpa"), ("script", "matmul")]


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _release_free_memory() -> None:
    """Return freed heap memory to the OS (glibc ``malloc_trim``) so rows do not share a baseline."""
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


@dataclass
class Result:
    preset: str
    task: str
    size: int
    mode: str
    attention: str
    mpix_s: float
    ms: float
    peak_mib: float | None
    out_shape: tuple[int, ...]


def measure(preset: str, task: str, size: int, mode: str, attention: str, min_calls: int, min_time: float) -> Result:
    """Time ``min_calls`` (or ``min_time`` seconds of) forward passes of one configuration."""
    torch.manual_seed(0)
    model = build_model(task, {"preset": preset, "attention": attention}).eval()
    net = torch.jit.script(model) if mode == "script" else model
    spec = TASKS[task]
    x = torch.rand(1, spec.net_in_channels, size, size)
    warmup = 3 if mode == "script" else 1  # the profiling executor optimises after 2 calls
    _release_free_memory()
    base = _status_kib("VmRSS")  # weights (and the scripted module) resident, no activations yet
    have_peak = _reset_peak()
    with torch.inference_mode():
        for _ in range(warmup):
            y = net(x)
        times: list[float] = []
        start = time.perf_counter()
        while len(times) < min_calls or time.perf_counter() - start < min_time:
            t0 = time.perf_counter()
            y = net(x)
            times.append(time.perf_counter() - t0)
        peak = _status_kib("VmHWM")
    med = statistics.median(times)
    pixels = y[0].numel()
    peak_mib = (peak - base) / 1024 if (have_peak and peak is not None and base is not None) else None
    return Result(preset, task, size, mode, attention, pixels / med / 1e6, med * 1e3, peak_mib, tuple(y.shape))


def _gemm_gflops(n: int = 2048, calls: int = 3) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t0 = time.perf_counter()
    for _ in range(calls):
        a @ b
    return 2 * n**3 * calls / (time.perf_counter() - t0) / 1e9


def versus_reference(tasks: list[str], size: int, thread_counts: list[int], rounds: int) -> None:
    """Full preset: reference formulation vs this package (eager, TorchScript, bf16 autocast), side by side."""
    from torch.utils.flop_counter import FlopCounterMode

    from reference_swinir import reference_forward

    print(f"load: {os.getloadavg() if hasattr(os, 'getloadavg') else 'n/a'}")
    print()
    print("| task | input | threads | variant | ms / image | vs reference | input kpx/s | % of fp32 GEMM bound | max abs diff vs reference |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|")
    for task in tasks:
        torch.manual_seed(0)
        net = build_model(task, {"preset": "full"}).eval()
        x = torch.rand(1, TASKS[task].net_in_channels, size, size)
        scripted = torch.jit.script(net)

        def bf16(inp: torch.Tensor) -> torch.Tensor:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return net(inp).float()

        variants = {
            "reference (explicit matmul)": lambda inp: reference_forward(net, inp),
            "eager fp32": net,
            "TorchScript fp32": scripted,
            "eager bf16 autocast": bf16,
        }
        with torch.inference_mode():
            ref = reference_forward(net, x)
            flops = FlopCounterMode(display=False)
            with flops:
                reference_forward(net, x)
            total_flops = flops.get_total_flops()
            diffs = {name: float((f(x).float() - ref).abs().max()) for name, f in variants.items()}
            for k in variants:  # warm-up (TorchScript optimises after 2 calls)
                variants[k](x)
            for threads in thread_counts:
                torch.set_num_threads(threads)
                gemm = _gemm_gflops()
                times: dict[str, list[float]] = {name: [] for name in variants}
                for _ in range(rounds):
                    for name, f in variants.items():
                        t0 = time.perf_counter()
                        f(x)
                        times[name].append(time.perf_counter() - t0)
                gemm = (gemm + _gemm_gflops()) / 2
                med = {name: statistics.median(t) for name, t in times.items()}
                base = med["reference (explicit matmul)"]
                for name in variants:
                    pct = 100 * total_flops / med[name] / (gemm * 1e9)
                    print(
                        f"| {task} | {x.shape[1]}x{size}x{size} | {threads} | {name} | {med[name] * 1e3:.0f} | "
                        f"{base / med[name]:.2f}x | {size * size / med[name] / 1e3:.2f} | {pct:.0f} % | {diffs[name]:.1e} |",
                        flush=True,
                    )
                print(
                    f"| {task} | | {threads} | fp32 GEMM 2048² | {gemm:.0f} GFLOP/s | | "
                    f"{gemm * 1e9 / (total_flops / (size * size)) / 1e3:.1f} (bound) | 100 % | |",
                    flush=True,
                )
        print(f"\n{task}: {total_flops / (size * size) / 1e6:.2f} MFLOP per input pixel (flop counter)")
    print(f"load after: {os.getloadavg() if hasattr(os, 'getloadavg') else 'n/a'}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller inputs, fewer modes and calls")
    ap.add_argument("--presets", nargs="+", default=["full", "small"])
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's default)")
    ap.add_argument("--min-calls", type=int, default=None)
    ap.add_argument("--min-time", type=float, default=None, help="seconds of timed calls per row")
    ap.add_argument("--versus-reference", action="store_true", help="full preset vs the reference formulation")
    ap.add_argument("--size", type=int, default=128, help="input side for --versus-reference")
    ap.add_argument("--thread-counts", type=int, nargs="+", default=[1, 2], help="for --versus-reference")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds for --versus-reference")
    args = ap.parse_args(argv)
    if args.versus_reference:
        tasks = args.tasks if args.tasks != list(TASKS) else ["sr", "denoise"]
        versus_reference(tasks, args.size, args.thread_counts, args.rounds)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    modes = MODES_QUICK if args.quick else MODES_FULL
    min_calls = args.min_calls or (2 if args.quick else 5)
    min_time = args.min_time if args.min_time is not None else (0.5 if args.quick else 2.0)

    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs; batch 1; median of >= {min_calls} calls"
    )
    print()
    print("| preset | task | input (C x H x W) | output | mode | attention | ms / image | output MPix/s | peak mem (MiB) |")
    print("|---|---|---|---|---|---|---:|---:|---:|")
    for preset in args.presets:
        for task in args.tasks:
            for size in SIZES[task][0 if args.quick else 1]:
                for mode, attention in modes:
                    r = measure(preset, task, size, mode, attention, min_calls, min_time)
                    c = TASKS[task].net_in_channels
                    peak = f"{r.peak_mib:.0f}" if r.peak_mib is not None else "n/a"
                    out = " x ".join(str(s) for s in r.out_shape[1:])
                    print(
                        f"| {preset} | {task} | {c} x {size} x {size} | {out} | {mode} | {attention} | "
                        f"{r.ms:.1f} | {r.mpix_s:.3g} | {peak} |",
                        flush=True,
                    )
                    del r
                    _release_free_memory()


if __name__ == "__main__":
    main()
