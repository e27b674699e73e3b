"""Bundle metadata and the consumer-facing rdf: plain paths for deepImageJ/ilastik, true tags and
claims, no duplicate citations, authors with affiliation/ORCID, names within 64 characters, and
the input-sensitivity gate that catches a network which ignores its input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from unifmir.export import bundle, docs, gates
from unifmir.export import describe as D
from unifmir.export.gates import GateError
from unifmir.tasks import TASK_NAMES


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


def test_author_strings_carry_affiliation_orcid_and_github_user() -> None:
    meta = docs.ExportMetadata.from_mapping({
        "authors": ["Jane Doe; affiliation=EMBL Heidelberg; orcid=0000-0002-1825-0097", "John Roe"],
        "maintainers": ["github_user=jroe; name=John Roe"],
    })
    assert meta.authors == [{"name": "Jane Doe", "affiliation": "EMBL Heidelberg", "orcid": "0000-0002-1825-0097"},
                            {"name": "John Roe"}]
    assert meta.maintainers == [{"github_user": "jroe", "name": "John Roe"}]
    with pytest.raises(ValueError, match="unknown field 'orchid'"):
        docs.ExportMetadata.from_mapping({"authors": ["Jane; orchid=1"]})
    with pytest.raises(ValueError, match="github_user"):
        docs.ExportMetadata.from_mapping({"maintainers": ["Jane Doe"]})


def test_names_longer_than_64_characters_are_refused() -> None:
    with pytest.raises(ValueError, match="at most 64"):
        docs.ExportMetadata(name="x" * 65)
    with pytest.raises(ValueError, match="license_note"):
        docs.ExportMetadata(license=None)


def test_metadata_yaml_with_a_python_tag_is_refused_with_the_file_named(tmp_path: Path) -> None:
    f = tmp_path / "meta.yaml"
    f.write_text("name: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ValueError, match=r"meta\.yaml is not plain YAML"):
        docs.load_metadata(f)


def test_official_weights_state_an_unknown_licence() -> None:
    from unifmir.zoo.importer import official_metadata
    from unifmir.zoo.official import OfficialModel

    model = OfficialModel(run="SwinIRCCPs", filename="model_best.pt", task="sr", variant="swinir_x2_in1",
                          dataset="BioSR", structure="CCPs", cite=("unifmir",))
    md = docs.ExportMetadata.from_mapping(official_metadata(model))
    assert md.license is None and "no licence" in md.license_note


def test_readme_commands_are_found_in_bash_blocks_only() -> None:
    text = "intro `unifmir x`\n```bash\nbioimageio predict rdf.yaml\n# comment\n\nunifmir predict a\n```\n```python\nx\n```\n"
    assert docs.readme_commands(text) == ["bioimageio predict rdf.yaml", "unifmir predict a"]


# --------------------------------------------------------------------------------------------
# input sensitivity


def test_input_sensitivity_gate_fails_for_an_output_that_ignores_the_input() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((1, 1, 32, 32)).astype(np.float32)
    mean_volume = rng.random((1, 1, 32, 32))  # structured output, the same for every input

    def collapsed(a: np.ndarray) -> np.ndarray:
        return mean_volume + 1e-5 * a

    res = gates.gate_input_sensitivity(collapsed, x, collapsed(x))
    assert not res.ok and "ignores its input" in res.detail
    res = gates.gate_input_sensitivity(lambda a: a * 2.0, x, x * 2.0)
    assert res.ok, res.detail


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
