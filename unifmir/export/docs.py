"""Cover image, README and metadata (citations, authors, tags, config) of an exported bundle."""

from __future__ import annotations

import os
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
    "MAX_NAME_LENGTH",
    "parse_person",
    "load_metadata",
    "write_cover",
    "render_readme",
    "readme_commands",
    "ConsumerSupport",
    "to_display",
]

UNIFMIR_DOI = "10.1038/s41592-024-02244-3"
UNIFMIR_DATA_DOI = "10.5281/zenodo.8401470"
MAX_NAME_LENGTH = 64
"""bioimage.io warns above 64 characters."""


@dataclass
class ExportMetadata:
    """User-facing metadata of a bundle. Everything has a sensible default."""

    name: str = ""
    description: str = ""
    authors: list[dict[str, str]] = field(default_factory=list)
    cite: list[dict[str, str]] = field(default_factory=list)
    license: str | None = "MIT"
    """SPDX id of the weights' licence; None: unknown (then ``license_note`` must say where to look)."""
    license_note: str = ""
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
    timestamp: str = ""
    """ISO 8601 creation time of the weights; default: the time of the export."""
    nickname: str = ""
    """Local model id (``config.bioimageio.nickname``, what deepImageJ lists); default: from the file name."""
    operating_range: str = ""
    """Markdown: the acquisitions the model was trained for (pixel size, PSF, photons, ...)."""

    def __post_init__(self) -> None:
        if self.name and len(self.name) > MAX_NAME_LENGTH:
            raise ValueError(
                f"model name {self.name!r} has {len(self.name)} characters; bioimage.io allows at most "
                f"{MAX_NAME_LENGTH} (shorten --name or the metadata 'name')"
            )
        if not self.license and not self.license_note:
            raise ValueError("a model without a licence id needs a 'license_note' saying where its terms are")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> "ExportMetadata":
        """Build from a dict (e.g. YAML); authors may be strings or dicts; unknown keys raise."""
        data = dict(data or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown metadata field(s) {unknown}; known: {sorted(known)}")
        if "authors" in data:
            data["authors"] = [_person(p) for p in _as_list(data["authors"])]
        if "maintainers" in data:
            data["maintainers"] = [_maintainer(p) for p in _as_list(data["maintainers"])]
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


PERSON_FIELDS = ("name", "affiliation", "email", "orcid", "github_user")
"""Fields of a bioimage.io author/maintainer entry."""


def parse_person(text: str) -> dict[str, str]:
    """``"Jane Doe; affiliation=EMBL; orcid=0000-0002-1825-0097; github_user=jdoe"`` -> a person mapping.

    The first ``;``-separated part is the name unless it is ``key=value``; ``github_user`` makes
    bioimage.io validation contact GitHub, so give it only when you want it checked.
    """
    person: dict[str, str] = {}
    for i, part in enumerate(p.strip() for p in text.split(";")):
        if not part:
            continue
        key, eq, value = part.partition("=")
        if not eq:
            if i:
                raise ValueError(f"{text!r}: {part!r} is not key=value (keys: {', '.join(PERSON_FIELDS)})")
            key, value = "name", part
        key, value = key.strip(), value.strip()
        if key not in PERSON_FIELDS:
            raise ValueError(f"{text!r}: unknown field {key!r} (known: {', '.join(PERSON_FIELDS)})")
        person[key] = value
    return person


def _person(p: Any) -> dict[str, str]:
    if isinstance(p, str):
        person = parse_person(p)
        if not person.get("name"):
            raise ValueError("author names must not be empty")
        return person
    if isinstance(p, Mapping) and (p.get("name") or p.get("github_user")):
        unknown = sorted(set(map(str, p)) - set(PERSON_FIELDS))
        if unknown:
            raise ValueError(f"unknown author/maintainer field(s) {unknown} (known: {', '.join(PERSON_FIELDS)})")
        return {str(k): str(v) for k, v in p.items() if v}
    raise ValueError(f"an author must be a name or a mapping with 'name', got {p!r}")


def _maintainer(p: Any) -> dict[str, str]:
    person = parse_person(p) if isinstance(p, str) else _person(p)
    if not person.get("github_user"):
        raise ValueError(f"maintainer {p!r}: bioimage.io requires 'github_user' for maintainers")
    return person


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


def load_metadata(src: Mapping[str, Any] | str | os.PathLike[str] | None) -> ExportMetadata:
    """Metadata from a dict or a YAML file (``yaml.safe_load``)."""
    if src is None:
        return ExportMetadata()
    if isinstance(src, (str, os.PathLike)):
        import yaml

        p = Path(src)
        if not p.is_file():
            raise FileNotFoundError(f"metadata file {p} does not exist")
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as err:
            raise ValueError(f"metadata file {p} is not plain YAML ({err}); remove tags such as '!!python/...' "
                             "and fix the syntax") from None
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


README_COMMAND_FENCE = "```bash"
"""Fence of the README's command blocks: each line in them is run by the bundle tests, in the
unpacked bundle folder (``tests/zoo/test_committed_bundles.py``; parsing: ``tests/export/test_docs.py``)."""


def readme_commands(readme: str) -> list[str]:
    """The shell command lines of a bundle README (the ``bash`` fenced blocks), in order."""
    cmds: list[str] = []
    inside = False
    for line in readme.splitlines():
        if line.strip() == README_COMMAND_FENCE:
            inside = True
        elif inside and line.strip() == "```":
            inside = False
        elif inside and line.strip() and not line.lstrip().startswith("#"):
            cmds.append(line.strip())
    return cmds


@dataclass(frozen=True)
class ConsumerSupport:
    """Which consumer runs this bundle, and why not where it does not."""

    name: str
    supported: bool
    detail: str


def _finetune_lines(spec: TaskSpec) -> list[str]:
    return [
        f"unifmir synth --task {spec.name} --n 6 --out my-data --seed 0",
        f"unifmir finetune --task {spec.name} --data my-data --from rdf.yaml --out my-finetune --steps 4 "
        f"--batch-size 2 --val-every 2",
    ]


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
    consumers: Sequence[ConsumerSupport],
    onnx_note: str = "",
    config_text: str = "",
    libtorch_checked: bool = False,
) -> str:
    """Markdown documentation (README.md) of the bundle.

    Every line in a ``bash`` block is a command that runs as written in the unpacked bundle folder.
    """
    out_shape = spec.output_text.format(
        same_size="a stack" if layout.in_axes[0] == "z" else "an image",
        z_up=layout.up.get("z", 1),
        z_out=layout.fixed_out.get("z", ""),
    )
    px = ", ".join(f"{k}: {v} µm" for k, v in meta.pixel_size.items()) or "not recorded for this model"
    if meta.metrics:
        keys = list(meta.metrics[0])
        metrics = "| " + " | ".join(keys) + " |\n|" + "---|" * len(keys) + "\n"
        metrics += "".join("| " + " | ".join(_cell(m.get(k, "")) for k in keys) + " |\n" for m in meta.metrics)
        metrics += f"\nProtocol: {meta.metrics_protocol or 'not stated'}\n"
    else:
        metrics = (
            "No evaluation was recorded for these weights. Evaluate with `unifmir evaluate` and pass the table in "
            "the export metadata (`metrics`, `metrics_protocol`). Protocols: `care` (percentile-normalised "
            "ground truth, affinely fitted prediction, data_range 1) or `unifmir` (per-image min-max to "
            "[0, 255], data_range 255).\n"
        )
    ims = "stack (Z slices as the ImageJ z dimension)" if "z" in layout.in_axes and not layout.singleton_in else "2D image"
    supported = [c for c in consumers if c.supported]
    consumer_lines = "\n".join(
        f"* **{c.name}**: {'yes' if c.supported else 'no'} — {c.detail}" for c in consumers
    )
    licence = (f"`{meta.license}`" if meta.license else "not known") + (f". {meta.license_note}" if meta.license_note else "")
    fiji = ""
    if any(c.name == "deepImageJ (Fiji)" for c in supported):
        fiji = f"""### Fiji / deepImageJ
Install deepImageJ (update site "DeepImageJ"), then *Plugins > deepImageJ > deepImageJ Run*, pick this model
(`Install model` from the zip), open your {ims} and press Run. deepImageJ uses the TorchScript weights
(listed first{"; checked to load and reproduce the test output in libtorch 2.0.0, deepImageJ's newest PyTorch engine" if libtorch_checked else ""}).
The output is in normalised units (see *Input requirements*).

"""
    ilastik = ""
    if any(c.name == "ilastik" for c in supported):
        ilastik = """### ilastik
Use the *Neural Network Workflow* (ilastik 1.4.1 or newer) and load the zip (one input, one output of the
input's size).

"""
    finetune = "\n".join(_finetune_lines(spec))
    return f"""# {name}

{meta.description or spec.description}

UniFMIR ({spec.title}) exported with `unifmir export`. UniFMIR is a foundation model for
fluorescence-microscopy image restoration (Ma et al., *Nature Methods* 2024,
doi:{UNIFMIR_DOI}): a shared SwinIR body with task-specific heads and tails.

## What it does
{spec.description}

Input: one single-channel {ims}, axes `{layout.user_in_axes}`; output: {out_shape}, axes `{layout.user_out_axes}`.

## Operating range
{meta.operating_range or "Not stated for these weights: check the results against ground truth or a classical baseline before use (see *Validation*)."}

## Input requirements
* Tensor axes (bioimage.io): input `b, c, {', '.join(layout.in_axes)}`, output `b, c, {', '.join(layout.out_axes)}`.
* Valid input sizes: {_size_text(layout)}.
* Pixel sizes of the training data: {px}. Images with a very different sampling should be resampled first.
* Normalisation (inside the bundle): {preprocessing_text}. The output stays in normalised units
  (`unifmir predict --output-units normalized` gives the same numbers; `--output-units input` maps them
  back to the input's intensity range).
* Tiling: {halo_text}

## Consumers
{consumer_lines}

## Training data and recipe
* Training data: {(meta.training_data or "not recorded for these weights").strip().rstrip(".")}.
* Recipe: {(meta.training_recipe or f"UniFMIR fine-tuning recipe: L1 loss, Adam, patch {spec.patch_size}, batch {spec.batch_size}, normalisation '{spec.normalization}'").strip().rstrip(".")}.
* Licence of the weights: {licence}

## Metrics
{metrics}
## Limitations
{meta.limitations or "Check the results on new data against ground truth or a classical baseline (" + spec.classical_baseline + "). Restoration networks can hallucinate plausible structure; never use the output for quantification without validation."}
{onnx_note}
## How to run it
Every command below runs as written in the unpacked bundle folder (unzip the bundle first;
`rdf.yaml` can be replaced by the zip's path). Replace `sample_input.tif` by your image.

{fiji}{ilastik}### bioimageio.core (command line)
Install `pip install "bioimageio.core==0.11.*" torch`, then:
{README_COMMAND_FENCE}
bioimageio predict rdf.yaml --inputs sample_input.tif --outputs "out/{{sample_id}}_{{output_id}}.tif"
```

### unifmir
Predict (same normalised output as the bundle), then fine-tune these weights on your own data
(here a small synthetic dataset in the layout your data use; see unifmir's README, "Your data"):
{README_COMMAND_FENCE}
unifmir predict --model rdf.yaml --input sample_input.tif --output unifmir-out --output-units normalized
{finetune}
```
The fine-tuned run (`my-finetune/best.pt`) exports to a new bundle with `unifmir export`.

# Validation
Check the model on your own data before trusting it:
1. **Ground truth**: image a few fields twice (the degraded acquisition you will restore, and a
   high-quality one: more photons, finer sampling or the isotropic/projected reference), restore the
   first and compare with the second (`unifmir evaluate --model rdf.yaml --data YOUR_DATA --protocol care`
   reports PSNR/SSIM against the task's classical baseline, {spec.classical_baseline}).
2. **Residuals**: look at `output - classical baseline`; structure that appears only in the output
   (not in the raw data) is a hallucination warning.
3. **Classical baseline**: if the network does not beat {spec.classical_baseline} on your data, use
   the baseline or fine-tune the model on your data first.

The bundle passed these checks before it was written (`unifmir export`):

{chr(10).join('* ' + line for line in gate_lines)}

Weight formats: {', '.join(weight_formats)}. Declared reproducibility tolerance: relative {tolerance['relative_tolerance']:g},
absolute {tolerance['absolute_tolerance']:g}.
{config_text}
{meta.documentation_extra}
"""


def _cell(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
