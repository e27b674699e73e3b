"""``export_model``: a trained UniFMIR network -> a validated bioimage.io bundle (zip or folder).

Order of work (nothing reaches the destination until every gate passed):

1. load the network (``load_any`` for paths/official names), wrap it for bioimage tensors;
2. measure the receptive field -> halo, build the :class:`~unifmir.export.describe.TensorLayout`;
3. test input (user data or the task's synthetic forward model), prepared so deepImageJ's and
   bioimageio.core's percentiles agree (export fails if they still differ);
4. weights in a temporary folder: TorchScript (checked in libtorch 2.0.0 when available),
   ``pytorch_state_dict`` + self-contained architecture file, ONNX where it exports;
5. expected test output computed by running the built description through bioimageio.core;
6. cover, README, rdf -> temporary zip (TorchScript listed first among the weights);
7. gates (:mod:`unifmir.export.gates`), then an atomic move to the destination.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from unifmir._atomic import atomic_path, check_writable
from unifmir.export import describe as D
from unifmir.export import docs, gates, tensors, weights
from unifmir.tasks import TaskSpec, get_task

__all__ = ["ExportReport", "export_model", "DEFAULT_REL_TOL"]

DEFAULT_REL_TOL = 1e-3
"""Declared relative reproducibility tolerance (bioimageio.core default)."""

_WEIGHTS_ORDER = ("torchscript", "pytorch_state_dict", "onnx")


@dataclass
class ExportReport:
    """What :func:`export_model` did."""

    path: Path
    task: str
    weight_formats: list[str]
    gates: list[gates.GateResult]
    timings: dict[str, float]
    halo: dict[str, int]
    layout: D.TensorLayout
    torchscript_method: str
    onnx_skipped: str = ""
    libtorch: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return float(sum(self.timings.values()))

    def summary(self) -> str:
        lines = [f"exported {self.task} -> {self.path} ({self.seconds:.1f} s)"]
        lines += [f"  {g.line()}" for g in self.gates]
        if self.onnx_skipped:
            lines.append(f"  ONNX skipped: {self.onnx_skipped}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------


def _load_net(model: nn.Module | str | os.PathLike, task: str | None) -> nn.Module:
    if isinstance(model, nn.Module):
        net = model
    else:
        from unifmir.model.checkpoints import load_any

        p = Path(model)
        if not p.exists():
            raise FileNotFoundError(f"model checkpoint {p} does not exist")
        net = load_any(p, task=task)
    if getattr(net, "task", None) is None and task is None:
        raise ValueError("the model does not record its task; pass task=... (--task)")
    if task is not None and getattr(net, "task", None) not in (None, get_task(task).name):
        raise ValueError(f"the model was built for task {net.task!r}, not {task!r}")
    if getattr(net, "task", None) is None:
        net.task = get_task(task).name  # type: ignore[assignment]
    return net.eval()


def _halo(net: nn.Module, spec: TaskSpec, two_d: bool) -> tuple[int, str]:
    """y/x halo (input pixels) = measured receptive field of the local stage, window-aligned."""
    from unifmir.predict.receptive import receptive_field

    inner, _, _ = weights._task_module(net, spec.name, two_d)
    align = int(getattr(inner, "align", 8))
    rf = receptive_field(
        inner, lambda m, x: m.local_stage(x), in_channels=int(inner.local_in_channels),
        scale=int(inner.scale), align=align,
    )
    if rf is None:
        h = 4 * align
        return h, f"local stage not bounded; halo set to {h} px"
    r = max(rf)
    h = int(math.ceil(r / align) * align)
    return h, f"receptive field radius {r} px (measured), halo {h} input px (window multiple)"


def _preprocessing(spec: TaskSpec, layout: D.TensorLayout) -> tuple[list[Any], str, tuple[float, float] | None]:
    from bioimageio.spec.model import v0_5

    steps: list[Any] = [v0_5.EnsureDtypeDescr(kwargs=v0_5.EnsureDtypeKwargs(dtype="float32"))]
    if spec.normalization == "percentile":
        lo, hi = spec.percentiles
        axes = [v0_5.AxisId(a) for a in layout.in_axes]
        steps.append(
            v0_5.ScaleRangeDescr(
                kwargs=v0_5.ScaleRangeKwargs(axes=axes, min_percentile=lo, max_percentile=hi)
            )
        )
        text = (f"per-sample percentile scaling `scale_range` ({lo} / {hi} percentiles over "
                f"{', '.join(layout.in_axes)}), as in training")
        return steps, text, (float(lo), float(hi))
    text = "light-field normalisation `x / (1.1 * max(x) / 2) - 1` per sample inside the network module"
    return steps, text, None


def _test_input(
    spec: TaskSpec, layout: D.TensorLayout, data: Any, seed: int
) -> np.ndarray:
    if data is None:
        shape = tensors.default_test_shape(layout)
        return tensors.synthetic_input(spec, shape, seed=seed)
    if isinstance(data, (str, os.PathLike)):
        from unifmir.data.io import read_image

        arr, _ = read_image(data, axes=layout.user_in_axes)
    else:
        arr = np.asarray(data, dtype=np.float32)
    if arr.ndim != len(layout.user_in_axes):
        raise ValueError(
            f"test data must have axes {layout.user_in_axes} ({len(layout.user_in_axes)} dimensions), got shape {arr.shape}"
        )
    # crop onto the size grid (largest valid size <= the image)
    sl = []
    for a, n in zip(layout.user_in_axes.lower(), arr.shape):
        mn, st = layout.min_size[a], layout.step[a]
        if n < mn:
            raise ValueError(f"test data is too small along {a.upper()}: {n} < minimum {mn}")
        keep = mn if st == 0 else mn + (n - mn) // st * st
        if st == 0 and n != mn:
            raise ValueError(f"test data must have exactly {mn} pixels along {a.upper()}, got {n}")
        sl.append(slice(0, keep))
    return np.ascontiguousarray(arr[tuple(sl)], dtype=np.float32)


def _second_example(layout: D.TensorLayout, x: torch.Tensor) -> torch.Tensor:
    """A second valid input size (smaller) to check that exported graphs are not size-specialised."""
    shape = list(x.shape)
    for i, a in enumerate(layout.in_axes, start=2):
        st = layout.step[a]
        if st and shape[i] - st >= layout.min_size[a]:
            shape[i] -= st
    sl = tuple(slice(0, s) for s in shape)
    return x[sl].contiguous()


def _trace_example(layout: D.TensorLayout, x: torch.Tensor, net: nn.Module) -> torch.Tensor:
    """The example the tracing exporters (ONNX, TorchScript fallback) record the graph with.

    Its y/x sizes avoid the network's ``img_size``: shifted-window blocks use their stored
    ``attn_mask`` buffer at exactly that size and compute the mask otherwise, and a trace would
    freeze whichever branch the example took. Sizes grow by one step (edge padding).
    """
    cfg = getattr(net, "config", None)
    avoid = int(getattr(cfg, "img_size", -1))
    window = max(1, int(getattr(cfg, "window_size", 1)))
    pad: list[int] = []
    for a in reversed(layout.in_axes):
        n, st = int(x.shape[2 + layout.in_axes.index(a)]), layout.step[a]
        extra = 0
        if a in ("y", "x") and st:
            while math.ceil((n + extra) / window) * window == avoid:
                extra += st
        pad += [0, extra]
    if not any(pad):
        return x
    return torch.nn.functional.pad(x, pad, mode="replicate")


def _run_core(descr: Any, array: np.ndarray, weight_format: str) -> np.ndarray:
    """Run the description through bioimageio.core exactly as ``test_model`` does."""
    from bioimageio.core import Tensor, create_prediction_pipeline
    from bioimageio.core.digest_spec import create_sample_for_model

    inp = descr.inputs[0]
    pp = create_prediction_pipeline(descr, devices=["cpu"], weight_format=weight_format)
    sample = create_sample_for_model(
        descr, inputs={inp.id: Tensor(array, dims=tuple(str(a.id) for a in inp.axes))}, sample_id="test"
    )
    out = pp.predict_sample_without_blocking(sample, skip_input_padding=True, skip_output_cropping=True)
    return np.asarray(out.members[descr.outputs[0].id].data, dtype=np.float32)


def _reorder_weights(rdf_text: str) -> str:
    """Put ``torchscript`` first under ``weights:`` (deepImageJ takes the first usable format)."""
    import yaml

    data = yaml.safe_load(rdf_text)
    w = data.get("weights", {})
    data["weights"] = {k: w[k] for k in _WEIGHTS_ORDER if k in w} | {k: v for k, v in w.items() if k not in _WEIGHTS_ORDER}
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _rewrite_zip_rdf(zip_path: Path) -> None:
    tmp = zip_path.with_suffix(".reorder.zip")
    with zipfile.ZipFile(zip_path) as zin, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "rdf.yaml":
                data = _reorder_weights(data.decode("utf-8")).encode("utf-8")
            zout.writestr(item, data)
    os.replace(tmp, zip_path)


# --------------------------------------------------------------------------------------------


def export_model(
    model: nn.Module | str | os.PathLike,
    task: str | None,
    out: str | os.PathLike,
    *,
    folder: bool = False,
    metadata: Mapping[str, Any] | str | os.PathLike | None = None,
    force: bool = False,
    data: Any = None,
    two_d: bool | None = None,
    onnx: bool = True,
    check_libtorch: bool | None = None,
    tiled_tolerance: float | None = None,
    seed: int = 0,
    work_dir: str | os.PathLike | None = None,
) -> ExportReport:
    """Export ``model`` as a bioimage.io bundle at ``out`` (``.zip``, or a folder with ``folder``).

    Args:
        model: a single-task network (``unifmir.build_model``/``load_any``) or a checkpoint path
            (ours or an official one).
        task: task name; default ``model.task``.
        out: destination; never overwritten unless ``force``.
        folder: write an unpacked folder instead of a zip.
        metadata: dict or YAML file with :class:`~unifmir.export.docs.ExportMetadata` fields.
        data: test image (path or array, user axes); default: a synthetic input.
        two_d: denoise only: export the 2D (b, c, y, x) variant (default: for single-slice nets).
        onnx: also export ONNX (skipped with a reason when it does not export).
        check_libtorch: run the libtorch 2.0.0 check (None: when libtorch is available/cached).
        tiled_tolerance: block-artifact gate tolerance (fraction of the output range).

    Raises :class:`~unifmir.export.gates.GateError` (nothing written) when a gate fails.
    """
    from bioimageio.spec import save_bioimageio_package
    from bioimageio.spec.model import v0_5

    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    out = Path(out)
    check_writable(out, force)
    if not folder and out.suffix.lower() != ".zip":
        raise ValueError(f"the bundle name must end in .zip (got {out.name}); or pass folder=True/--folder")
    meta = docs.load_metadata(metadata) if not isinstance(metadata, docs.ExportMetadata) else metadata
    net = _load_net(model, task)
    spec = get_task(net.task)
    if two_d is None:
        two_d = spec.name == "denoise" and int(getattr(net, "in_chans", spec.net_in_channels)) == 1
    window = int(getattr(getattr(net, "config", None), "window_size", 8))
    halo_in, halo_note = _halo(net, spec, bool(two_d))
    zf = getattr(weights._task_module(net, spec.name, bool(two_d))[0], "factor", None)
    layout = D.layout_for(spec, window=window, halo=halo_in, two_d=bool(two_d), z_factor=zf)
    module = weights.build_export_module(net, spec.name, layout, two_d=bool(two_d))
    timings["prepare"] = time.perf_counter() - t0

    # ---- test input ------------------------------------------------------------------------
    t1 = time.perf_counter()
    user_in = _test_input(spec, layout, data, seed)
    pre, pre_text, pct = _preprocessing(spec, layout)
    if pct is not None:
        user_in = tensors.prepare_for_percentiles(user_in, pct)
        chk = tensors.check_percentile_agreement(user_in, pct)
        if not chk.ok:
            raise gates.GateError([gates.GateResult("percentiles", False, chk.describe())])
    bio_in = D.user_to_bioimage(layout, user_in)

    name = meta.name or f"UniFMIR {spec.title}"
    tmp_root = Path(tempfile.mkdtemp(prefix="unifmir-export-", dir=work_dir))
    try:
        pkg = tmp_root / "pkg"
        pkg.mkdir()
        np.save(pkg / "test_input.npy", bio_in)
        tensors.write_sample_tiff(pkg / "sample_input.tif", layout, user_in)

        # ---- weights -------------------------------------------------------------------------
        x = torch.from_numpy(bio_in)
        # the network sees normalised data: run the exporters on the normalised test input
        x_norm = _normalised_like_core(x, pct, layout)
        examples = [_trace_example(layout, x_norm, net), x_norm, _second_example(layout, x_norm)]
        with torch.no_grad():
            ref = module(x_norm)
        out_absmax = float(ref.abs().max())
        abs_tol = max(1e-4, 1e-4 * out_absmax)
        timings["inputs"] = time.perf_counter() - t1

        t2 = time.perf_counter()
        libtorch_fn, libtorch_state = _libtorch_checker(check_libtorch, x_norm, ref, abs_tol)
        ts_method = weights.write_torchscript(pkg / "weights_torchscript.pt", module, examples, abs_tol, libtorch_fn)
        timings["torchscript"] = time.perf_counter() - t2
        t3 = time.perf_counter()
        arch_kwargs = weights.architecture_kwargs(net, spec.name, layout, bool(two_d))
        weights.write_state_dict(pkg / "weights_state_dict.pt", module)
        weights.write_architecture(pkg / weights.ARCHITECTURE_FILE, arch_kwargs)
        rebuilt = weights.load_architecture_module(pkg / weights.ARCHITECTURE_FILE, arch_kwargs)
        rebuilt.load_state_dict(torch.load(pkg / "weights_state_dict.pt", weights_only=True))
        with torch.no_grad():
            d_sd = float((rebuilt.eval()(x_norm) - ref).abs().max())
        if d_sd > abs_tol:
            raise gates.GateError([gates.GateResult("pytorch_state_dict", False,
                                                    f"architecture file rebuild differs by {d_sd:.3g}")])
        onnx_skipped = "disabled" if not onnx else weights.write_onnx(
            pkg / "weights.onnx", module, examples, abs_tol, spatial_dims=len(layout.in_axes))
        timings["state_dict+onnx"] = time.perf_counter() - t3

        # ---- description ---------------------------------------------------------------------
        t4 = time.perf_counter()
        tv = torch.__version__.split("+")[0]
        wd: dict[str, Any] = {
            "torchscript": v0_5.TorchscriptWeightsDescr(
                source=pkg / "weights_torchscript.pt", pytorch_version=v0_5.Version(tv),
                comment=f"torch.jit.{ts_method}; loads and reproduces the test output in libtorch 2.0.0"
                if libtorch_state == "passed" else f"torch.jit.{ts_method}",
            ),
            "pytorch_state_dict": v0_5.PytorchStateDictWeightsDescr(
                source=pkg / "weights_state_dict.pt",
                architecture=v0_5.ArchitectureFromFileDescr(
                    source=pkg / weights.ARCHITECTURE_FILE, callable=v0_5.Identifier(weights.ARCHITECTURE_CALLABLE),
                    kwargs=arch_kwargs,
                ),
                pytorch_version=v0_5.Version(tv),
            ),
        }
        if not onnx_skipped:
            wd["onnx"] = v0_5.OnnxWeightsDescr(source=pkg / "weights.onnx", opset_version=weights.ONNX_OPSET)
        formats = [f for f in _WEIGHTS_ORDER if f in wd]

        # placeholder = the eager output; replaced below by what bioimageio.core computes
        np.save(pkg / "test_output.npy", ref.numpy().astype(np.float32))
        tol = {"relative_tolerance": DEFAULT_REL_TOL, "absolute_tolerance": abs_tol}

        def make_descr(cover: Path | None, readme: Path, out_sample: Path | None) -> v0_5.ModelDescr:
            return _model_descr(
                spec, layout, meta, name=name, pkg=pkg, pre=pre, weights_descr=wd, tol=tol,
                cover=cover, readme=readme, out_sample=out_sample,
            )

        (pkg / "README.md").write_text("placeholder", encoding="utf-8")
        descr = make_descr(None, pkg / "README.md", None)
        expected = _run_core(descr, bio_in, "torchscript")
        np.save(pkg / "test_output.npy", expected)
        user_out = D.bioimage_to_user(layout, expected)
        tensors_out = pkg / "sample_output.tif"
        import tifffile

        tifffile.imwrite(tensors_out, np.ascontiguousarray(user_out, np.float32), imagej=True,
                         metadata={"axes": layout.user_out_axes})
        docs.write_cover(pkg / "cover.png", user_in, user_out, layout)
        descr = make_descr(pkg / "cover.png", pkg / "README.md", tensors_out)
        timings["describe"] = time.perf_counter() - t4

        # ---- gates ---------------------------------------------------------------------------
        t5 = time.perf_counter()
        results: list[gates.GateResult] = []
        results.append(gates.gate_ilastik(descr))
        results.append(gates.gate_deepimagej(descr, user_in, pct))
        results.append(_libtorch_gate(libtorch_state, pkg / "weights_torchscript.pt", bio_in, expected, pct, layout))
        tiled_tol = tiled_tolerance if tiled_tolerance is not None else _tiled_tolerance(spec)
        halo_in = {a: (h // layout.up.get(a, 1)) for a, h in layout.halo.items()}
        ns, gate_sizes = gates.tiling_plan(descr, halo_in)
        results.append(gates.gate_tiled_vs_whole(
            descr, _tiling_image(spec, layout, gate_sizes, pct, seed), ns=ns, tolerance=tiled_tol))
        gates.raise_on_failure(results)
        timings["gates_static+tiled"] = time.perf_counter() - t5

        # README with the (so far) gate results, then the package and its test_model gates
        t6 = time.perf_counter()
        readme = docs.render_readme(
            spec, layout, meta, name=name, weight_formats=formats,
            gate_lines=[g.line() for g in results] + [f"[PASS] test_model[{f}]: bioimageio.core {_core_version()} test_model passed" for f in formats],
            tolerance=tol, preprocessing_text=pre_text,
            halo_text=f"{halo_note}; declared halo {dict(layout.halo)} output px; tiled prediction matches whole-image "
                      f"prediction within {tiled_tol:.1%} of the output range",
            onnx_note=_onnx_note(onnx_skipped),
            libtorch_checked=libtorch_state == "passed",
        )
        (pkg / "README.md").write_text(readme, encoding="utf-8")
        descr = make_descr(pkg / "cover.png", pkg / "README.md", tensors_out)
        tmp_zip = tmp_root / "bundle.zip"
        save_bioimageio_package(descr, output_path=tmp_zip)
        _rewrite_zip_rdf(tmp_zip)
        tm = gates.gate_test_model(tmp_zip, formats)
        results.extend(tm)
        gates.raise_on_failure(results)
        timings["gates_test_model"] = time.perf_counter() - t6

        # ---- write the destination -----------------------------------------------------------
        t7 = time.perf_counter()
        if folder:
            staged = tmp_root / "folder"
            with zipfile.ZipFile(tmp_zip) as z:
                z.extractall(staged)
            _replace_dir(staged, out, force)
        else:
            with atomic_path(out, overwrite=force) as tmp:
                shutil.copyfile(tmp_zip, tmp)
        timings["write"] = time.perf_counter() - t7
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)

    return ExportReport(
        path=out, task=spec.name, weight_formats=formats, gates=results, timings=timings,
        halo=dict(layout.halo), layout=layout, torchscript_method=ts_method, onnx_skipped=onnx_skipped,
        libtorch=libtorch_state, notes=[halo_note],
    )


def _tiling_image(
    spec: TaskSpec, layout: D.TensorLayout, sizes: Mapping[str, int], pct: tuple[float, float] | None, seed: int
) -> np.ndarray:
    """A synthetic image of ``sizes`` (bioimage axis ids) for the block-artifact gate."""
    shape = tuple(
        1 if a in layout.singleton_in else int(sizes.get(a, layout.min_size[a]))
        for a in layout.user_in_axes.lower()
    )
    if spec.in_depth:
        shape = tuple(spec.in_depth if a == "z" else n for a, n in zip(layout.user_in_axes.lower(), shape))
    user = tensors.synthetic_input(spec, shape, seed=seed + 1)
    if pct is not None:
        user = tensors.prepare_for_percentiles(user, pct)
    return D.user_to_bioimage(layout, user)


def _onnx_note(reason: str) -> str:
    if not reason:
        return ""
    short = reason if len(reason) < 200 else reason[:200] + " ..."
    return (
        "\nONNX weights are not included: the architecture did not export to a size-independent ONNX graph "
        "(opset 17, legacy exporter) that reproduces PyTorch at two input sizes. Reason: `" + short.replace("`", "'") + "`\n"
    )


def _core_version() -> str:
    import bioimageio.core

    return str(bioimageio.core.__version__)


def _tiled_tolerance(spec: TaskSpec) -> float:
    """Block-artifact tolerance per task (fraction of the output range).

    Projection's ENLCN head attends globally and volumetric's UNetA resamples with the image
    size, so blocks cannot reproduce the whole image exactly there.
    """
    return {"projection": 0.05, "volumetric": 0.25}.get(spec.name, gates.TILED_TOLERANCE)


def _normalised_like_core(x: torch.Tensor, pct: tuple[float, float] | None, layout: D.TensorLayout) -> torch.Tensor:
    """The test input after the description's preprocessing (per-sample scale_range)."""
    if pct is None:
        return x.float()
    arr = x.numpy().astype(np.float64)
    lo = np.quantile(arr, pct[0] / 100.0)
    hi = np.quantile(arr, pct[1] / 100.0)
    return torch.from_numpy(((arr - lo) / (hi - lo + 1e-6)).astype(np.float32))


def _libtorch_checker(
    mode: bool | None, x: torch.Tensor, ref: torch.Tensor, atol: float
) -> tuple[Any, str]:
    """A callable for write_torchscript that runs the libtorch 2.0.0 check, and its state."""
    if mode is False:
        return None, "disabled"
    try:
        from unifmir.export import libtorch_check as lc
    except ImportError as err:
        if mode:
            raise RuntimeError(f"libtorch check unavailable: {err}") from err
        return None, f"unavailable ({err})"
    if mode is None and not lc.is_available():
        return None, "skipped (libtorch 2.0.0 not cached; pass check_libtorch=True / --check-libtorch)"
    def check(path: Path) -> tuple[bool, str]:
        res = lc.check_torchscript(path, [x.numpy()], [ref.numpy()], atol=max(atol, 1.5e-4), rtol=1e-4)
        return bool(res.ok), str(res.message)

    return check, "passed"


def _libtorch_gate(state: str, ts: Path, bio_in: np.ndarray, expected: np.ndarray, pct: Any, layout: Any) -> gates.GateResult:
    if state == "passed":
        return gates.GateResult("libtorch-2.0.0", True, "TorchScript loads and reproduces the output in libtorch 2.0.0")
    return gates.GateResult("libtorch-2.0.0", True, f"not run: {state}", skipped=True)


def _replace_dir(staged: Path, out: Path, force: bool) -> None:
    check_writable(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    shutil.rmtree(tmp)
    shutil.copytree(staged, tmp)
    backup = None
    if out.exists():
        backup = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, backup)
    os.replace(tmp, out)
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True) if backup.is_dir() else backup.unlink()


def _model_descr(
    spec: TaskSpec,
    layout: D.TensorLayout,
    meta: docs.ExportMetadata,
    *,
    name: str,
    pkg: Path,
    pre: list[Any],
    weights_descr: dict[str, Any],
    tol: Mapping[str, float],
    cover: Path | None,
    readme: Path,
    out_sample: Path | None,
) -> Any:
    from bioimageio.spec.model import v0_5

    inp = D.input_descr(
        layout, test_tensor=v0_5.FileDescr(source=pkg / "test_input.npy"),
        sample_tensor=v0_5.FileDescr(source=pkg / "sample_input.tif"), preprocessing=pre,
        description=f"raw {layout.user_in_axes} image (any intensity range; normalised inside)",
    )
    outp = D.output_descr(
        layout, test_tensor=v0_5.FileDescr(source=pkg / "test_output.npy"),
        sample_tensor=v0_5.FileDescr(source=out_sample) if out_sample else None, postprocessing=[],
        description=f"restored {layout.user_out_axes} image in normalised units",
    )
    authors = [v0_5.Author(**a) for a in (meta.authors or [{"name": "unifmir export"}])]
    cite = [
        v0_5.CiteEntry(text="Ma et al., Pretraining a foundation model for generalizable fluorescence "
                       "microscopy-based image restoration, Nature Methods 2024", doi=v0_5.Doi(docs.UNIFMIR_DOI)),
        v0_5.CiteEntry(text="UniFMIR training and test data (Zenodo)", doi=v0_5.Doi(docs.UNIFMIR_DATA_DOI)),
    ]
    for c in meta.cite:
        kw: dict[str, Any] = {"text": c["text"]}
        if c.get("doi"):
            kw["doi"] = v0_5.Doi(c["doi"])
        else:
            kw["url"] = c["url"]
        cite.append(v0_5.CiteEntry(**kw))
    tags = ["unifmir", "fluorescence-light-microscopy", "image-restoration", "pytorch", "swinir", spec.name,
            {"sr": "super-resolution", "denoise": "denoising", "isotropic": "isotropic-reconstruction",
             "projection": "surface-projection", "volumetric": "light-field-microscopy"}[spec.name],
            "3d" if ("z" in layout.in_axes and not layout.singleton_in) or "z" in layout.out_axes else "2d"]
    tags += [t for t in meta.tags if t not in tags]
    config = v0_5.Config(
        bioimageio=v0_5.BioimageioConfig(
            reproducibility_tolerance=[v0_5.ReproducibilityTolerance(**tol)],
        ),
        deepimagej={"allow_tiling": True, "pyramidal_model": False},
    )
    kwargs: dict[str, Any] = dict(
        name=name,
        description=meta.description or f"UniFMIR {spec.title}: {spec.description}",
        authors=authors,
        maintainers=[v0_5.Maintainer(**m) for m in meta.maintainers] if meta.maintainers else [],
        cite=cite,
        license=meta.license,
        tags=tags,
        version=meta.version,
        documentation=v0_5.FileDescr(source=readme),
        covers=[v0_5.FileDescr(source=cover)] if cover else [],
        inputs=[inp],
        outputs=[outp],
        weights=v0_5.WeightsDescr(**weights_descr),
        config=config,
    )
    if meta.git_repo:
        kwargs["git_repo"] = meta.git_repo
    return v0_5.ModelDescr(**kwargs)
