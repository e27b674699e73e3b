"""`unifmir.export.bundle`: the consumer-readable rdf (plain paths, format version), true tags and
consumer claims, citations, and what `export_model` refuses (overwriting, a failing gate, a network
that ignores its input); export never imports training code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from unifmir.export import bundle, docs, gates
from unifmir.export import describe as D
from unifmir.export.bundle import export_model
from unifmir.export.gates import GateError, GateResult
from unifmir.tasks import TASK_NAMES

from .export_testlib import small_network


def test_consumer_rdf_writes_plain_paths_and_a_readable_format_version() -> None:
    rdf = {
        "format_version": "0.5.12",
        "documentation": {"source": "README.md", "sha256": "ab" * 32},
        "covers": [{"source": "cover.png", "sha256": "cd" * 32}],
        "weights": {"onnx": {"source": "w.onnx"}, "pytorch_state_dict": {"source": "w.pt"},
                    "torchscript": {"source": "t.pt"}},
        "name": "kept",
    }
    out = bundle.consumer_rdf(rdf)
    assert out["documentation"] == "README.md" and out["covers"] == ["cover.png"]
    assert out["format_version"] == bundle.CONSUMER_FORMAT_VERSION == "0.5.10"
    assert list(out["weights"]) == ["torchscript", "pytorch_state_dict", "onnx"]
    assert out["name"] == "kept" and rdf["format_version"] == "0.5.12"  # input untouched


@pytest.mark.parametrize("task", TASK_NAMES)
def test_ilastik_is_claimed_only_where_the_output_keeps_the_input_shape(task: str) -> None:
    layout = D.layout_for(task, window=8, halo=16)
    support = {c.name: c.supported for c in bundle.consumer_support(layout, "passed")}
    same = layout.in_axes == layout.out_axes and not layout.fixed_out and not layout.singleton_in \
        and all(v == 1 for v in layout.up.values())
    assert support["ilastik"] == same
    assert support["ilastik"] == (task == "denoise")  # of the five tasks, only denoise keeps the shape
    assert support["deepImageJ (Fiji)"]
    assert not {c.name: c.supported for c in bundle.consumer_support(layout, "disabled")}["deepImageJ (Fiji)"]


def test_tags_are_true_consumer_claims_come_from_the_checks_only() -> None:
    layout = D.layout_for("sr", window=8, halo=16)
    meta = docs.ExportMetadata(tags=["ilastik", "deepimagej", "bacteria", "unifmir"])
    tags = bundle._tags(layout.task, layout, meta, bundle.consumer_support(layout, "passed"))
    assert "ilastik" not in tags and "deepimagej" in tags and "bacteria" in tags
    assert len(tags) == len(set(tags))


def test_citations_are_not_duplicated_and_no_data_doi_is_added() -> None:
    meta = docs.ExportMetadata(cite=[{"text": "Ma et al. (again)", "doi": docs.UNIFMIR_DOI},
                                     {"text": "SwinIR", "url": "https://arxiv.org/abs/2108.10257"}])
    cites = bundle._citations(meta)
    assert [c.get("doi") or c.get("url") for c in cites] == [docs.UNIFMIR_DOI, "https://arxiv.org/abs/2108.10257"]
    assert all(c.get("doi") != docs.UNIFMIR_DATA_DOI for c in cites)


def test_export_never_overwrites_without_force(tmp_path: Path) -> None:
    out = tmp_path / "m.zip"
    out.write_bytes(b"keep")
    with pytest.raises(FileExistsError):
        export_model(small_network("sr"), "sr", out)
    assert out.read_bytes() == b"keep"


def test_failing_gate_leaves_no_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gates, "gate_ilastik", lambda descr: GateResult("ilastik", False, "forced failure"))
    out = tmp_path / "m.zip"
    with pytest.raises(GateError, match="forced failure"):
        export_model(small_network("sr"), "sr", out, onnx=False, check_libtorch=False)
    assert not out.exists() and not list(tmp_path.iterdir())


def _constant_sr_network() -> torch.nn.Module:
    """A small SR network whose first convolution is zeroed: its output no longer depends on the input."""
    from unifmir.model.factory import build_model

    torch.manual_seed(0)
    net = build_model("sr", "small").eval()
    with torch.no_grad():
        net.conv_first.weight.zero_()
    return net


def test_a_constant_network_is_never_exported(tmp_path: Path) -> None:
    out = tmp_path / "const.zip"
    with pytest.raises(GateError, match="input-sensitivity") as err:
        bundle.export_model(_constant_sr_network(), "sr", out, onnx=False, check_libtorch=False)
    assert "ignores its input" in str(err.value)
    assert not out.exists()


def test_export_code_never_imports_training() -> None:
    code = "import sys, unifmir.export.bundle, unifmir.cli.export; " \
           "bad=[m for m in sys.modules if m.startswith('unifmir.training')]; assert not bad, bad"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
