"""Cover image, README and metadata (citations, authors, tags, config) of an exported bundle."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from unifmir.export.describe import TensorLayout
from unifmir.tasks import TaskSpec

__all__ = [
    "UNIFMIR_DOI",
    "UNIFMIR_DATA_DOI",
    "ExportMetadata",
    "load_metadata",
    "write_cover",
    "render_readme",
    "to_display",
]

UNIFMIR_DOI = "10.1038/s41592-024-02244-3"
UNIFMIR_DATA_DOI = "10.5281/zenodo.8401470"

_DEFAULT_TRAINING_DATA = {
    "sr": "BioSR-like 2D widefield/SIM pairs (CCPs, ER, F-actin, microtubules)",
    "denoise": "CARE Planaria/Tribolium low/high-SNR 3D stacks",
    "isotropic": "CARE liver-like anisotropic/isotropic 3D stacks",
    "projection": "CARE Flywing 50-slice stacks and their surface projections",
    "volumetric": "VCD-LFM light-field images and 61-slice volumes",
}


@dataclass
class ExportMetadata:
    """User-facing metadata of a bundle. Everything has a sensible default."""

    name: str = ""
    description: str = ""
    authors: list[dict[str, str]] = field(default_factory=list)
    cite: list[dict[str, str]] = field(default_factory=list)
    license: str = "MIT"
    tags: list[str] = field(default_factory=list)
    version: str = "0.1.0"
    documentation_extra: str = ""
    training_data: str = ""
    training_recipe: str = ""
    metrics: list[dict[str, Any]] = field(default_factory=list)
    metrics_protocol: str = ""
    pixel_size: dict[str, float] = field(default_factory=dict)
    git_repo: str = ""
    maintainers: list[dict[str, str]] = field(default_factory=list)
    limitations: str = ""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> "ExportMetadata":
        """Build from a dict (e.g. YAML); authors may be strings or dicts; unknown keys raise."""
        data = dict(data or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown metadata field(s) {unknown}; known: {sorted(known)}")
        for key in ("authors", "maintainers"):
            if key in data:
                data[key] = [_person(p) for p in _as_list(data[key])]
        if "cite" in data:
            data["cite"] = [_citation(c) for c in _as_list(data["cite"])]
        if "tags" in data:
            data["tags"] = [str(t) for t in _as_list(data["tags"])]
        return cls(**data)

    def merged(self, other: Mapping[str, Any]) -> "ExportMetadata":
        """A copy with the non-empty fields of ``other`` (same field names) taking precedence."""
        cur = {k: getattr(self, k) for k in self.__dataclass_fields__}
        upd = ExportMetadata.from_mapping({k: v for k, v in other.items() if v not in (None, "", [], {})})
        for k in self.__dataclass_fields__:
            v = getattr(upd, k)
            if v not in (None, "", [], {}) and v != getattr(ExportMetadata(), k):
                cur[k] = v
        return ExportMetadata(**cur)


def _as_list(v: Any) -> list[Any]:
    if v is None:
        return []
    if isinstance(v, (str, dict)):
        return [v]
    return list(v)


def _person(p: Any) -> dict[str, str]:
    if isinstance(p, str):
        name = p.strip()
        if not name:
            raise ValueError("author names must not be empty")
        return {"name": name}
    if isinstance(p, Mapping) and p.get("name"):
        return {str(k): str(v) for k, v in p.items() if v}
    raise ValueError(f"an author must be a name or a mapping with 'name', got {p!r}")


def _citation(c: Any) -> dict[str, str]:
    if isinstance(c, str):
        s = c.strip()
        if s.startswith("10."):
            return {"text": s, "doi": s}
        if s.startswith("http"):
            return {"text": s, "url": s}
        return {"text": s, "url": "https://bioimage.io"}
    if isinstance(c, Mapping) and c.get("text") and (c.get("doi") or c.get("url")):
        return {str(k): str(v) for k, v in c.items() if v}
    raise ValueError(f"a citation needs 'text' and a 'doi' or 'url', got {c!r}")


def load_metadata(src: Mapping[str, Any] | str | Path | None) -> ExportMetadata:
    """Metadata from a dict or a YAML file (``yaml.safe_load``)."""
    if src is None:
        return ExportMetadata()
    if isinstance(src, (str, Path)):
        import yaml

        p = Path(src)
        if not p.is_file():
            raise FileNotFoundError(f"metadata file {p} does not exist")
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        if not isinstance(data, Mapping):
            raise ValueError(f"metadata file {p} must hold a YAML mapping, not {type(data).__name__}")
        return ExportMetadata.from_mapping(data)
    return ExportMetadata.from_mapping(src)


# --------------------------------------------------------------------------------------------
# cover


def to_display(image: np.ndarray, axes: str) -> np.ndarray:
    """2D view of a user-axes image: the maximum projection along z (if any)."""
    arr = np.asarray(image, dtype=np.float32)
    if "Z" in axes and arr.ndim == 3:
        arr = arr.max(axis=axes.index("Z"))
    return arr


def _contrast(img: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(img, (1.0, 99.7))
    if hi <= lo:
        hi = lo + 1e-6
    return np.clip((img - lo) / (hi - lo), 0, 1)


def write_cover(path: Path, inp: np.ndarray, out: np.ndarray, layout: TensorLayout) -> Path:
    """PNG cover ``input | output`` (2:1), each panel with its own 1-99.7 % contrast stretch."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    a = _contrast(to_display(inp, layout.user_in_axes))
    b = _contrast(to_display(out, layout.user_out_axes))
    fig, axes = plt.subplots(1, 2, figsize=(8, 4), dpi=100)
    for ax, img, title in zip(axes, (a, b), ("input", "UniFMIR output")):
        ax.imshow(img, cmap="magma", interpolation="nearest")
        ax.set_title(title, color="white", fontsize=14)
        ax.axis("off")
    fig.patch.set_facecolor("black")
    fig.tight_layout()
    fig.savefig(path, format="png", facecolor="black")
    plt.close(fig)
    return path


# --------------------------------------------------------------------------------------------
# README


def _size_text(layout: TensorLayout) -> str:
    parts = []
    for a in layout.in_axes:
        if a in layout.singleton_in:
            parts.append(f"{a}: 1 (singleton axis, add it for bioimage.io tools; Fiji images have it)")
        elif layout.step[a] == 0:
            parts.append(f"{a}: exactly {layout.min_size[a]}")
        else:
            parts.append(f"{a}: {layout.min_size[a]} + n*{layout.step[a]}")
    return ", ".join(parts)


def render_readme(
    spec: TaskSpec,
    layout: TensorLayout,
    meta: ExportMetadata,
    *,
    name: str,
    weight_formats: Sequence[str],
    gate_lines: Sequence[str],
    tolerance: Mapping[str, float],
    preprocessing_text: str,
    halo_text: str,
    onnx_note: str = "",
    config_text: str = "",
    libtorch_checked: bool = False,
) -> str:
    """Markdown documentation (README.md) of the bundle."""
    out_shape = {
        "sr": "a 2x larger image (b, c, 2y, 2x)",
        "denoise": "a stack of the same size" if layout.in_axes[0] == "z" else "an image of the same size",
        "isotropic": f"an isotropic stack with {layout.up.get('z', 1)}x more z-slices",
        "projection": "a 2D image (b, c, y, x) of the surface",
        "volumetric": f"a {layout.fixed_out.get('z', '')}-slice volume (b, c, z, y, x) of the same y/x size",
    }[spec.name]
    px = ", ".join(f"{k}: {v} µm" for k, v in meta.pixel_size.items()) or "not recorded for this model (state the pixel size of your training data in the metadata)"
    metrics = ""
    if meta.metrics:
        keys = list(meta.metrics[0])
        metrics = "| " + " | ".join(keys) + " |\n|" + "---|" * len(keys) + "\n"
        metrics += "".join("| " + " | ".join(str(m.get(k, "")) for k in keys) + " |\n" for m in meta.metrics)
        metrics += f"\nProtocol: {meta.metrics_protocol or 'not stated'}\n"
    else:
        metrics = (
            "No evaluation was recorded for these weights. Evaluate with `unifmir evaluate` and pass the table in "
            "the export metadata (`metrics`, `metrics_protocol`). Protocols: `care` (percentile-normalised "
            "ground truth, affinely fitted prediction, data_range 1) or `unifmir` (per-image min-max to "
            "[0, 255], data_range 255).\n"
        )
    ims = "stack (Z slices as the ImageJ z dimension)" if "z" in layout.in_axes and not layout.singleton_in else "2D image"
    return f"""# {name}

{meta.description or spec.description}

UniFMIR ({spec.title}) exported with `unifmir export`. UniFMIR is a foundation model for
fluorescence-microscopy image restoration (Ma et al., *Nature Methods* 2024,
doi:{UNIFMIR_DOI}): a shared SwinIR body with task-specific heads and tails.

## What it does
{spec.description}

Input: one single-channel {ims}, axes `{layout.user_in_axes}`; output: {out_shape}, axes `{layout.user_out_axes}`.

## Input requirements
* Tensor axes (bioimage.io): input `b, c, {', '.join(layout.in_axes)}`, output `b, c, {', '.join(layout.out_axes)}`.
* Valid input sizes: {_size_text(layout)}.
* Pixel sizes of the training data: {px}. Images with a very different sampling should be resampled first.
* Normalisation (inside the bundle): {preprocessing_text}. The output stays in normalised units.
* Tiling: {halo_text}

## Training data and recipe
* Training data: {meta.training_data or _DEFAULT_TRAINING_DATA[spec.name]} (UniFMIR data: doi:{UNIFMIR_DATA_DOI}).
* Recipe: {meta.training_recipe or f"UniFMIR fine-tuning recipe: L1 loss, Adam, patch {spec.patch_size}, batch {spec.batch_size}, normalisation '{spec.normalization}'"}.

## Metrics
{metrics}
## Limitations
{meta.limitations or "Trained for one imaging modality and sample type; check the results on new data against ground truth or a classical baseline (" + spec.classical_baseline + "). Restoration networks can hallucinate plausible structure; never use the output for quantification without validation."}
{onnx_note}
## How to run it
### Fiji / deepImageJ
Install deepImageJ (update site "DeepImageJ"), then *Plugins > deepImageJ > deepImageJ Run*, pick this model
(`Install model` from the zip), open your {ims} and press Run. deepImageJ uses the TorchScript weights
(listed first{"; checked to load and reproduce the test output in libtorch 2.0.0, deepImageJ's newest PyTorch engine" if libtorch_checked else ""}).

### ilastik
Use the *Neural Network Workflow* and load the zip (one input, one output).

### bioimageio.core (command line or Python)
```
pip install "bioimageio.core==0.11.*" torch
bioimageio predict {name.replace(' ', '_')}.zip --inputs image.tif --outputs "out/{{sample_id}}_{{output_id}}.tif"
```
```python
from bioimageio.core import load_model_description, predict
model = load_model_description("{name.replace(' ', '_')}.zip")
```

### unifmir
`unifmir predict` with the original checkpoint gives the same result (de-normalised to input units).

# Validation
The bundle passed these checks before it was written (`unifmir export`):

{chr(10).join('* ' + line for line in gate_lines)}

Weight formats: {', '.join(weight_formats)}. Declared reproducibility tolerance: relative {tolerance['relative_tolerance']:g},
absolute {tolerance['absolute_tolerance']:g}.
{config_text}
{meta.documentation_extra}
"""
