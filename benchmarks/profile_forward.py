"""Per-op CPU time of the UniFMIR networks (torch.profiler): forward, eager vs TorchScript, and one training step.

Prints the CPU model and its bf16 flags (``amx_bf16``, ``avx512_bf16`` from /proc/cpuinfo), then,
for each task and mode, the ops sorted by self CPU time (Markdown table, top ``--top``), so the
dominant non-GEMM work (LayerNorm, softmax, GELU, copies of window partition/reverse and roll)
is visible next to the GEMMs (``aten::addmm``, ``aten::mm``, ``aten::bmm``, convolution, SDPA).

Usage::

    python benchmarks/profile_forward.py --threads 1                       # full preset, sr + denoise, 128²
    python benchmarks/profile_forward.py --threads 1 --size 64 --modes eager train --top 15
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from unifmir.model import build_model  # noqa: E402
from unifmir.tasks import TASKS  # noqa: E402


def cpu_description() -> str:
    """CPU model name and which of the bf16 matrix flags the kernel reports."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and ":" in line:
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and ":" in line:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    have = [f for f in ("amx_bf16", "amx_tile", "avx512_bf16", "avx512f", "avx2") if f in flags]
    return f"{model}; flags: {', '.join(have) or 'none of amx_bf16/avx512_bf16'}"


def _table(prof: profile, top: int, total_s: float) -> str:
    rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    whole = sum(e.self_cpu_time_total for e in rows) or 1.0
    out = ["| op | calls | self CPU ms | share |", "|---|---:|---:|---:|"]
    for e in rows[:top]:
        out.append(f"| {e.key} | {e.count} | {e.self_cpu_time_total / 1e3:.1f} | {100 * e.self_cpu_time_total / whole:.1f} % |")
    out.append(f"| (wall time of the profiled call) | | {total_s * 1e3:.1f} | |")
    return "\n".join(out)


def profile_one(task: str, preset: str, size: int, mode: str, top: int) -> str:
    torch.manual_seed(0)
    model = build_model(task, {"preset": preset})
    spec = TASKS[task]
    x = torch.rand(1, spec.net_in_channels, size, size)
    if mode == "train":
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            loss = model(x).abs().mean()
            loss.backward()
            opt.step()

        step()  # warm-up (Adam state, allocator)
        t0 = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            step()
    else:
        model.eval()
        net = torch.jit.script(model) if mode == "script" else model
        with torch.inference_mode():
            for _ in range(3 if mode == "script" else 1):  # the profiling executor optimises after 2 calls
                net(x)
            t0 = time.perf_counter()
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                net(x)
    total = time.perf_counter() - t0
    c = spec.net_in_channels
    head = f"#### {preset} {task}, input {c}x{size}x{size}, {mode}\n\n"
    return head + _table(prof, top, total) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--preset", default="full")
    ap.add_argument("--tasks", nargs="+", default=["sr", "denoise"], choices=list(TASKS))
    ap.add_argument("--size", type=int, default=128, help="input height = width")
    ap.add_argument("--modes", nargs="+", default=["eager", "script", "train"], choices=["eager", "script", "train"])
    ap.add_argument("--top", type=int, default=12)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}; {torch.get_num_threads()} thread(s); {cpu_description()}\n")
    for task in args.tasks:
        for mode in args.modes:
            print(profile_one(task, args.preset, args.size, mode, args.top), flush=True)


if __name__ == "__main__":
    main()
