"""Export time and peak memory of the official full-size checkpoint formats (all gates).

One format at a time, each in its own child process that runs the real CLI
(``unifmir export --model M --task T --out tmp.zip --authors benchmark``) with ``--threads``
torch threads (default 1). The parent polls the child's resident memory (the child and its
subprocesses, e.g. the libtorch 2.0.0 loader) every ``--poll`` seconds and kills the process
group when it exceeds ``--max-gb`` (default 8 GiB), so one format cannot take the machine down.

Formats and the files they come from (``tests/fixtures/unifmir-reference``, see its README):

* ``sr``: ``swinir_x2_in1.pt`` (released ``swinir``, upscale 2, 1 input slice)
* ``denoise``: ``swinir_x1_in5.pt`` (released ``swinir``, upscale 1, 5 input slices)
* ``isotropic``: ``swinir_x1_in1.pt`` (released ``swinir``, upscale 1, 1 input slice)
* ``projection``: no full-size fixture exists (``swinirProj_stage2_small.pt`` is a small
  configuration): the full-size ``swinirProj_stage2`` network is built with seeded random weights
  (``unifmir.build_model("projection", "full")``) and saved as its bare released state_dict
* ``volumetric``: the full-size ``swinir2dto3d`` network (incl. UNetA) built with seeded random
  weights, biases zeroed, saved as its bare released state_dict. The fixture
  ``swinir2dto3d.pt`` (format ``volumetric-fixture``) holds full-size weights too, but neither
  they nor a default initialisation depend on the input (a shuffled input moves the output by
  0.02 % / 0.1 % of its range: the untrained UNetA's output is dominated by its biases), so the
  export's input-sensitivity gate rightly refuses them; with zero biases the output moves by 7 %.

Per export stage the child logs start/end times of the export's main steps (the functions named
in :data:`TRACED`, where they exist); the parent attributes every memory sample to the innermost
step running at that moment. The stage table uses the report's own ``timings``.

    python benchmarks/export_official.py                     # all five formats, 1 thread, cap 8 GiB
    python benchmarks/export_official.py --formats isotropic --max-gb 12 --json iso.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "unifmir-reference"

FORMATS: dict[str, tuple[str, str, str | None]] = {
    "sr": ("sr", "swinir_x2_in1", "swinir_x2_in1.pt"),
    "denoise": ("denoise", "swinir_x1_in5", "swinir_x1_in5.pt"),
    "isotropic": ("isotropic", "swinir_x1_in1", "swinir_x1_in1.pt"),
    "projection": ("projection", "swinirProj_stage2", None),  # built: full size, random weights
    "volumetric": ("volumetric", "swinir2dto3d", None),  # built: full size, random weights, zero biases
    "volumetric-fixture": ("volumetric", "swinir2dto3d", "swinir2dto3d.pt"),  # not in the default run
}
"""format -> (task, released variant, fixture file or None = build the full-size network)."""
DEFAULT_FORMATS = ("sr", "denoise", "isotropic", "projection", "volumetric")
ZERO_BIASES = {"volumetric"}
"""Built formats whose biases (and BatchNorm running means) are zeroed (see the module doc)."""

TRACED: tuple[str, ...] = (
    "unifmir.export.bundle:plan_export",
    "unifmir.export.bundle:write_weights",
    "unifmir.export.bundle:write_expected_outputs",
    "unifmir.export.bundle:run_gates",
    "unifmir.export.bundle:publish",
    "unifmir.export.bundle:_halo",
    "unifmir.export.bundle:_run_core",
    "unifmir.export.weights:write_torchscript",
    "unifmir.export.weights:write_onnx",
    "unifmir.export.weights:write_state_dict",
    "unifmir.export.libtorch_check:check_torchscript",
    "unifmir.export.gates:gate_test_model",
    "unifmir.export.gates:gate_tiled_vs_whole",
    "unifmir.export.gates:gate_tiled_vs_whole_per_axis",
    "unifmir.export.gates:gate_input_sensitivity",
    "unifmir.export.gates:gate_deepimagej",
    "unifmir.export.docs:write_cover",
    "bioimageio.core:test_model",
)
"""``module:function`` steps whose start/end the child logs (missing ones are skipped)."""


# --------------------------------------------------------------------------------------------
# child


def _trace_steps(log: Path) -> None:
    """Wrap the :data:`TRACED` functions so that each call appends start/end lines to ``log``."""
    import functools
    import importlib

    fh = open(log, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives as long as the child

    def wrap(mod: Any, name: str, label: str) -> None:
        fn = getattr(mod, name)

        @functools.wraps(fn)
        def traced(*args: Any, **kwargs: Any) -> Any:
            fh.write(json.dumps({"step": label, "event": "start", "t": time.time()}) + "\n")
            try:
                return fn(*args, **kwargs)
            finally:
                fh.write(json.dumps({"step": label, "event": "end", "t": time.time()}) + "\n")

        setattr(mod, name, traced)

    for item in TRACED:
        mod_name, name = item.split(":")
        try:
            mod = importlib.import_module(mod_name)
        except ImportError:
            continue
        if hasattr(mod, name):
            wrap(mod, name, name)
    # modules that imported a traced function by name (``from bioimageio.core import test_model``
    # inside a function resolves at call time, so patching the package attribute suffices)


def _child(cfg: dict[str, Any]) -> int:
    import torch

    if "build" in cfg:
        task, variant, path, zero = cfg["build"]
        build_released_checkpoint(task, variant, Path(path), zero_biases=bool(zero))
        return 0

    torch.set_num_threads(int(cfg["threads"]))
    _trace_steps(Path(cfg["steps"]))
    import unifmir.export.bundle as bundle
    from unifmir.cli import main

    captured: dict[str, Any] = {}
    orig = bundle.export_model

    from unifmir.export.gates import GateError

    def export_model(*args: Any, **kwargs: Any) -> Any:
        captured["t_start"] = time.time()
        try:
            rep = orig(*args, **kwargs)
        except GateError as err:
            captured["failed"] = [r.line() for r in err.results if not r.ok]
            raise
        captured["report"] = rep
        return rep

    bundle.export_model = export_model  # the CLI imports it from the module at call time
    args = ["export", "--model", cfg["model"], "--task", cfg["task"], "--out", cfg["out"],
            "--authors", "benchmark", *cfg.get("extra", [])]
    t0 = time.perf_counter()
    rc = main(args)
    wall = time.perf_counter() - t0
    rep = captured.get("report")
    result: dict[str, Any] = {"rc": rc, "wall_s": wall, "t_start": captured.get("t_start"),
                              "failed": captured.get("failed", [])}
    if rep is not None:
        result.update(
            timings={k: float(v) for k, v in rep.timings.items()},
            gates=[g.line() for g in rep.gates],
            weight_formats=list(rep.weight_formats),
            torchscript_method=rep.torchscript_method,
            onnx_skipped=rep.onnx_skipped,
            libtorch=rep.libtorch,
            halo=dict(rep.halo),
            bundle_mb=Path(cfg["out"]).stat().st_size / 1e6 if Path(cfg["out"]).is_file() else None,
        )
    Path(cfg["result"]).write_text(json.dumps(result), encoding="utf-8")
    return 0 if rc == 0 else 1


# --------------------------------------------------------------------------------------------
# parent


def _tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants (Linux /proc)."""
    total = 0
    stack = [pid]
    seen: set[int] = set()
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            with open(f"/proc/{p}/statm") as fh:
                total += int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    stack.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError):
            continue
    return total


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def build_released_checkpoint(task: str, variant: str, path: Path, zero_biases: bool = False) -> Path:
    """Full-size network of ``task`` with seeded random weights, saved as its bare released state_dict
    (checked to read back as ``variant``)."""
    import torch

    from unifmir.model.checkpoints import detect_variant
    from unifmir.model.factory import build_model

    torch.manual_seed(0)
    net = build_model(task, "full").eval()
    sd = net.state_dict()
    if zero_biases:
        for name, t in sd.items():
            if name.endswith((".bias", ".running_mean")):
                t.zero_()
    found = detect_variant(sd)
    if found != variant:
        raise RuntimeError(f"the full-size {task} network's state_dict reads as {found!r}, not {variant!r}")
    torch.save(sd, path)
    return path


def _steps_of(log: Path) -> list[tuple[str, float, float]]:
    """(step, start, end) intervals from the child's log (an unfinished step ends at +inf)."""
    open_: dict[str, list[float]] = {}
    out: list[tuple[str, float, float]] = []
    if not log.is_file():
        return out
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            ev = json.loads(line)
        except json.JSONDecodeError:
            continue
        if ev["event"] == "start":
            open_.setdefault(ev["step"], []).append(ev["t"])
        elif open_.get(ev["step"]):
            out.append((ev["step"], open_[ev["step"]].pop(), ev["t"]))
    for step, starts in open_.items():
        out.extend((step, s, float("inf")) for s in starts)
    return out


def _step_peaks(samples: list[tuple[float, int]], steps: list[tuple[str, float, float]]) -> dict[str, dict[str, float]]:
    """Peak RSS (GiB) and summed time per step; a sample counts for the innermost running step."""
    peaks: dict[str, dict[str, float]] = {}
    for step, s, e in steps:
        d = peaks.setdefault(step, {"calls": 0, "seconds": 0.0, "peak_gib": 0.0})
        d["calls"] += 1
        if e != float("inf"):
            d["seconds"] += e - s
    for t, rss in samples:
        running = [(s, step) for step, s, e in steps if s <= t <= e]
        if running:
            step = max(running)[1]  # latest start = innermost
            peaks[step]["peak_gib"] = max(peaks[step]["peak_gib"], rss / 2**30)
    return peaks


def run_format(fmt: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    task, variant, fixture = FORMATS[fmt]
    if fixture is None:
        zero = fmt in ZERO_BIASES
        model = work / f"{variant}_full_random.pt"
        # in a child process: the parent stays small (the full-size projection network is ~300 MB)
        build = {"build": [task, variant, str(model), zero]}
        subprocess.run([sys.executable, __file__, "--child", json.dumps(build)], cwd=str(ROOT), check=True)
        source = "seeded random weights" + (", zero biases" if zero else "")
    else:
        model = FIXTURES / fixture
        source = f"fixture {fixture}"
    cfg = {
        "model": str(model), "task": task, "out": str(work / f"{fmt}.zip"), "threads": args.threads,
        "steps": str(work / f"{fmt}.steps.jsonl"), "result": str(work / f"{fmt}.result.json"),
        "extra": list(args.extra),
    }
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", json.dumps(cfg)], env=env, cwd=str(ROOT), start_new_session=True,
    )
    samples: list[tuple[float, int]] = []
    peak = 0
    killed = ""
    loads = [load0[0]]
    last_load = time.perf_counter()
    cap = int(args.max_gb * 2**30)
    while proc.poll() is None:
        rss = _tree_rss(proc.pid)
        samples.append((time.time(), rss))
        peak = max(peak, rss)
        if rss > cap:
            killed = f"killed at {rss / 2**30:.1f} GiB (cap {args.max_gb:g} GiB) after {time.perf_counter() - t0:.0f} s"
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            break
        if args.timeout and time.perf_counter() - t0 > args.timeout:
            killed = f"killed after the {args.timeout:.0f} s timeout"
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            break
        if time.perf_counter() - last_load > 30:
            loads.append(os.getloadavg()[0])
            last_load = time.perf_counter()
        time.sleep(args.poll)
    wall = time.perf_counter() - t0
    loads.append(os.getloadavg()[0])
    res_path = Path(cfg["result"])
    res: dict[str, Any] = json.loads(res_path.read_text()) if res_path.is_file() else {}
    res.update(
        format=fmt, variant=variant, source=source, process_wall_s=wall, peak_rss_gib=peak / 2**30,
        killed=killed, returncode=proc.returncode, load_avg=[round(x, 2) for x in loads],
        steps=_step_peaks(samples, _steps_of(Path(cfg["steps"]))),
    )
    return res


def _markdown(results: list[dict[str, Any]], threads: int) -> str:
    lines = [
        "| format (released variant) | weights | peak RSS GiB | wall time s | stages (s) | result |",
        "|---|---|---:|---:|---|---|",
    ]
    for r in results:
        stages = ", ".join(f"{k} {v:.0f}" for k, v in r.get("timings", {}).items())
        failed = "; ".join(f.split(":")[0].replace("[FAIL] ", "") for f in r.get("failed", [])) or f"(exit {r['returncode']})"
        status = r["killed"] or ("all gates PASS" if r.get("rc") == 0 else f"FAIL {failed}")
        lines.append(
            f"| {r['format']} (`{r['variant']}`) | {r['source']} | {r['peak_rss_gib']:.2f} | "
            f"{r['process_wall_s']:.0f} | {stages or '-'} | {status} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--formats", default=",".join(DEFAULT_FORMATS), help="comma-separated, from " + ", ".join(FORMATS))
    ap.add_argument("--threads", type=int, default=1, help="torch threads in the child (default 1)")
    ap.add_argument("--max-gb", type=float, default=8.0, help="kill an export whose resident memory exceeds this (GiB)")
    ap.add_argument("--timeout", type=float, default=0.0, help="kill an export after this many seconds (0: never)")
    ap.add_argument("--poll", type=float, default=0.25, help="memory polling interval (s)")
    ap.add_argument("--json", default=None, help="write all results to this JSON file")
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="further `unifmir export` arguments")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return _child(json.loads(args.child))
    fmts = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = [f for f in fmts if f not in FORMATS]
    if unknown:
        ap.error(f"unknown format(s) {unknown}; choose from {', '.join(FORMATS)}")
    print(f"CPU: {cpu_model()}, {os.cpu_count()} logical cores; {args.threads} torch thread(s); "
          f"cap {args.max_gb:g} GiB; {time.strftime('%Y-%m-%d %H:%M')}", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="unifmir-export-bench-") as tmp:
        for fmt in fmts:
            r = run_format(fmt, args, Path(tmp))
            results.append(r)
            print(f"\n== {fmt}: {r['process_wall_s']:.0f} s, peak {r['peak_rss_gib']:.2f} GiB "
                  f"{r['killed'] or ''} load {r['load_avg']}", flush=True)
            for step, d in sorted(r["steps"].items(), key=lambda kv: -kv[1]["seconds"]):
                print(f"   {step:28s} x{d['calls']:<3d} {d['seconds']:8.1f} s  peak {d['peak_gib']:.2f} GiB", flush=True)
            for g in r.get("gates", []):
                print(f"   {g[:200]}", flush=True)
    table = _markdown(results, args.threads)
    print("\n" + table)
    print(f"\nCPU: {cpu_model()}; load average at end {os.getloadavg()}")
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu": cpu_model(), "threads": args.threads, "results": results},
                                              indent=2), encoding="utf-8")
    return 0 if all(r.get("rc") == 0 and not r["killed"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
