"""``export_model``: a trained UniFMIR network -> a validated bioimage.io bundle (zip or folder).

The export reads top to bottom as named stages; nothing reaches the destination until every
gate passed:

1. :func:`plan_export` — check the destination, load the network, measure the halo, choose the
   tensor layout and the test input (prepared so deepImageJ's and bioimageio.core's percentiles
   agree);
2. :func:`write_weights` — TorchScript (checked in libtorch 2.0.0 when available),
   ``pytorch_state_dict`` + the plain-source architecture file, ONNX where it exports;
3. :func:`describe` — the bioimage.io description (``parent`` on converted weights, true tags,
   the consumers it claims, ``config.unifmir`` to read it back);
4. :func:`write_expected_outputs` — test output computed by bioimageio.core, sample output, cover;
5. :func:`run_gates` — deepImageJ rules, libtorch, input sensitivity, tiled vs whole image;
6. :func:`write_docs` — README with the gate results;
7. :func:`publish` — package with a consumer-readable rdf (:func:`~unifmir.export.metadata.consumer_rdf`), the gates on the
   package itself (JDLL field types, ilastik claim, ``test_model`` per weight format), atomic move.
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
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import torch
from torch import nn

from unifmir._atomic import atomic_path, check_writable
from unifmir.export import describe as D
from unifmir.export import docs, gates, tensors, weights
from unifmir.export.metadata import (
    CONSUMER_FORMAT_VERSION,
    WEIGHTS_ORDER,
    consumer_rdf,
    consumer_rdf_in_zip,
    consumer_support,
    model_descr,
    nickname,
)
from unifmir.model.multitask import UniFMIR
from unifmir.model.network import has_config, input_channels, network_config, network_task
from unifmir.model.single import ProjectionNet, SwinIRNet, VolumetricNet
from unifmir.predict.modules import IsotropicStack
from unifmir.tasks import TaskSpec, get_task, other_task

if TYPE_CHECKING:
    from bioimageio.spec.model import v0_5

__all__ = [
    "ExportReport", "ExportPlan", "BuiltWeights", "export_model", "plan_export", "write_weights", "describe",
    "write_expected_outputs", "run_gates", "write_docs", "publish", "consumer_rdf", "consumer_support",
    "CONSUMER_FORMAT_VERSION", "DEFAULT_REL_TOL",
]

DEFAULT_REL_TOL = 1e-3
"""Declared relative reproducibility tolerance (bioimageio.core default)."""



@dataclass
class ExportReport:
    """What :func:`export_model` did."""

    path: Path
    task: str
    weight_formats: list[gates.ExportedFormat]
    gates: list[gates.GateResult]
    timings: dict[str, float]
    halo: dict[str, int]
    layout: D.TensorLayout
    torchscript_method: str
    onnx_skipped: str = ""
    libtorch: str = ""
    notes: list[str] = field(default_factory=list)
    consumers: list[str] = field(default_factory=list)
    """Consumers the bundle claims (and was checked for)."""

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


def _load_net(model: nn.Module | str | os.PathLike, task: str | None) -> tuple[nn.Module, TaskSpec]:
    """The network of ``model`` in eval mode, and the task it is exported for."""
    if isinstance(model, nn.Module):
        net = model
    else:
        from unifmir.model.checkpoints import load_any

        p = Path(model)
        if not p.exists():
            raise FileNotFoundError(f"model checkpoint {p} does not exist")
        net = load_any(p, task=task)
    recorded = network_task(net)
    if task is not None:
        spec = get_task(task)
        if other_task(recorded, spec):
            raise ValueError(f"the model was built for task {recorded!r}, not {task!r}")
    elif recorded is not None:
        spec = get_task(recorded)
    else:
        raise ValueError("the model does not record its task; pass task=... (--task)")
    if recorded is None and isinstance(net, (SwinIRNet, ProjectionNet, VolumetricNet, UniFMIR)):
        net.task = spec.name  # a network built without a task: record the one it is exported for
    from unifmir.predict.api import check_network  # channels/scale vs the task; NaN weights of a file

    check_network(net, spec, source=None if isinstance(model, nn.Module) else model)
    return net.eval(), spec


def _halo(net: nn.Module, spec: TaskSpec, two_d: bool) -> tuple[int, str]:
    """y/x halo (input pixels) = measured receptive field of the local stage, window-aligned
    (the probe and rule ``unifmir.predict`` pads by: one measurement, one cache entry)."""
    from unifmir.predict.api import halo_for
    from unifmir.predict.borders import yx_halo

    inner, _, _ = weights._task_module(net, spec.name, two_d)
    rf = halo_for(inner)
    h = yx_halo(None if rf is None else max(rf), int(inner.align))
    if rf is None:
        return h, f"local stage not bounded; halo set to {h} px"
    return h, f"receptive field radius {max(rf)} px (measured), halo {h} input px (window multiple)"


def _preprocessing(
    spec: TaskSpec, layout: D.TensorLayout
) -> tuple[list[v0_5.PreprocessingDescr], str, tuple[float, float] | None]:
    from bioimageio.spec.model import v0_5

    steps: list[v0_5.PreprocessingDescr] = [v0_5.EnsureDtypeDescr(kwargs=v0_5.EnsureDtypeKwargs(dtype="float32"))]
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
    cfg = network_config(net) if has_config(net) else None
    avoid = cfg.img_size if cfg is not None else -1
    window = max(1, cfg.window_size) if cfg is not None else 1
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


def _run_core(descr: v0_5.ModelDescr, array: np.ndarray, weight_format: gates.ExportedFormat) -> np.ndarray:
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


# --------------------------------------------------------------------------------------------
# the stages of export_model, in order: plan -> weights -> description -> expected outputs ->
# gates -> docs -> publish


@dataclass
class ExportPlan:
    """Everything decided before any file is written (stage 1)."""

    net: nn.Module
    spec: TaskSpec
    layout: D.TensorLayout
    two_d: bool
    meta: docs.ExportMetadata
    name: str
    out: Path
    folder: bool
    force: bool
    module: nn.Module
    """The exported module (bioimage tensors in and out) that every weight format holds."""
    halo_note: str
    user_in: np.ndarray
    """Test input in user axes (raw units; prepared so both percentile definitions agree)."""
    bio_in: np.ndarray
    preprocessing: list[v0_5.PreprocessingDescr]
    preprocessing_text: str
    percentiles: tuple[float, float] | None
    x_norm: torch.Tensor
    """The test input after the description's preprocessing: what the network sees."""
    seed: int


@dataclass
class BuiltWeights:
    """The weight files in the staging folder and what was checked while writing them (stage 2)."""

    torchscript: v0_5.TorchscriptWeightsDescr
    pytorch_state_dict: v0_5.PytorchStateDictWeightsDescr
    onnx: v0_5.OnnxWeightsDescr | None
    formats: list[gates.ExportedFormat]
    torchscript_method: str
    onnx_skipped: str
    libtorch_state: str
    reference: torch.Tensor
    """Eager output of the exported module on ``plan.x_norm``."""
    abs_tol: float

    @property
    def tolerance(self) -> dict[str, float]:
        return {"relative_tolerance": DEFAULT_REL_TOL, "absolute_tolerance": self.abs_tol}

    def weights_descr(self) -> v0_5.WeightsDescr:
        """The description's ``weights`` (ONNX only where it was written)."""
        from bioimageio.spec.model import v0_5

        if self.onnx is None:
            return v0_5.WeightsDescr(torchscript=self.torchscript, pytorch_state_dict=self.pytorch_state_dict)
        return v0_5.WeightsDescr(torchscript=self.torchscript, pytorch_state_dict=self.pytorch_state_dict,
                                 onnx=self.onnx)


def plan_export(
    model: nn.Module | str | os.PathLike,
    task: str | None,
    out: str | os.PathLike,
    *,
    folder: bool = False,
    metadata: Mapping[str, Any] | str | os.PathLike | docs.ExportMetadata | None = None,
    force: bool = False,
    data: Any = None,
    two_d: bool | None = None,
    seed: int = 0,
) -> ExportPlan:
    """Stage 1: check the destination, load the network, choose the layout and the test input."""
    out = Path(out)
    check_writable(out, force)
    if not folder and out.suffix.lower() != ".zip":
        raise ValueError(f"the bundle name must end in .zip (got {out.name}); or pass folder=True/--folder")
    meta = metadata if isinstance(metadata, docs.ExportMetadata) else docs.load_metadata(metadata)
    net, spec = _load_net(model, task)
    if two_d is None:
        in_chans = input_channels(net)
        two_d = spec.is_2d_variant(in_chans if in_chans is not None else spec.net_in_channels)
    window = network_config(net).window_size if has_config(net) else 8
    halo_in, halo_note = _halo(net, spec, bool(two_d))
    task_module = weights._task_module(net, spec.name, bool(two_d))[0]
    zf = task_module.factor if isinstance(task_module, IsotropicStack) else None
    layout = D.layout_for(spec, window=window, halo=halo_in, two_d=bool(two_d), z_factor=zf)
    module = weights.build_export_module(net, spec.name, layout, two_d=bool(two_d))

    user_in = _test_input(spec, layout, data, seed)
    if data is not None:  # a user's image: crop it (centre) until one whole-image run fits the memory budget
        user_in = tensors.fit_test_input(user_in, layout, task_module)
    pre, pre_text, pct = _preprocessing(spec, layout)
    if pct is not None:
        user_in = tensors.prepare_for_percentiles(user_in, pct)
        chk = tensors.check_percentile_agreement(user_in, pct)
        if not chk.ok:
            raise gates.GateError([gates.GateResult("percentiles", False, chk.describe())])
    bio_in = D.user_to_bioimage(layout, user_in)
    x_norm = _normalised_like_core(torch.from_numpy(bio_in), pct, layout)
    return ExportPlan(
        net=net, spec=spec, layout=layout, two_d=bool(two_d), meta=meta, name=meta.name or f"UniFMIR {spec.title}",
        out=out, folder=folder, force=force, module=module, halo_note=halo_note, user_in=user_in, bio_in=bio_in,
        preprocessing=pre, preprocessing_text=pre_text, percentiles=pct, x_norm=x_norm, seed=seed,
    )


def write_weights(plan: ExportPlan, pkg: Path, *, onnx: bool = True, check_libtorch: bool | None = None) -> BuiltWeights:
    """Stage 2: TorchScript (libtorch 2.0.0-checked), pytorch_state_dict + architecture file, ONNX.

    The network sees normalised data, so the exporters run on the normalised test input.
    """
    from bioimageio.spec.model import v0_5

    if onnx:
        _require_onnx()
    x_norm, module, layout = plan.x_norm, plan.module, plan.layout
    examples = [_trace_example(layout, x_norm, plan.net), x_norm, _second_example(layout, x_norm)]
    refs = weights.eager_outputs(module, examples)  # one whole-image run per distinct example, shared
    ref = refs[id(x_norm)]
    abs_tol = max(1e-4, 1e-4 * float(ref.abs().max()))

    libtorch_fn, libtorch_state = _libtorch_checker(check_libtorch, x_norm, ref, abs_tol)
    ts_method = weights.write_torchscript(pkg / "weights_torchscript.pt", module, examples, abs_tol, libtorch_fn,
                                          refs=refs)

    arch_kwargs = weights.architecture_kwargs(plan.net, plan.spec.name, layout, plan.two_d)
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
        pkg / "weights.onnx", module, examples, abs_tol, spatial_dims=len(layout.in_axes), refs=refs)

    tv = v0_5.Version(torch.__version__.split("+")[0])
    parent: gates.ExportedFormat = "pytorch_state_dict"  # the trained weights; the others are converted from them
    torchscript = v0_5.TorchscriptWeightsDescr(
        source=pkg / "weights_torchscript.pt", pytorch_version=tv, parent=parent,
        comment=f"torch.jit.{ts_method}; loads and reproduces the test output in libtorch 2.0.0"
        if libtorch_state == "passed" else f"torch.jit.{ts_method}",
    )
    state_dict = v0_5.PytorchStateDictWeightsDescr(
        source=pkg / "weights_state_dict.pt",
        architecture=v0_5.ArchitectureFromFileDescr(
            source=pkg / weights.ARCHITECTURE_FILE, callable=v0_5.Identifier(weights.ARCHITECTURE_CALLABLE),
            kwargs=arch_kwargs,
        ),
        pytorch_version=tv,
    )
    onnx_descr = None if onnx_skipped else v0_5.OnnxWeightsDescr(
        source=pkg / "weights.onnx", opset_version=weights.ONNX_OPSET, parent=parent)
    written = {"torchscript", "pytorch_state_dict"} | ({"onnx"} if onnx_descr is not None else set())
    return BuiltWeights(
        torchscript=torchscript, pytorch_state_dict=state_dict, onnx=onnx_descr,
        formats=[f for f in WEIGHTS_ORDER if f in written], torchscript_method=ts_method,
        onnx_skipped=onnx_skipped, libtorch_state=libtorch_state, reference=ref, abs_tol=abs_tol,
    )


def _require_onnx() -> None:
    """ONNX weights are part of the bundle unless disabled: never skip them because a package is missing."""
    import importlib.util

    missing = [m for m in ("onnx", "onnxruntime", "onnxscript") if importlib.util.find_spec(m) is None]
    if missing:
        raise ValueError(
            f"ONNX export needs {', '.join(missing)}: install the pinned export stack with "
            "`pip install 'unifmir[export]'`, or pass --no-onnx (onnx=False) to export without ONNX weights"
        )


def describe(
    plan: ExportPlan,
    built: BuiltWeights,
    pkg: Path,
    consumers: list[docs.ConsumerSupport],
    *,
    cover: Path | None = None,
    out_sample: Path | None = None,
) -> v0_5.ModelDescr:
    """Stage 3: the bioimage.io model description of the staged files."""
    return model_descr(
        plan.spec, plan.layout, plan.meta, name=plan.name, pkg=pkg, pre=plan.preprocessing,
        weights_descr=built.weights_descr(), tol=built.tolerance, cover=cover, readme=pkg / "README.md",
        out_sample=out_sample, consumers=consumers, two_d=plan.two_d, net=plan.net,
        nickname=plan.meta.nickname or nickname(plan.out),
    )


def write_expected_outputs(
    plan: ExportPlan, built: BuiltWeights, pkg: Path, consumers: list[docs.ConsumerSupport]
) -> tuple[v0_5.ModelDescr, np.ndarray]:
    """Stage 4: the test output as bioimageio.core computes it, the sample output and the cover.

    Returns the description that names them and the test output.
    """
    import tifffile

    np.save(pkg / "test_input.npy", plan.bio_in)
    tensors.write_sample_tiff(pkg / "sample_input.tif", plan.layout, plan.user_in)
    np.save(pkg / "test_output.npy", built.reference.numpy().astype(np.float32))  # placeholder
    (pkg / "README.md").write_text("placeholder", encoding="utf-8")
    expected = _run_core(describe(plan, built, pkg, consumers), plan.bio_in, "torchscript")
    np.save(pkg / "test_output.npy", expected)
    user_out = D.bioimage_to_user(plan.layout, expected)
    tifffile.imwrite(pkg / "sample_output.tif", np.ascontiguousarray(user_out, np.float32), imagej=True,
                     metadata={"axes": plan.layout.user_out_axes})
    docs.write_cover(pkg / "cover.png", plan.user_in, user_out, plan.layout)
    descr = describe(plan, built, pkg, consumers, cover=pkg / "cover.png", out_sample=pkg / "sample_output.tif")
    return descr, expected


def run_gates(
    plan: ExportPlan, built: BuiltWeights, descr: v0_5.ModelDescr, expected: np.ndarray, tiled_tolerance: float
) -> list[gates.GateResult]:
    """Stage 5: the gates that need the description and the weights (before packaging)."""
    layout = plan.layout
    results = [
        gates.gate_deepimagej(descr, plan.user_in, plan.percentiles),
        _libtorch_gate(built.libtorch_state),
        gates.gate_input_sensitivity(lambda a: _run_core(descr, a, "torchscript"), plan.bio_in, expected,
                                     seed=plan.seed),
    ]
    halo_in = {a: (h // layout.up.get(a, 1)) for a, h in layout.halo.items()}
    runs = [(p, _tiling_image(plan.spec, layout, p.image, plan.percentiles, plan.seed))
            for p in gates.tiling_plans(descr, halo_in)]  # one run per axis: bounded cost (see tiling_plans)
    results.append(gates.gate_tiled_vs_whole_per_axis(descr, runs, tolerance=tiled_tolerance))
    gates.raise_on_failure(results)
    return results


def write_docs(
    plan: ExportPlan, built: BuiltWeights, pkg: Path, results: list[gates.GateResult],
    consumers: list[docs.ConsumerSupport], tiled_tolerance: float,
) -> Path:
    """Stage 6: README.md with the gate results (the packaged gates are listed as required)."""
    final_gates = ["jdll-fields: rdf.yaml as written has the types deepImageJ/JDLL 0.6.1 casts to",
                   "ilastik: the claim (tag) matches ilastik's shape rule"]
    final_gates += [f"test_model[{f}]: bioimageio.core {_core_version()} test_model" for f in built.formats]
    readme = docs.render_readme(
        plan.spec, plan.layout, plan.meta, name=plan.name, weight_formats=built.formats,
        gate_lines=[g.line() for g in results] + [f"[PASS] {g}" for g in final_gates],
        tolerance=built.tolerance, preprocessing_text=plan.preprocessing_text,
        halo_text=f"{plan.halo_note}; declared halo {dict(plan.layout.halo)} output px; tiled prediction matches "
                  f"whole-image prediction within {tiled_tolerance:.1%} of the output range",
        consumers=consumers, onnx_note=_onnx_note(built.onnx_skipped),
        libtorch_checked=built.libtorch_state == "passed",
    )
    path = pkg / "README.md"
    path.write_text(readme, encoding="utf-8")
    return path


def publish(
    plan: ExportPlan, descr: v0_5.ModelDescr, formats: list[gates.ExportedFormat], tmp_root: Path
) -> list[gates.GateResult]:
    """Stage 7: package (consumer-readable rdf), the gates on the package itself, then an atomic
    move to the destination. Returns the package gates' results."""
    from bioimageio.spec import save_bioimageio_package

    tmp_zip = tmp_root / "bundle.zip"
    save_bioimageio_package(descr, output_path=tmp_zip)
    rdf = consumer_rdf_in_zip(tmp_zip)
    results = [gates.gate_consumer_fields(rdf), gates.gate_ilastik(rdf)]
    gates.raise_on_failure(results)
    results.extend(gates.gate_test_model(tmp_zip, formats))
    gates.raise_on_failure(results)
    if plan.folder:
        staged = tmp_root / "folder"
        with zipfile.ZipFile(tmp_zip) as z:
            z.extractall(staged)
        _replace_dir(staged, plan.out, plan.force)
    else:
        with atomic_path(plan.out, overwrite=plan.force) as tmp:
            shutil.copyfile(tmp_zip, tmp)
    return results


def export_model(
    model: nn.Module | str | os.PathLike,
    task: str | None,
    out: str | os.PathLike,
    *,
    folder: bool = False,
    metadata: Mapping[str, Any] | str | os.PathLike | docs.ExportMetadata | None = None,
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
            (ours, an official one, or a unifmir bundle).
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
    from unifmir._malloc import limit_heap_fragmentation

    limit_heap_fragmentation()  # ~15 whole-image runs: keep freed activations from piling up (see _malloc)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = now - clock
        clock = now

    plan = plan_export(model, task, out, folder=folder, metadata=metadata, force=force, data=data,
                       two_d=two_d, seed=seed)
    lap("plan")
    tiled_tol = tiled_tolerance if tiled_tolerance is not None else _tiled_tolerance(plan.spec)
    tmp_root = Path(tempfile.mkdtemp(prefix="unifmir-export-", dir=work_dir))
    try:
        pkg = tmp_root / "pkg"
        pkg.mkdir()
        built = write_weights(plan, pkg, onnx=onnx, check_libtorch=check_libtorch)
        lap("weights")
        consumers = consumer_support(plan.layout, built.libtorch_state)
        descr, expected = write_expected_outputs(plan, built, pkg, consumers)
        lap("description+expected")
        results = run_gates(plan, built, descr, expected, tiled_tol)
        lap("gates")
        write_docs(plan, built, pkg, results, consumers, tiled_tol)
        descr = describe(plan, built, pkg, consumers, cover=pkg / "cover.png", out_sample=pkg / "sample_output.tif")
        lap("docs")
        results += publish(plan, descr, built.formats, tmp_root)
        lap("publish")
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)

    return ExportReport(
        path=plan.out, task=plan.spec.name, weight_formats=built.formats, gates=results, timings=timings,
        halo=dict(plan.layout.halo), layout=plan.layout, torchscript_method=built.torchscript_method,
        onnx_skipped=built.onnx_skipped, libtorch=built.libtorch_state, notes=[plan.halo_note],
        consumers=[c.name for c in consumers if c.supported],
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
    """Block-artifact tolerance per task (fraction of the output range): ``TaskSpec.tiled_tolerance``.

    Projection's ENLCN head attends globally and volumetric's UNetA resamples with the image
    size, so blocks cannot reproduce the whole image exactly there.
    """
    return spec.tiled_tolerance if spec.tiled_tolerance is not None else gates.TILED_TOLERANCE


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
        res = lc.check_torchscript(path, [x.numpy()], [ref.numpy()], atol=max(atol, 1.5e-4), rtol=1e-4,
                                   threads=torch.get_num_threads())  # this process's count (--threads)
        return bool(res.ok), str(res.message)

    return check, "passed"


def _libtorch_gate(state: str) -> gates.GateResult:
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
