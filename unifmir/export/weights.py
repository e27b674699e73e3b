"""Weights of an exported bundle: TorchScript, ``pytorch_state_dict`` (+ self-contained source), ONNX.

* The exported module is :class:`~unifmir.export._adapter.BioimageAdapter` around the prediction
  layer's whole-image task module (:mod:`unifmir.predict.modules`): bioimage tensors in and out,
  the 5-slice window, z upsampling, etc. inside.
* **TorchScript** is listed first in the rdf so that deepImageJ picks it. We script first and fall
  back to tracing (a scripted ``F.interpolate`` does not load in libtorch 2.0.0); either way the
  file is checked at two input sizes against the eager module.
* **pytorch_state_dict** comes with an architecture file: the network's own torch-only source,
  copied from the package (:mod:`unifmir.export._architecture`), so consumers need only torch.
  Its rdf ``kwargs`` are the network's and the task module's constructor arguments
  (:func:`architecture_kwargs`).
* **ONNX**: legacy exporter (``dynamo=False``), opset 17, one file, IR version <= 8 (what
  deepImageJ's ONNX Runtime 1.13 reads), dynamic batch and spatial axes; skipped with a reason
  when the architecture does not export or the result disagrees.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

import unifmir
from unifmir.export import _architecture
from unifmir.export._adapter import BioimageAdapter
from unifmir.export.describe import TensorLayout
from unifmir.model.factory import single_task_kwargs
from unifmir.model.network import input_channels, network_config
from unifmir.predict.modules import TaskModule
from unifmir.tasks import TaskSpec, get_task

__all__ = [
    "ARCHITECTURE_FILE",
    "ARCHITECTURE_CALLABLE",
    "build_export_module",
    "architecture_kwargs",
    "write_torchscript",
    "write_state_dict",
    "render_architecture",
    "write_architecture",
    "write_onnx",
    "eager_outputs",
    "load_architecture_module",
]

ARCHITECTURE_FILE = "unifmir_architecture.py"
ARCHITECTURE_CALLABLE = _architecture.CALLABLE
ONNX_OPSET = 17


# --------------------------------------------------------------------------------------------
# the exported module


def _task_module(net: nn.Module, task: str, two_d: bool) -> tuple[TaskModule, str, dict[str, Any]]:
    """The prediction layer's whole-image task module for ``net``: (module, class name, kwargs).

    ``kwargs`` are its constructor arguments besides ``net``. The 2D denoise variant
    (single-slice network) uses the plain 2D image module.
    """
    from unifmir.predict import modules as pm

    spec = get_task(task)
    if two_d:
        if spec.task_module_2d is None:
            raise ValueError("the 2D variant exists for the denoise task only")
        in_chans = input_channels(net)
        if in_chans is not None and in_chans != 1:
            raise ValueError(
                f"the 2D denoise variant needs a single-slice network (in_chans 1), this one takes "
                f"{in_chans} slices; export the 3D stack variant instead"
            )
        cls: type[pm.TaskModule] = pm.MODULE_CLASSES[spec.task_module_2d]
    else:
        cls = pm.TASK_MODULES[spec.name]
    kwargs = pm.task_module_kwargs(cls, net, spec)
    return cls(net, **kwargs).eval(), cls.__name__, kwargs


def _adapter_kwargs(spec: TaskSpec, layout: TensorLayout) -> dict[str, bool]:
    return {"drop_singleton_z": bool(layout.singleton_in), "vcd_normalize": spec.normalization == "vcd"}


def build_export_module(net: nn.Module, task: str, layout: TensorLayout, two_d: bool = False) -> nn.Module:
    """The module every weight format holds: ``BioimageAdapter(task_module(net))``, in eval mode."""
    spec = get_task(task)
    inner, _, _ = _task_module(net, spec.name, two_d)
    return BioimageAdapter(inner, **_adapter_kwargs(spec, layout)).eval()


def _plain(value: Any) -> Any:
    """YAML-plain copy: tuples become lists (recursively)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def architecture_kwargs(net: nn.Module, task: str, layout: TensorLayout, two_d: bool = False) -> dict[str, Any]:
    """Keyword arguments of the architecture callable (plain YAML values).

    ``network`` / ``network_kwargs``: the network class and its constructor keywords
    (:func:`unifmir.model.factory.single_task_kwargs` for ``net.config``); ``task_module`` /
    ``task_module_kwargs``: the whole-image task module and its constructor keywords besides the
    network; ``drop_singleton_z`` / ``vcd_normalize``: the adapter's.
    """
    config = network_config(net)
    spec = get_task(task)
    net_cls, net_kwargs = single_task_kwargs(spec.name, config)
    if type(net) is not net_cls:
        raise ValueError(
            f"the network is a {type(net).__name__}, but task {spec.name!r} with its config builds a "
            f"{net_cls.__name__}; export a network built by unifmir.build_model or load_any"
        )
    _, tm_name, tm_kwargs = _task_module(net, spec.name, two_d)
    return _plain({
        "network": net_cls.__name__,
        "network_kwargs": net_kwargs,
        "task_module": tm_name,
        "task_module_kwargs": tm_kwargs,
        **_adapter_kwargs(spec, layout),
    })


def render_architecture(kwargs: dict[str, Any]) -> str:
    """The text of the architecture file for ``kwargs`` (:func:`architecture_kwargs`).

    The network class, the task-module class and :class:`UniFMIRBioimage` with what they use,
    copied from the package sources; identical on every run and machine for the same sources.
    """
    return _architecture.render([kwargs["network"], kwargs["task_module"], ARCHITECTURE_CALLABLE],
                                unifmir.__version__)


def write_architecture(path: Path, kwargs: dict[str, Any]) -> Path:
    """Write the architecture file for ``kwargs`` (the text of :func:`render_architecture`)."""
    path = Path(path)
    path.write_bytes(render_architecture(kwargs).encode("utf-8"))
    return path


def load_architecture_module(path: Path, kwargs: dict[str, Any]) -> nn.Module:
    """Instantiate the architecture file's callable with ``kwargs`` (as bioimageio.core does)."""
    spec = importlib.util.spec_from_file_location(f"_unifmir_arch_{abs(hash(str(path)))}", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return getattr(mod, ARCHITECTURE_CALLABLE)(**kwargs)


def write_state_dict(path: Path, module: nn.Module) -> Path:
    """Save the exported module's state_dict (plain tensors, loads with ``weights_only=True``)."""
    sd = {k: v.detach().clone().contiguous() for k, v in module.state_dict().items()}
    torch.save(sd, path)
    return path


# --------------------------------------------------------------------------------------------
# TorchScript


@contextlib.contextmanager
def _unchunked(module: nn.Module) -> Iterator[None]:
    """Run task modules' local stage on all 2-D slices at once while tracing/exporting.

    The task modules loop over chunks of ``chunk`` slices in Python; a trace (and the legacy ONNX
    exporter, which traces) unrolls that loop for the example's number of slices, so the graph
    would only work for that number. With one chunk covering any size, the single slice
    ``[0:chunk]`` is size-independent.
    """
    saved = [(m, m.chunk) for m in module.modules() if isinstance(m, TaskModule)]
    try:
        for m, _ in saved:
            m.chunk = 1 << 30
        yield
    finally:
        for m, c in saved:
            m.chunk = c


def _distinct(examples: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """``examples`` without repeats of the same tensor object (the trace example is often the test
    input itself): every check runs the full network once per example."""
    return list({id(e): e for e in examples}.values())


def eager_outputs(module: nn.Module, examples: Sequence[torch.Tensor]) -> dict[int, torch.Tensor]:
    """The eager module's output for each distinct example, keyed by ``id(example)``: computed once
    and shared by the TorchScript and ONNX checks (``refs=``), each a whole-image run."""
    with torch.no_grad():
        return {id(e): module(e) for e in _distinct(examples)}


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.shape != b.shape:
        return float("inf")
    return float((a - b).abs().max()) if a.numel() else 0.0


def write_torchscript(
    path: Path,
    module: nn.Module,
    examples: Sequence[torch.Tensor],
    atol: float,
    libtorch_ok: Callable[[Path], tuple[bool, str]] | None = None,
    refs: dict[int, torch.Tensor] | None = None,
) -> str:
    """Script (or trace) ``module`` into ``path``; returns the method used.

    Every candidate is checked on all ``examples`` (different sizes) against the eager module
    (max abs difference <= ``atol``; ``refs``: :func:`eager_outputs`, computed here if not given)
    and, when ``libtorch_ok`` is given, in libtorch 2.0.0.
    """
    checks = _distinct(examples)
    outs = refs if refs is not None else eager_outputs(module, checks)
    refs_list = [outs[id(e)] for e in checks]
    errors: list[str] = []
    for method in ("script", "trace"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if method == "script":
                    ts = torch.jit.script(module)
                else:
                    with torch.no_grad(), _unchunked(module):
                        ts = torch.jit.trace(module, examples[0], check_trace=False)
            ts = ts.eval()
            torch.jit.save(ts, str(path))
            loaded = torch.jit.load(str(path), map_location="cpu")
            with torch.no_grad():
                diffs = [_max_diff(loaded(e), r) for e, r in zip(checks, refs_list)]
            if max(diffs) > atol:
                errors.append(f"{method}: differs from eager by {max(diffs):.3g} (> {atol:g}) at sizes "
                              f"{[tuple(e.shape) for e in checks]}")
                continue
            if libtorch_ok is not None:
                ok, msg = libtorch_ok(path)
                if not ok:
                    errors.append(f"{method}: libtorch 2.0.0: {msg}")
                    continue
            return method
        except Exception as err:  # noqa: BLE001 - try the next method, report all
            errors.append(f"{method}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
    if path.exists():
        path.unlink()
    raise RuntimeError("TorchScript export failed: " + " | ".join(errors))


# --------------------------------------------------------------------------------------------
# ONNX


def write_onnx(
    path: Path, module: nn.Module, examples: Sequence[torch.Tensor], atol: float, spatial_dims: int,
    refs: dict[int, torch.Tensor] | None = None,
) -> str:
    """Export ONNX (legacy exporter, opset 17, IR <= 8, single file). Returns "" or the skip reason.

    The file is checked with onnx's checker and with onnxruntime on every example size.

    Memory: the module is exported *scripted* first, so the task modules' loop over chunks of
    2-D slices becomes an ONNX ``Loop`` and onnxruntime holds one chunk's activations at a time
    (a traced graph runs every slice of the stack in one call: the full-size isotropic network
    needed > 12 GB in onnxruntime at bioimageio.core's test sizes). Tracing (unchunked) is the
    fallback for architectures that do not script into ONNX. Both run under ``torch.no_grad()``:
    the legacy exporter does not disable autograd itself, and a trace with autograd on keeps every
    activation of the example (> 10 GB for the full-size isotropic test input).
    """
    try:
        import onnx
        import onnxruntime as ort
    except ImportError as err:
        return f"onnx/onnxruntime not installed ({err})"
    names = ["b", "c"] + [f"s{i}" for i in range(spatial_dims)]
    dyn = {i: n for i, n in enumerate(names) if n != "c"}
    # output: batch and every spatial axis dynamic (an added z axis is fixed-size anyway)
    out_dyn = {0: "b"} | {i: f"o{i}" for i in range(2, 2 + spatial_dims)}
    reasons: list[str] = []
    outs = refs if refs is not None else eager_outputs(module, examples)
    for method in ("script", "trace"):
        reason = _write_onnx_checked(path, module, examples, atol, method, dyn, out_dyn, onnx, ort, outs)
        if not reason:
            return ""
        reasons.append(f"{method}: {reason}")
    return "; ".join(reversed(reasons))[:500]  # the traced graph's reason first (the scripted one fails more often)


def _write_onnx_checked(
    path: Path, module: nn.Module, examples: Sequence[torch.Tensor], atol: float, method: str,
    dyn: dict[int, str], out_dyn: dict[int, str], onnx: Any, ort: Any, refs: dict[int, torch.Tensor],
) -> str:
    """One ONNX export attempt (``script`` or ``trace``, see :func:`write_onnx`); "" or the reason."""
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            buf = io.BytesIO()
            target = torch.jit.script(module) if method == "script" else module
            with contextlib.nullcontext() if method == "script" else _unchunked(module):
                torch.onnx.export(
                    target,
                    (examples[-1] if method == "script" else examples[0],),  # script: any size, the smallest
                    buf,  # type: ignore[arg-type]  # the legacy exporter (dynamo=False) writes to file objects; torch annotates `f` as a path only
                    opset_version=ONNX_OPSET,
                    input_names=["input"],
                    output_names=["output"],
                    dynamic_axes={"input": dyn, "output": out_dyn},
                    dynamo=False,
                    do_constant_folding=True,
                )
        model = onnx.load_from_string(buf.getvalue())
        if model.ir_version > 8:
            model.ir_version = 8  # opset 17 needs IR >= 8; deepImageJ's ORT 1.13 reads <= 8
        onnx.checker.check_model(model)
        data = model.SerializeToString()
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()  # the command's --threads, not ORT's own default
        sess = ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
        with torch.no_grad():
            for e in _distinct(examples):
                ref = refs[id(e)].numpy()
                out = sess.run(None, {"input": e.numpy()})[0]
                if out.shape != ref.shape:
                    return f"ONNX output shape {out.shape} != {ref.shape} at input {tuple(e.shape)}"
                d = float(np.abs(out - ref).max())
                if d > atol:
                    return f"ONNX differs from PyTorch by {d:.3g} (> {atol:g}) at input {tuple(e.shape)}"
        path.write_bytes(data)
        return ""
    except Exception as err:  # noqa: BLE001 - the architecture does not export: skip with reason
        msg = str(err).strip().splitlines()
        return f"ONNX export failed: {type(err).__name__}: {msg[0] if msg else ''}"[:500]
