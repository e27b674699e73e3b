"""Suite bundles as a Zoo user runs them: ``bioimageio.core`` on the raw degraded image.

A bundle is a folder with an ``rdf.yaml`` (nothing else is assumed about its file names). Its
task is read from the rdf (``config.unifmir.task``, else the ``pytorch_state_dict`` architecture
keywords, else the task's bioimage.io tag). Prediction is ``bioimageio.core.predict`` with the
pipeline of ``bioimageio.core.create_prediction_pipeline`` (default weight format and settings,
the bundle's own preprocessing normalises the raw input); the only thing done to the image is
adding the bundle's batch, channel and singleton axes, and removing them from the output.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import yaml

from unifmir.tasks import TASKS, get_task

__all__ = ["Bundle", "discover_bundles", "bundle_task"]


def bundle_task(rdf: Mapping[str, Any]) -> str:
    """The unifmir task of a bundle's rdf (see the module docstring for where it is read)."""
    cfg = rdf.get("config")
    section = cfg.get("unifmir") if isinstance(cfg, Mapping) else None
    if isinstance(section, Mapping) and section.get("task") in TASKS:
        return get_task(section["task"]).name
    sd = (rdf.get("weights") or {}).get("pytorch_state_dict") or {}
    kw = (sd.get("architecture") or {}).get("kwargs") if isinstance(sd, Mapping) else None
    if isinstance(kw, Mapping):
        for cand in (kw.get("task"), (kw.get("network_kwargs") or {}).get("task"),
                     (kw.get("task_module_kwargs") or {}).get("task")):
            if cand in TASKS:
                return get_task(cand).name
    tags = set(rdf.get("tags") or [])
    hits = [name for name, spec in TASKS.items() if spec.bioimage_tag and spec.bioimage_tag in tags]
    if len(hits) == 1:
        return hits[0]
    raise ValueError(f"cannot tell the unifmir task of bundle {rdf.get('name')!r} from its rdf")


@dataclass
class Bundle:
    """One bundle folder, loaded lazily."""

    folder: Path
    rdf: dict
    task: str
    load_s: float = 0.0
    predict_s: float = 0.0
    predictions: int = 0
    weight_format: str = ""
    _pipeline: Any = field(default=None, repr=False)

    @property
    def id(self) -> str:
        return self.folder.name

    @property
    def name(self) -> str:
        return str(self.rdf.get("name") or self.id)

    def pipeline(self):
        if self._pipeline is None:
            from bioimageio.core import create_prediction_pipeline, load_model_description

            t0 = time.perf_counter()
            descr = load_model_description(str(self.folder / "rdf.yaml"))
            if not hasattr(descr, "inputs"):
                raise RuntimeError(f"bioimageio.core could not load {self.folder / 'rdf.yaml'}: {descr}")
            self._pipeline = create_prediction_pipeline(descr)
            self._descr = descr
            adapter = getattr(self._pipeline, "_adapter", None)
            self.weight_format = type(adapter).__name__ if adapter is not None else ""
            self.load_s += time.perf_counter() - t0
        return self._pipeline

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Run the bundle on one image in the task's input axes; output in its output axes."""
        from bioimageio.core import predict

        pp = self.pipeline()
        spec = get_task(self.task)
        descr = self._descr
        in_axes = [str(a.id) for a in descr.inputs[0].axes]
        user = [c.lower() for c in spec.input_axes]
        arr = np.asarray(image, dtype=np.float32)
        src = list(user)
        for ax in in_axes:
            if ax not in src:
                arr = arr[None]
                src.insert(0, ax)
        arr = np.transpose(arr, [src.index(ax) for ax in in_axes])
        t0 = time.perf_counter()
        sample = predict(model=pp, inputs={descr.inputs[0].id: arr}, sample_id=self.id)
        self.predict_s += time.perf_counter() - t0
        self.predictions += 1
        out = sample.members[descr.outputs[0].id].data
        dims = [str(d) for d in out.dims]
        want = [c.lower() for c in spec.output_axes]
        data = np.asarray(out.values, dtype=np.float32)
        for i in reversed(range(len(dims))):
            if dims[i] not in want:
                if data.shape[i] != 1:
                    raise RuntimeError(f"{self.id}: output axis {dims[i]} has size {data.shape[i]}, expected 1")
                data = np.take(data, 0, axis=i)
                dims.pop(i)
        return np.transpose(data, [dims.index(a) for a in want])


def discover_bundles(paths: list[Path] | None, root: Path) -> tuple[list[Bundle], list[str]]:
    """Bundles in ``paths`` (folders) or every ``root/*/rdf.yaml``; returns ``(bundles, problems)``."""
    folders = paths if paths else sorted(p.parent for p in root.glob("*/rdf.yaml"))
    out, problems = [], []
    for f in folders:
        f = Path(f)
        rdf_path = f / "rdf.yaml"
        if not rdf_path.is_file():
            problems.append(f"{f}: no rdf.yaml (a bundle folder holds its rdf.yaml)")
            continue
        try:
            rdf = yaml.safe_load(rdf_path.read_text())
            out.append(Bundle(f, rdf, bundle_task(rdf)))
        except Exception as err:  # a bundle being rebuilt: report and go on
            problems.append(f"{f.name}: {type(err).__name__}: {err}")
    return out, problems
