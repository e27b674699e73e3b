"""`unifmir.export.metadata`: the consumer-readable rdf (plain paths, format version), true tags and
consumer claims, citations."""

from __future__ import annotations

import pytest

from unifmir.export import describe as D
from unifmir.export import docs, metadata
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
    out = metadata.consumer_rdf(rdf)
    assert out["documentation"] == "README.md" and out["covers"] == ["cover.png"]
    assert out["format_version"] == metadata.CONSUMER_FORMAT_VERSION == "0.5.10"
    assert list(out["weights"]) == ["torchscript", "pytorch_state_dict", "onnx"]
    assert out["name"] == "kept" and rdf["format_version"] == "0.5.12"  # input untouched


@pytest.mark.parametrize("task", TASK_NAMES)
def test_ilastik_is_claimed_only_where_the_output_keeps_the_input_shape(task: str) -> None:
    layout = D.layout_for(task, window=8, halo=16)
    support = {c.name: c.supported for c in metadata.consumer_support(layout, "passed")}
    same = layout.in_axes == layout.out_axes and not layout.fixed_out and not layout.singleton_in \
        and all(v == 1 for v in layout.up.values())
    assert support["ilastik"] == same
    assert support["ilastik"] == (task == "denoise")  # of the five tasks, only denoise keeps the shape
    assert support["deepImageJ (Fiji)"]
    assert not {c.name: c.supported for c in metadata.consumer_support(layout, "disabled")}["deepImageJ (Fiji)"]


def test_tags_are_true_consumer_claims_come_from_the_checks_only() -> None:
    layout = D.layout_for("sr", window=8, halo=16)
    meta = docs.ExportMetadata(tags=["ilastik", "deepimagej", "bacteria", "unifmir"])
    tags = metadata.tags(layout.task, layout, meta, metadata.consumer_support(layout, "passed"))
    assert "ilastik" not in tags and "deepimagej" in tags and "bacteria" in tags
    assert len(tags) == len(set(tags))


def test_citations_are_not_duplicated_and_no_data_doi_is_added() -> None:
    meta = docs.ExportMetadata(cite=[{"text": "Ma et al. (again)", "doi": docs.UNIFMIR_DOI},
                                     {"text": "SwinIR", "url": "https://arxiv.org/abs/2108.10257"}])
    cites = metadata.citations(meta)
    assert [c.get("doi") or c.get("url") for c in cites] == [docs.UNIFMIR_DOI, "https://arxiv.org/abs/2108.10257"]
    assert all(c.get("doi") != docs.UNIFMIR_DATA_DOI for c in cites)


def test_description_states_the_operating_range_within_the_limit() -> None:
    rng = "lateral PSF sigma 1.6-3.4 px;\n 5-500 photo-electrons"
    text = metadata._description("2x super-resolution  of widefield images.", rng)
    assert text == "2x super-resolution of widefield images. Operating range: lateral PSF sigma 1.6-3.4 px; 5-500 photo-electrons"
    assert metadata._description("plain", "") == "plain"
    assert metadata._description("plain", "x" * 1100) == "plain"  # over bioimage.io's 1024: README only
