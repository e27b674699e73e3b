"""Evaluate restoration models and the classical baselines on whole images of a paired dataset.

One evaluation = one task, one metric protocol (``care`` or ``unifmir``, see
:mod:`unifmir.metrics`), one set of (input, target) image pairs. Every *method* — each named model
and each classical baseline of the task (:mod:`unifmir.training.baselines`) — restores every input
image, and PSNR, SSIM and NRMSE against the target are computed with
:func:`unifmir.metrics.evaluate_pair`. The result holds one row per (image, method) and summarises
each method as mean ± standard deviation over images.

Models run through :func:`unifmir.predict.api.predict` (whole-image tiled inference in the user's
axes, with the same normalisation as training), so the numbers are those a user would get.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch

from unifmir._atomic import atomic_path, check_writable
from unifmir.tasks import TaskSpec, get_task, other_task
from unifmir.training.baselines import run_baselines

__all__ = [
    "METRICS",
    "protocol_info",
    "ImagePair",
    "MetricRow",
    "MethodSummary",
    "EvaluationResult",
    "load_pairs",
    "evaluate_models",
    "evaluate_checkpoint",
    "write_report",
]

METRICS: tuple[str, ...] = ("psnr", "ssim", "nrmse")
"""Metric names, in table order."""


def protocol_info(protocol: str) -> tuple[float, str]:
    """``(data_range, description)`` of a metric protocol of :data:`unifmir.metrics.PROTOCOLS`."""
    from unifmir.metrics import PROTOCOLS

    try:
        p = PROTOCOLS[protocol]
    except KeyError:
        raise ValueError(
            f"unknown metric protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}"
        ) from None
    return float(p.data_range), str(p.description)


@dataclass(frozen=True)
class ImagePair:
    """One whole-image evaluation pair in the task's user axes."""

    name: str
    input: np.ndarray
    target: np.ndarray


@dataclass(frozen=True)
class MetricRow:
    """Metrics of one method on one image."""

    image: str
    method: str
    psnr: float
    ssim: float
    nrmse: float

    def value(self, metric: str) -> float:
        """The value of ``metric`` (one of :data:`METRICS`)."""
        return float(getattr(self, metric))


@dataclass(frozen=True)
class MethodSummary:
    """Mean and (population, ``ddof=0``) standard deviation of every metric of one method."""

    method: str
    n: int
    mean: Mapping[str, float]
    std: Mapping[str, float]

    def cell(self, metric: str, digits: int = 3) -> str:
        """``"mean ± std"`` of ``metric`` for a table."""
        return f"{self.mean[metric]:.{digits}f} ± {self.std[metric]:.{digits}f}"


@dataclass
class EvaluationResult:
    """Per-image metrics of several methods on the same images, under one protocol."""

    task: str
    protocol: str
    rows: list[MetricRow] = field(default_factory=list)
    model_methods: list[str] = field(default_factory=list)
    """Methods that are models (the rest are classical baselines), in evaluation order."""
    source: str = ""
    """Where the images came from (for the report)."""

    @property
    def data_range(self) -> float:
        """``data_range`` used by PSNR/SSIM under :attr:`protocol`."""
        return protocol_info(self.protocol)[0]

    @property
    def methods(self) -> list[str]:
        """Method names in first-seen order (models first, as evaluated)."""
        seen: dict[str, None] = {}
        for r in self.rows:
            seen.setdefault(r.method, None)
        return list(seen)

    @property
    def images(self) -> list[str]:
        """Image names in first-seen order."""
        seen: dict[str, None] = {}
        for r in self.rows:
            seen.setdefault(r.image, None)
        return list(seen)

    def summary(self) -> list[MethodSummary]:
        """One :class:`MethodSummary` per method."""
        out = []
        for method in self.methods:
            rows = [r for r in self.rows if r.method == method]
            vals = {m: np.array([r.value(m) for r in rows], dtype=np.float64) for m in METRICS}
            out.append(
                MethodSummary(
                    method=method,
                    n=len(rows),
                    mean={m: float(v.mean()) for m, v in vals.items()},
                    std={m: float(v.std()) for m, v in vals.items()},
                )
            )
        return out

    def summary_by_method(self) -> dict[str, MethodSummary]:
        """:meth:`summary` keyed by method name."""
        return {s.method: s for s in self.summary()}

    def extend(self, other: "EvaluationResult") -> None:
        """Append ``other``'s rows (same task and protocol), e.g. the next cross-validation fold."""
        if (other.task, other.protocol) != (self.task, self.protocol):
            raise ValueError("cannot merge evaluations of different tasks or protocols")
        self.rows.extend(other.rows)
        for m in other.model_methods:
            if m not in self.model_methods:
                self.model_methods.append(m)

    def header_lines(self) -> list[str]:
        """Markdown lines stating task, protocol, data range and image count."""
        spec = get_task(self.task)
        lines = [
            f"- task: `{self.task}` ({spec.title})",
            f"- protocol: `{self.protocol}` — {protocol_info(self.protocol)[1]}",
            f"- data_range: {self.data_range:g}",
            f"- images: {len(self.images)}" + (f" from `{self.source}`" if self.source else ""),
            f"- classical baseline(s): {spec.classical_baseline}",
        ]
        return lines

    def to_markdown(self, title: str = "Evaluation") -> str:
        """A markdown report: header, then one row per method with mean ± std of each metric."""
        lines = [f"# {title}", "", *self.header_lines(), ""]
        lines += markdown_table(self.summary(), set(self.model_methods))
        lines += ["", "PSNR in dB (higher is better), SSIM (higher is better), NRMSE (lower is "
                  "better); mean ± standard deviation over images.", ""]
        return "\n".join(lines)

    def write_csv(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the per-image rows (``image, method, kind, psnr, ssim, nrmse``) atomically."""
        path = Path(path)
        with atomic_path(path, overwrite=overwrite) as tmp:
            with open(tmp, "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["image", "method", "kind", "protocol", "data_range", *METRICS])
                for r in self.rows:
                    kind = "model" if r.method in self.model_methods else "baseline"
                    w.writerow([r.image, r.method, kind, self.protocol, f"{self.data_range:g}",
                                *(repr(r.value(m)) for m in METRICS)])
        return path


def markdown_table(summaries: Sequence[MethodSummary], model_methods: set[str] | None = None,
                   first_column: str = "method") -> list[str]:
    """Markdown table lines, one row per summary: ``method | kind | n | PSNR | SSIM | NRMSE``."""
    lines = [f"| {first_column} | kind | n | PSNR (dB) | SSIM | NRMSE |", "|---|---|---|---|---|---|"]
    for s in summaries:
        kind = "model" if model_methods is not None and s.method in model_methods else "baseline"
        lines.append(
            f"| {s.method} | {kind} | {s.n} | {s.cell('psnr', 2)} | {s.cell('ssim', 4)} | "
            f"{s.cell('nrmse', 4)} |"
        )
    return lines


# --------------------------------------------------------------------------------------------
# data, metrics and prediction
# --------------------------------------------------------------------------------------------


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def load_pairs(root: str | os.PathLike, task: str | TaskSpec, split: str = "test") -> list[ImagePair]:
    """Whole-image pairs of ``root``'s ``split`` (layout of :mod:`unifmir.data.pairs`)."""
    from unifmir.data.datasets import whole_image_pairs

    spec = get_task(task)
    pairs = [ImagePair(str(name), low, high)
             for name, low, high in whole_image_pairs(root, spec.name, split, with_names=True)]
    if not pairs:
        raise FileNotFoundError(
            f"no {split!r} image pairs found under {root}; expected {root}/{split}/input/*.tif "
            f"and {root}/{split}/target/*.tif (see `unifmir synth`)"
        )
    return pairs


def _metrics(pred: np.ndarray, target: np.ndarray, protocol: str) -> dict[str, float]:
    from unifmir.metrics import evaluate_pair

    res = evaluate_pair(pred, target, protocol)
    return {m: float(res[m]) for m in METRICS}


def _predict(model: torch.nn.Module, image: np.ndarray, spec: TaskSpec,
             device: str | torch.device | None) -> np.ndarray:
    from unifmir.predict.api import predict

    kwargs: dict[str, Any] = {"task": spec.name}
    if device is not None:
        kwargs["device"] = device
    return _to_numpy(predict(model, image, **kwargs)).astype(np.float32, copy=False)


# --------------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------------


def evaluate_models(
    models: Mapping[str, torch.nn.Module],
    pairs: Iterable[ImagePair],
    task: str | TaskSpec,
    protocol: str = "care",
    *,
    baselines: bool = True,
    device: str | torch.device | None = None,
    progress: bool = False,
    source: str = "",
) -> EvaluationResult:
    """Evaluate every model in ``models`` (name -> module) and the task's baselines on ``pairs``.

    Models are put in eval mode and run through :func:`unifmir.predict.api.predict`. A prediction
    or baseline whose shape differs from the target raises ``ValueError``.
    """
    spec = get_task(task)
    protocol_info(protocol)  # validates the name
    result = EvaluationResult(task=spec.name, protocol=protocol, model_methods=list(models),
                              source=source)
    pairs = list(pairs)
    iterator: Iterable[ImagePair] = pairs
    if progress:
        from tqdm import tqdm

        iterator = tqdm(pairs, desc=f"evaluate {spec.name}", unit="image")
    for m in models.values():
        m.eval()
    for pair in iterator:
        outputs: dict[str, np.ndarray] = {}
        with torch.no_grad():
            for name, model in models.items():
                outputs[name] = _predict(model, pair.input, spec, device)
        if baselines:
            outputs.update(run_baselines(pair.input, spec, tuple(pair.target.shape)))
        for method, pred in outputs.items():
            if pred.shape != pair.target.shape:
                raise ValueError(
                    f"{method} produced shape {pred.shape} for {pair.name}, but its target has "
                    f"shape {pair.target.shape}"
                )
            vals = _metrics(pred, pair.target, protocol)
            result.rows.append(MetricRow(pair.name, method, vals["psnr"], vals["ssim"],
                                         vals["nrmse"]))
    return result


def evaluate_checkpoint(
    checkpoint: str | os.PathLike,
    data: str | os.PathLike,
    *,
    protocol: str = "care",
    split: str = "test",
    task: str | None = None,
    device: str | torch.device | None = None,
    baselines: bool = True,
    progress: bool = False,
) -> EvaluationResult:
    """Load ``checkpoint`` (ours or official, via ``load_any``) and evaluate it on ``data``.

    The task is the checkpoint's own; ``task`` is required for a multi-task checkpoint and must
    agree with a single-task one.
    """
    from unifmir.model.checkpoints import load_any
    from unifmir.model.network import network_task

    model = load_any(checkpoint, task=task)
    model_task = network_task(model) or task
    if model_task is None:
        raise ValueError(f"{checkpoint} is a multi-task checkpoint; name the task to evaluate")
    if other_task(model_task, task):
        raise ValueError(f"{checkpoint} is a {model_task!r} model, not {task!r}")
    from unifmir.predict.api import check_network  # channels/scale vs the task, NaN weights

    check_network(model, model_task, source=checkpoint)
    if device is not None:
        model = model.to(device)
    pairs = load_pairs(data, model_task, split)
    return evaluate_models({Path(checkpoint).name: model}, pairs, model_task, protocol,
                           baselines=baselines, device=device, progress=progress,
                           source=f"{data} ({split})")


def write_report(result: EvaluationResult, out_dir: str | os.PathLike, *, overwrite: bool = False,
                 stem: str = "evaluation", title: str = "Evaluation") -> tuple[Path, Path]:
    """Write ``out_dir/<stem>.csv`` (per image) and ``out_dir/<stem>.md`` (summary) atomically.

    Refuses to replace existing files unless ``overwrite``. Returns the two paths.
    """
    out = Path(out_dir)
    csv_path, md_path = out / f"{stem}.csv", out / f"{stem}.md"
    for p in (csv_path, md_path):
        check_writable(p, overwrite)
    result.write_csv(csv_path, overwrite=overwrite)
    with atomic_path(md_path, overwrite=overwrite) as tmp:
        tmp.write_text(result.to_markdown(title))
    return csv_path, md_path

