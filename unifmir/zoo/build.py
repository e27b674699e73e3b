"""Build the model suite: recipes in ``packaging/`` -> validated bundles in ``zoo_models/``.

The build is a sequence of steps per model (data -> fine-tune -> evaluate -> export), preceded
by the shared multi-task pretraining. Every finished step writes a small JSON record into the
work folder; a rerun with ``resume=True`` skips finished steps and continues an interrupted
training run exactly (the training loop's own resume), so a killed build loses at most the work
since the last training checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from unifmir._atomic import atomic_path
from unifmir.zoo.fetch import sha256sum
from unifmir.tasks import get_task
from unifmir.zoo.citations import cite_entries
from unifmir.zoo.recipe import DataRecipe, Recipe, SuiteConfig, load_recipes, load_suite, default_packaging_dir

__all__ = ["BuildOptions", "build_suite", "write_suite_readme", "pack_bundle"]


@dataclass
class BuildOptions:
    """Where and how the suite is built."""

    out: Path = Path("zoo_models")
    work: Path = Path(".zoo-work")
    packaging: Path | None = None
    resume: bool = True
    device: str = "cpu"
    progress: bool = True
    step_scale: float = 1.0
    """Multiply every training budget (e.g. 0.01 in tests)."""
    data_scale: float = 1.0
    """Multiply every dataset size (at least 4 pairs are kept)."""
    export_kwargs: dict[str, Any] = field(default_factory=dict)
    threads: str | int = "auto"
    """PyTorch CPU threads (``auto``: the cores the other processes leave free, see ``unifmir._threads``)."""
    weights_from: Path | None = None
    """Take each recipe's trained weights from the bundle ``<weights_from>/<id>/`` instead of
    fine-tuning (re-export in today's bundle format without retraining; evaluation still runs)."""
    log: Callable[[str], None] = print


class _Steps:
    """JSON records of finished steps, one file per step, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def get(self, name: str) -> dict[str, Any] | None:
        path = self.root / f"{name}.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def put(self, name: str, record: dict[str, Any]) -> dict[str, Any]:
        with atomic_path(self.root / f"{name}.json", overwrite=True) as tmp:
            tmp.write_text(json.dumps(record, indent=2, sort_keys=True))
        return record

    def drop(self, name: str) -> None:
        (self.root / f"{name}.json").unlink(missing_ok=True)


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _scaled(n: int, scale: float, minimum: int) -> int:
    return max(minimum, int(round(n * scale)))


def _make_data(data: DataRecipe, task: str, folder: Path, opts: BuildOptions) -> Path:
    """Synthesise (or point at) the dataset of one recipe; reused when already complete."""
    if data.source == "folder":
        if not data.path:
            raise ValueError("a recipe with data.source 'folder' needs data.path")
        return Path(data.path)
    from unifmir.data.pairs import synthesize_dataset

    if (folder / "dataset.yaml").is_file():  # written last by synthesize_dataset: complete
        return folder
    if folder.exists():
        shutil.rmtree(folder)
    return synthesize_dataset(task, _scaled(data.n, opts.data_scale, 4), folder, seed=data.seed,
                              structure=data.structure, test_fraction=data.test_fraction, size=data.size,
                              params=dict(data.params) or None, randomized=data.source == "randomized")


def _train(config: Any, run_dir: Path, opts: BuildOptions) -> Path:
    from unifmir.training.loop import train

    resume = opts.resume and (run_dir / "train_state.pt").is_file()
    if not resume and run_dir.exists():
        shutil.rmtree(run_dir)  # an unresumable leftover (e.g. killed before its first checkpoint)
    result = train(None if resume else config, run_dir, resume=resume, device=opts.device, progress=opts.progress)
    best = Path(result.best_checkpoint or result.last_checkpoint)
    return best


def pretrain(suite: SuiteConfig, opts: BuildOptions, steps: _Steps) -> Path:
    """Train (once, cached by the suite description's digest) the shared multi-task checkpoint."""
    from unifmir.training.config import pretrain_config

    key = f"pretrain-{_digest([suite.model_dump(), opts.step_scale, opts.data_scale])}"
    if opts.resume and (rec := steps.get(key)) and Path(rec["checkpoint"]).is_file():
        opts.log(f"[zoo] shared pretraining: cached ({rec['checkpoint']})")
        return Path(rec["checkpoint"])
    roots = {t.task: _make_data(t.data, t.task, opts.work / "data" / f"pretrain-{t.task}", opts)
             for t in suite.tasks}
    cfg = pretrain_config(roots, preset=suite.preset, steps=_scaled(suite.steps, opts.step_scale, 2),
                          task_sampling=suite.task_sampling, lr=suite.lr, device=opts.device, seed=suite.seed,
                          overrides={"data": {"batch_size": suite.batch_size, "val_samples": 4},
                                     "checkpoint": {"val_every": max(1, _scaled(suite.steps, opts.step_scale, 2) // 2)}})
    opts.log(f"[zoo] shared pretraining on {', '.join(roots)} ({cfg.schedule.steps} steps)")
    t0 = time.perf_counter()
    best = _train(cfg, opts.work / key, opts)
    steps.put(key, {"checkpoint": str(best), "seconds": time.perf_counter() - t0})
    return best


def _param_count(checkpoint: Path) -> int:
    from unifmir.model.checkpoints import load_any

    return sum(p.numel() for p in load_any(checkpoint).parameters())


def build_recipe(recipe: Recipe, pretrained: Path | None, opts: BuildOptions, steps: _Steps) -> dict[str, Any]:
    """Data -> fine-tune -> evaluate -> export for one recipe; returns its table record."""
    from unifmir.training.evaluate import write_report

    # the digest covers what determines the trained weights; metadata/export edits only re-export
    key = f"model-{recipe.id}-{_digest([_trained_fields(recipe), opts.step_scale, opts.data_scale, str(pretrained)])}"
    done = steps.get(key) if opts.resume else None
    if done and Path(done["zip"]).is_file() and done.get("recipe") == recipe.record():
        opts.log(f"[zoo] {recipe.id}: up to date")
        return done
    spec = get_task(recipe.task)
    work = opts.work / key
    data = _make_data(recipe.data, recipe.task, opts.work / "data" / recipe.id, opts)

    # fine-tune (or take the weights of an existing bundle)
    init = {"suite": str(pretrained) if pretrained else "scratch"}.get(recipe.finetune.init, recipe.finetune.init)
    ft = recipe.finetune
    cfg = _finetune_config(recipe, data, init, _scaled(ft.steps, opts.step_scale, 2), opts)
    t0 = time.perf_counter()
    reused = opts.weights_from / recipe.id if opts.weights_from else None
    if reused is not None:
        opts.log(f"[zoo] {recipe.id}: weights from the bundle {reused} (trained {cfg.schedule.steps} steps)")
        best = _checkpoint_from_bundle(reused, work / "reused.pt")
    else:
        opts.log(f"[zoo] {recipe.id}: fine-tuning {spec.name} from {init} ({cfg.schedule.steps} steps)")
        best = _train(cfg, work / "run", opts)
    train_s = time.perf_counter() - t0

    # evaluate on the held-out split, with the task's classical baseline
    result = _held_out(best, data, opts)
    write_report(result, work, overwrite=True, title=f"{recipe.id}: held-out evaluation")
    by_method = result.summary_by_method()
    model_name = result.model_methods[0]
    baselines = [m for m in result.methods if m not in result.model_methods]
    baseline = max(baselines, key=lambda m: by_method[m].mean["psnr"]) if baselines else None

    # export through every gate
    from unifmir.export.bundle import export_model
    from unifmir.zoo.importer import unzip_bundle

    md = recipe.metadata
    metrics = [{"method": "this model", **{k: by_method[model_name].mean[k] for k in ("psnr", "ssim", "nrmse")}}]
    if baseline:
        metrics.append({"method": baseline, **{k: by_method[baseline].mean[k] for k in ("psnr", "ssim", "nrmse")}})
    metadata = {
        "name": md.name, "description": md.description, "tags": md.tags, "license": md.license,
        "version": md.version, "authors": [a.model_dump(exclude_none=True) for a in md.authors],
        "cite": cite_entries(*md.cite), "training_data": md.training_data,
        "operating_range": md.operating_range or _domain_range(recipe), "git_repo": md.git_repo,
        "training_recipe": (f"`unifmir zoo build {recipe.id}` (recipe packaging/recipes/): preset "
                            f"`{recipe.preset}`, fine-tuned {cfg.schedule.steps} steps (batch "
                            f"{ft.batch_size}, patch {cfg.data.patch_for(recipe.task)}) from "
                            f"{'the suite pretraining' if recipe.finetune.init == 'suite' else init}, "
                            f"Adam lr {ft.lr:g}, "
                            + ("L1 loss as in the UniFMIR reference." if ft.loss == "l1" else
                               f"{ft.loss.upper()} loss (the UniFMIR reference: L1).")),
        "metrics": metrics,
        "metrics_protocol": "care: ground truth percentile-normalised (0.1/99.9), prediction affinely "
                            "fitted (least squares), data_range 1; held-out synthetic test split",
        "limitations": "Trained on synthetic data only: fine-tune it on your own microscope's data "
                       "(`unifmir finetune --from rdf.yaml`, see *How to run it*) before drawing "
                       "quantitative conclusions.",
    }
    # the suite keeps one form in the repository (the folder); the zip stays in the work folder
    # (`unifmir zoo pack` makes one from a committed folder)
    opts.out.mkdir(parents=True, exist_ok=True)
    zip_path = opts.work / "bundles" / f"{recipe.id}.zip"
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    # a suite bundle claims deepImageJ only after libtorch 2.0.0 ran it: the check is required
    # here (downloaded and cached once from the registry), not skipped when the cache is empty
    report = export_model(best, recipe.task, zip_path, metadata=metadata, force=True,
                          **{"check_libtorch": True, **recipe.export, **opts.export_kwargs})
    export_s = time.perf_counter() - t0
    unzip_bundle(zip_path, opts.out / recipe.id, force=True)
    n_steps: int = (_trained_steps(opts.out, recipe.id) if reused is not None else None) or cfg.schedule.steps
    record = {
        "rdf_sha256": sha256sum(opts.out / recipe.id / "rdf.yaml"),
        "id": recipe.id, "task": recipe.task, "zip": str(zip_path), "checkpoint": str(best),
        "params": _param_count(best), "size_mb": zip_path.stat().st_size / 1e6,
        "psnr": by_method[model_name].mean["psnr"], "ssim": by_method[model_name].mean["ssim"],
        "baseline": baseline,
        "baseline_psnr": by_method[baseline].mean["psnr"] if baseline else None,
        "baseline_ssim": by_method[baseline].mean["ssim"] if baseline else None,
        "n_test": len(result.images),
        "gates": {g.name: g.ok for g in report.gates}, "weights": report.weight_formats,
        "gates_not_run": [g.name for g in report.gates if g.skipped],
        "train_seconds": train_s, "export_seconds": export_s,
        "steps": n_steps,
        "weights_reused": reused is not None, "consumers": report.consumers,
        "recipe": recipe.record(),
        "zip_sha256": sha256sum(zip_path),
    }
    if recipe.compare_scratch:
        record["scratch"] = scratch_arm(recipe, data, n_steps, opts, steps)
    return steps.put(key, record)


def _trained_fields(recipe: Recipe) -> dict[str, Any]:
    """The recipe fields that determine its trained weights (metadata/export edits only re-export)."""
    return recipe.record("task", "preset", "model", "data", "finetune")


def _held_out(checkpoint: Path, data: Path, opts: BuildOptions) -> Any:
    """The ``care``-protocol evaluation of ``checkpoint`` (and the task's baselines) on the test split."""
    from unifmir.training.evaluate import evaluate_checkpoint

    return evaluate_checkpoint(checkpoint, data, protocol="care", split="test", device=opts.device)


def _finetune_config(recipe: Recipe, data: Path, init: str, n_steps: int, opts: BuildOptions) -> Any:
    """The training config of ``recipe`` on ``data`` from ``init`` for ``n_steps`` steps."""
    from unifmir.training.config import finetune_config

    ft = recipe.finetune
    overrides: dict[str, Any] = {"data": {"batch_size": ft.batch_size}, "checkpoint": {"val_every": ft.val_every},
                                 "loss": {"kind": ft.loss}}
    if ft.patch_size:
        overrides["data"]["patch_size"] = ft.patch_size
    return finetune_config(recipe.task, data, init=init, preset=recipe.preset, steps=n_steps, lr=ft.lr,
                           device=opts.device, model_overrides=recipe.model or None, overrides=overrides)


def scratch_arm(recipe: Recipe, data: Path, n_steps: int, opts: BuildOptions, steps: _Steps) -> dict[str, Any]:
    """The recipe's network trained from scratch for ``n_steps`` steps (the bundle's own budget)
    on the same data, scored on the same held-out split: ``{"psnr", "ssim", "steps", "n_test"}``
    (cached in the work folder)."""
    key = f"scratch-{recipe.id}-{_digest([_trained_fields(recipe), n_steps, opts.data_scale])}"
    if opts.resume and (rec := steps.get(key)):
        return rec
    opts.log(f"[zoo] {recipe.id}: the same network from scratch, same budget ({n_steps} steps)")
    best = _train(_finetune_config(recipe, data, "scratch", n_steps, opts), opts.work / key / "run", opts)
    result = _held_out(best, data, opts)
    mean = result.summary_by_method()[result.model_methods[0]].mean
    return steps.put(key, {"psnr": mean["psnr"], "ssim": mean["ssim"], "steps": n_steps, "n_test": len(result.images)})


def _trained_steps(out: Path, rid: str) -> int | None:
    """The fine-tuning steps the bundle ``out/rid`` was trained with (its committed record), for a
    build that re-exports its weights (``--weights-from``): the recipe's budget is not what they had."""
    return _committed(out).get("bundles", {}).get(rid, {}).get("steps")


def _domain_range(recipe: Recipe) -> str:
    """The operating range of a recipe trained on its task's randomised domain ('' otherwise)."""
    if recipe.data.source != "randomized":
        return ""
    from unifmir.data.domain import get_domain

    return "Trained on randomised acquisitions: " + get_domain(recipe.task).describe() + "."


def _checkpoint_from_bundle(folder: Path, out: Path) -> Path:
    """The network of a unifmir bundle folder, saved as our own checkpoint at ``out``."""
    from unifmir.model.checkpoints import load_any, save_checkpoint

    if not (folder / "rdf.yaml").is_file():
        raise FileNotFoundError(f"--weights-from: no bundle {folder}/rdf.yaml (build the recipe without --weights-from)")
    net = load_any(folder)
    out.parent.mkdir(parents=True, exist_ok=True)
    return save_checkpoint(out, net, provenance={"source": f"bundle {folder.name}"}, overwrite=True)


def pack_bundle(folder: Path, zip_path: Path, *, force: bool = False) -> Path:
    """Zip a bundle folder verbatim (rdf.yaml as written: the consumer-readable form)."""
    import zipfile

    if not (folder / "rdf.yaml").is_file():
        raise FileNotFoundError(f"{folder} is not a bundle folder (no rdf.yaml)")
    with atomic_path(zip_path, overwrite=force) as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for f in sorted(p for p in folder.rglob("*") if p.is_file()):
                z.write(f, f.relative_to(folder).as_posix())
    return zip_path


def current_records(work: Path) -> list[dict[str, Any]]:
    """Per recipe id, the step record of the bundle now on disk.

    A recipe edit leaves the old record behind (its digest differs), so several records may name
    the same zip: a record whose ``zip_sha256`` does not match the file is dropped, and of the
    rest (older records have no hash) the most recently written wins.
    """
    paths = sorted((work / "steps").glob("model-*.json"), key=lambda p: p.stat().st_mtime)
    chosen: dict[str, dict[str, Any]] = {}
    for p in paths:
        r = json.loads(p.read_text())
        z = Path(r["zip"])
        if not z.is_file() or ("zip_sha256" in r and r["zip_sha256"] != sha256sum(z)):
            continue
        chosen[r["id"]] = r
    return list(chosen.values())


SUITE_RECORDS = "records.json"
"""The build records of the bundles in the suite folder (committed with them, so that a build on a
fresh machine, whose work folder is empty, keeps the rows of the bundles it did not rebuild)."""
_LOCAL_FIELDS = ("zip", "checkpoint", "zip_sha256")
"""Record fields that name files of one machine's work folder: not committed."""


def suite_records(work: Path, out: Path) -> list[dict[str, Any]]:
    """The records of every bundle now in ``out``: this machine's (:func:`current_records`) and,
    for the bundles it did not build, those committed in ``out/records.json`` whose bundle folder
    is still the one they describe (same ``rdf.yaml`` SHA-256)."""
    mine = {r["id"]: r for r in current_records(work)}
    committed = _committed(out).get("bundles", {})
    for rid, r in committed.items():
        rdf = Path(out) / rid / "rdf.yaml"
        if rid in mine or not rdf.is_file():
            continue
        if "rdf_sha256" in r and r["rdf_sha256"] != sha256sum(rdf):
            continue  # the folder was rebuilt elsewhere: its record is not this one
        mine[rid] = r
    return list(mine.values())


def _committed(out: Path) -> dict[str, dict[str, dict[str, Any]]]:
    path = Path(out) / SUITE_RECORDS
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def suite_failures(work: Path, out: Path) -> list[dict[str, Any]]:
    """Recipes whose latest build failed a gate: this machine's records, else the committed ones."""
    found = {f["id"]: f for f in _committed(out).get("failed", {}).values()}
    found.update({f["id"]: f for f in _failed_records(work)})
    return list(found.values())


def write_suite_records(records: Iterable[dict[str, Any]], out: Path,
                        failed: Iterable[dict[str, Any]] = ()) -> Path:
    """Write ``out/records.json`` (atomically): the bundles' records without machine-local paths,
    and the recipes that failed a gate."""
    doc = {"bundles": {r["id"]: {k: v for k, v in r.items() if k not in _LOCAL_FIELDS}
                       for r in sorted(records, key=lambda r: r["id"])},
           "failed": {f["id"]: f for f in sorted(failed, key=lambda f: f["id"])}}
    path = Path(out) / SUITE_RECORDS
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path


def _real_image_wins(folder: Path | None = None, rdf_sha256: dict[str, str] | None = None) -> dict[str, str]:
    """Bundle id -> ``"k / n"``: conditions of the real-image benchmark it wins, each task from the
    most recent committed run that covered it (``benchmarks/real_images_results*.json``). A bundle
    whose ``rdf.yaml`` (``rdf_sha256``: id -> hash now) differs from the one benchmarked reads
    ``stale``: its numbers are those of an earlier build."""
    folder = folder or default_packaging_dir().parent / "benchmarks"
    latest: dict[str, tuple[str, dict[str, Any], dict[str, str]]] = {}  # task -> (date, summary, id -> rdf sha)
    for path in sorted(folder.glob("real_images_results*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        meta = doc.get("meta", {})
        date = str(meta.get("date", ""))
        shas = {b["id"]: b["rdf_sha256"] for b in meta.get("bundles", []) if "rdf_sha256" in b}
        for task, summary in doc.get("tasks", {}).items():
            if task not in latest or date > latest[task][0]:
                latest[task] = (date, summary, shas)
    benchmarked: dict[str, str] = {}
    won: dict[str, list[bool]] = {}
    for _, summary, shas in latest.values():
        for cond in summary.get("conditions", []):
            for row in cond.get("rows", []):
                if row.get("kind") == "bundle" and row.get("vs_best_baseline"):
                    won.setdefault(row["method"], []).append(bool(row["vs_best_baseline"]["passes"]))
                    if row["method"] in shas:
                        benchmarked[row["method"]] = shas[row["method"]]
    now = rdf_sha256 or {}
    return {k: (f"{sum(v)} / {len(v)}" if k not in now or benchmarked.get(k, now[k]) == now[k]
                else "stale (rebuilt since the benchmark)") for k, v in won.items()}


def _budget_pixels(r: dict[str, Any]) -> str:
    ft = (r.get("recipe") or {}).get("finetune", {})
    batch, patch = ft.get("batch_size"), ft.get("patch_size")
    if not batch or not patch:
        return f"{r['steps']} steps"
    return f"{r['steps']:,} x {batch} x {patch}² = {r['steps'] * batch * patch * patch / 1e6:.0f} M"


def _scratch_text(r: dict[str, Any]) -> str:
    """The from-scratch arm of a record against the bundle (``-`` where the recipe has none)."""
    sc = r.get("scratch")
    if not sc:
        return "-"
    wins = r["psnr"] > sc["psnr"] and r["ssim"] > sc["ssim"]
    return (f"{sc['psnr']:.2f} / {sc['ssim']:.3f} "
            f"({'pretrained wins' if wins else '**pretrained does not win**'}: "
            f"{r['psnr'] - sc['psnr']:+.2f} dB, {r['ssim'] - sc['ssim']:+.3f})")


def write_suite_readme(records: Iterable[dict[str, Any]], out: Path,
                       failed: Iterable[dict[str, Any]] = ()) -> Path:
    """Regenerate ``zoo_models/README.md``: one row per bundle with metrics vs baseline and gates."""
    rows = sorted(records, key=lambda r: r["id"])
    lines = [
        "# unifmir model suite",
        "",
        "Generated by `unifmir zoo build` from the recipes in `packaging/`. Every model was trained on",
        "**synthetic data only** (see each bundle's README for the generator and how to fine-tune it on",
        "real data). Metrics: `care` protocol (ground truth percentile-normalised 0.1/99.9, prediction",
        "affinely fitted by least squares, data_range 1), mean over the held-out synthetic test split of",
        "each recipe; the baseline is the task's classical method on the same images (the best-scoring one",
        "where a task has two, e.g. noisy input vs Gaussian filter).",
        "",
        "Consumers: each bundle claims (tags `deepimagej`, `ilastik`) only the consumers its checks passed for;",
        "ilastik needs an output of the input's spatial shape, which of the five tasks only denoising has.",
        "`unifmir zoo pack NAME` zips a folder for upload (the repository keeps the folders only).",
        "",
        "Real images: `benchmarks/real_images.py` degrades real fluorescence images (shipped in PyPI wheels)",
        "with documented physics and runs each bundle through bioimageio.core against the strongest classical",
        "baselines (`benchmarks/real_images_results.md`, per-image numbers); the column counts the conditions",
        "where the bundle beats the best baseline by the task's margin in PSNR and in SSIM.",
        "",
        "Transfer: for the recipes that ask for it (`compare_scratch`), the same network trained from",
        "scratch on the same data with the bundle's own budget, scored on the same held-out split; the",
        "bundle (fine-tuned from the suite pretraining, which never saw that data) is compared with it.",
        "",
        "| model | task | parameters | zip size | synthetic PSNR model / baseline (dB) | synthetic SSIM model / baseline | baseline | beats baseline (synthetic) | real images: conditions won | training budget (steps x batch x patch px) | from scratch, same budget: PSNR / SSIM | consumers | gates |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    real = _real_image_wins(rdf_sha256={r["id"]: r["rdf_sha256"] for r in rows if "rdf_sha256" in r})
    for r in rows:
        beats = (r["baseline_psnr"] is None) or (r["psnr"] > r["baseline_psnr"] and r["ssim"] > r["baseline_ssim"])
        gates = r["gates"]
        not_run = set(r.get("gates_not_run", []))
        gate_txt = "all pass ({})".format(len(gates) - len(not_run)) if all(gates.values()) else \
            "FAIL: " + ", ".join(k for k, v in gates.items() if not v)
        if not_run:
            gate_txt += "; not run: " + ", ".join(sorted(not_run))
        bp = f"{r['baseline_psnr']:.2f}" if r["baseline_psnr"] is not None else "-"
        bs = f"{r['baseline_ssim']:.3f}" if r["baseline_ssim"] is not None else "-"
        lines.append(
            f"| [{r['id']}]({r['id']}/) | {r['task']} | {r['params']:,} | {r['size_mb']:.1f} MB | "
            f"{r['psnr']:.2f} / {bp} | {r['ssim']:.3f} / {bs} | {r['baseline'] or '-'} | "
            f"{'yes' if beats else '**no**'} | {real.get(r['id'], 'not measured')} | {_budget_pixels(r)} | "
            f"{_scratch_text(r)} | "
            f"{', '.join(r.get('consumers') or ['?'])} | {gate_txt} |"
        )
    def _budget(r: dict[str, Any]) -> str:
        planned = (r.get("recipe") or {}).get("finetune", {}).get("steps")
        return f" (recipe: {planned})" if planned and planned != r["steps"] else ""

    lines += ["", "n test images / fine-tuning steps per model (where a build scaled the recipe's "
              "budget with `--step-scale`, the recipe's own budget in brackets): "
              + ", ".join(f"{r['id']} {r['n_test']} / {r['steps']}{_budget(r)}" for r in rows), ""]
    try:
        recipes = load_recipes()
    except Exception:  # the table must still be written when recipes cannot be read
        recipes = {}
    missing = sorted(set(recipes) - {r["id"] for r in rows})
    def _note(rid: str) -> str:
        return " ".join(recipes[rid].notes.split()) if rid in recipes else ""

    notes = [f"- **{r['id']}**: {_note(r['id'])}" for r in rows if _note(r["id"])]
    if notes:
        lines += ["Notes:", "", *notes, ""]
    failed = [f for f in failed if f["id"] not in {r["id"] for r in rows}]
    if failed:
        lines += ["Not in the suite (failed a gate of the latest build; a bundle that fails a gate is removed "
                  "until it passes):", ""]
        lines += [f"- **{f['id']}**: gate(s) {', '.join(f['gates'])}" + (f". {_note(f['id'])}" if _note(f["id"]) else "")
                  for f in failed] + [""]
    missing = [m for m in missing if m not in {f["id"] for f in failed}]
    reused = [r["id"] for r in rows if r.get("weights_reused")]
    if reused:
        lines += [f"Re-exported in today's bundle format from the weights of the previous build, without "
                  f"retraining: {', '.join(reused)} (their step counts are those of that build).", ""]
    if missing:
        lines += [f"Not built yet: {', '.join(missing)} (run `unifmir zoo build {' '.join(missing)}`).", ""]
    path = Path(out) / "README.md"
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines))
    return path


def build_suite(names: Iterable[str] | None = None, opts: BuildOptions | None = None) -> list[dict[str, Any]]:
    """Build the named recipes (default: all) and regenerate the suite README; returns the records."""
    from unifmir._threads import cpu_threads

    opts = opts or BuildOptions()
    with cpu_threads(opts.threads):
        return _build_suite(names, opts)


def _build_suite(names: Iterable[str] | None, opts: BuildOptions) -> list[dict[str, Any]]:
    recipes = load_recipes(opts.packaging)
    wanted = list(names) if names else list(recipes)
    unknown = [n for n in wanted if n not in recipes]
    if unknown:
        raise ValueError(f"unknown recipe(s) {unknown}; available: {', '.join(recipes)}")
    from unifmir.export.gates import GateError

    steps = _Steps(opts.work / "steps")
    needs_suite = opts.weights_from is None and any(recipes[n].finetune.init == "suite" for n in wanted)
    pretrained = pretrain(load_suite(opts.packaging), opts, steps) if needs_suite else None
    records = []
    for n in wanted:
        try:
            records.append(build_recipe(recipes[n], pretrained, opts, steps))
            steps.drop(f"failed-{n}")
        except GateError as err:
            # a bundle that fails a gate leaves the suite until it passes
            failed = [g.name for g in err.results if not g.ok]
            opts.log(f"[zoo] {n}: FAILED gate(s) {', '.join(failed)}; removed from {opts.out}\n{err}")
            shutil.rmtree(opts.out / n, ignore_errors=True)
            steps.put(f"failed-{n}", {"id": n, "gates": failed, "detail": str(err)})
    # the table covers every bundle built so far, not only this call's
    kept = [r for r in suite_records(opts.work, opts.out) if (opts.out / r["id"]).is_dir()]
    failures = [f for f in suite_failures(opts.work, opts.out) if f["id"] not in {r["id"] for r in kept}]
    write_suite_records(kept, opts.out, failures)
    write_suite_readme(kept, opts.out, failed=failures)
    return records


def _failed_records(work: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((work / "steps").glob("failed-*.json"))]
