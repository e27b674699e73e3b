"""Full-size networks have the reference state_dict: key names, order, shapes, dtypes, counts.

Manifests: ``unifmir_state_dict_manifest.tsv`` (multi-task UniModel, 724 keys) and
``released_finetuned_models_state_dict_manifest.tsv`` (five released single-task classes);
parameter counts from ``unifmir_param_counts.txt``.
"""

from __future__ import annotations

import csv
import functools
import re

import pytest
import torch

from .model_testlib import REFERENCE
from unifmir.model import build_model
from unifmir.tasks import TASKS

# released variant -> task whose default network it is (x1_in1 also serves 1-slice denoising)
VARIANT_TASK = {spec.released_variant: name for name, spec in TASKS.items()}


def _rows(path: str) -> list[dict[str, str]]:
    with open(REFERENCE / path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def _manifest(rows: list[dict[str, str]]) -> list[tuple[str, tuple[int, ...], str, str]]:
    out = []
    for r in rows:
        shape = tuple(int(s) for s in re.findall(r"\d+", r["shape"]))
        out.append((r["key"], shape, r["dtype"], r["kind"]))
    return out


def _state(model: torch.nn.Module) -> list[tuple[str, tuple[int, ...], str, str]]:
    params = {n for n, _ in model.named_parameters()}
    return [
        (k, tuple(v.shape), str(v.dtype).removeprefix("torch."), "param" if k in params else "buffer")
        for k, v in model.state_dict().items()
    ]


@functools.lru_cache(maxsize=None)
def _param_counts() -> dict[str, int]:
    text = (REFERENCE / "unifmir_param_counts.txt").read_text()
    counts = {"UniModel": int(re.search(r"total parameters \(named_parameters\): ([\d,]+)", text)[1].replace(",", ""))}
    for m in re.finditer(r"^\s+(swinir\S*)\s+keys\s+(\d+)\s+params\s+([\d,]+)", text, re.M):
        counts[m[1]] = int(m[3].replace(",", ""))
        counts[m[1] + ":keys"] = int(m[2])
    return counts


def test_released_manifest_covers_every_task() -> None:
    variants = {r["model_variant"] for r in _rows("released_finetuned_models_state_dict_manifest.tsv")}
    assert variants == {"swinir_x2_in1", "swinir_x1_in1", "swinir_x1_in5", "swinirProj_stage2", "swinir2dto3d"}
    # each released variant is exactly one task's default network
    assert set(VARIANT_TASK) == variants


@pytest.mark.parametrize(
    "variant", ["swinir_x2_in1", "swinir_x1_in1", "swinir_x1_in5", "swinirProj_stage2", "swinir2dto3d"]
)
def test_single_task_state_dict_equals_released_manifest(variant: str) -> None:
    rows = [r for r in _rows("released_finetuned_models_state_dict_manifest.tsv") if r["model_variant"] == variant]
    model = build_model(VARIANT_TASK[variant], "full")
    assert _state(model) == _manifest(rows)
    counts = _param_counts()
    assert len(rows) == counts[variant + ":keys"]
    assert sum(p.numel() for p in model.parameters()) == counts[variant]


def test_sr_at_scale_one_is_the_x1_class() -> None:
    """``upscale=1`` turns the SR network into ``swinir_x1_in1`` (DeepBacs-style SR at scale 1)."""
    rows = [r for r in _rows("released_finetuned_models_state_dict_manifest.tsv") if r["model_variant"] == "swinir_x1_in1"]
    model = build_model("sr", {"upscale": 1})
    assert _state(model) == _manifest(rows)


def test_unifmir_state_dict_equals_manifest() -> None:
    rows = _rows("unifmir_state_dict_manifest.tsv")
    model = build_model(None, "full")
    assert len(rows) == 724
    assert _state(model) == _manifest(rows)
    assert sum(p.numel() for p in model.parameters()) == _param_counts()["UniModel"]
    # per top-level module, as listed in the counts file
    text = (REFERENCE / "unifmir_param_counts.txt").read_text()
    listed = {m[1]: int(m[2].replace(",", "")) for m in re.finditer(r"^\s{4}(\w+)(?: \([^)]*\))?\s+([\d,]+)$", text, re.M)}
    assert len(listed) == 16
    for name, n in listed.items():
        assert sum(p.numel() for p in getattr(model, name).parameters()) == n, name
