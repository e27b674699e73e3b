"""ilastik's block rule: a bundle that claims ilastik (tag ``ilastik``) has one input and one output,
and the output has the input's shape on every axis but batch and channel
(``unifmir.export.consumers.ilastik_shape_problems``; ilastik's source is cited there)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from .consumers_testlib import bundle_id, committed_bundles, read_rdf

from unifmir.export.consumers import claimed_consumers, ilastik_shape_problems

BUNDLES = committed_bundles()
NO_CLAIM = "no-committed-bundle-claims-ilastik"
ILASTIK_BUNDLES = [b for b in BUNDLES if "ilastik" in claimed_consumers(read_rdf(b))]


@pytest.mark.parametrize("bundle", ILASTIK_BUNDLES or [NO_CLAIM], ids=lambda b: b if b == NO_CLAIM else bundle_id(b))
def test_bundle_claiming_ilastik_obeys_its_shape_rule(bundle: Path | str) -> None:
    assert bundle != NO_CLAIM, (
        "no committed bundle is tagged 'ilastik'; the same-shape bundles (denoising) can run there and "
        "should claim it"
    )
    assert isinstance(bundle, Path)
    assert ilastik_shape_problems(read_rdf(bundle)) == [], bundle_id(bundle)


def _space(axis: str, size: Any, scale: float = 1.0, halo: int | None = None) -> dict[str, Any]:
    ax: dict[str, Any] = {"type": "space", "id": axis, "size": size, "scale": scale}
    if halo is not None:
        ax["halo"] = halo
    return ax


def _rdf(out_axes: list[dict[str, Any]], in_scale: float = 1.0, n_out: int = 1) -> dict[str, Any]:
    in_axes = [{"type": "batch"}, {"type": "channel", "channel_names": ["raw"]},
               _space("y", {"min": 64, "step": 8}, in_scale), _space("x", {"min": 64, "step": 8}, in_scale)]
    out = {"id": "output", "axes": [{"type": "batch"}, {"type": "channel", "channel_names": ["r"]}, *out_axes]}
    return {"inputs": [{"id": "input", "axes": in_axes}], "outputs": [copy.deepcopy(out) for _ in range(n_out)]}


def _ref(axis: str, offset: int = 0) -> dict[str, Any]:
    return {"tensor_id": "input", "axis_id": axis, "offset": offset}


def test_same_shape_output_passes() -> None:
    assert ilastik_shape_problems(_rdf([_space("y", _ref("y"), halo=8), _space("x", _ref("x"), halo=8)])) == []


OTHER_SHAPES = {
    "sr-scale": (_rdf([_space("y", _ref("y"), 0.5), _space("x", _ref("x"), 0.5)]), "'y'"),
    # the JDLL-compatible SR description (input scale 4, output scale 2) is still 2x
    "sr-jdll-form": (_rdf([_space("y", _ref("y"), 2.0), _space("x", _ref("x"), 2.0)], in_scale=4.0), "'y'"),
    "offset": (_rdf([_space("y", _ref("y", offset=-2)), _space("x", _ref("x"))]), "'y'"),
    "other-axis": (_rdf([_space("y", _ref("x")), _space("x", _ref("x"))]), "'y'"),
    "fixed-size": (_rdf([_space("y", 64), _space("x", _ref("x"))]), "'y'"),
    "axis-dropped": (_rdf([_space("y", _ref("y"))]), "'x'"),
    "axis-added": (_rdf([_space("z", 5), _space("y", _ref("y")), _space("x", _ref("x"))]), "'z'"),
}


@pytest.mark.parametrize("case", sorted(OTHER_SHAPES))
def test_output_of_another_shape_fails_naming_ilastik_and_axis(case: str) -> None:
    rdf, axis = OTHER_SHAPES[case]
    problems = ilastik_shape_problems(rdf)
    assert problems, case
    assert any(p.startswith("ilastik: ") and axis in p for p in problems), problems


def test_two_outputs_fail() -> None:
    problems = ilastik_shape_problems(_rdf([_space("y", _ref("y")), _space("x", _ref("x"))], n_out=2))
    assert problems == ["ilastik: 2 output tensors; ilastik runs models with exactly one"]


def test_committed_sr_bundle_tagged_ilastik_fails_naming_ilastik_and_axis() -> None:
    """A super-resolution bundle (output y/x scale differs from the input's) that claims ilastik
    fails the rule, naming ilastik and the axis."""

    def is_sr(rdf: dict[str, Any]) -> bool:
        ins = {a.get("id"): a.get("scale", 1.0) for a in rdf["inputs"][0]["axes"]}
        outs = {a.get("id"): a.get("scale", 1.0) for a in rdf["outputs"][0]["axes"]}
        return "y" in ins and "y" in outs and ins["y"] != outs["y"]

    sr = [read_rdf(b) for b in BUNDLES if is_sr(read_rdf(b))]
    assert sr, "no committed super-resolution bundle (output y scale != input y scale)"
    rdf = copy.deepcopy(sr[0])
    rdf["tags"] = [*rdf.get("tags", []), "ilastik"]
    assert "ilastik" in claimed_consumers(rdf)
    problems = ilastik_shape_problems(rdf)
    assert any(p.startswith("ilastik: output axis 'y'") for p in problems), problems


def test_claims_are_read_from_tags() -> None:
    assert claimed_consumers({"tags": ["denoising", "ilastik", "deepimagej"]}) == {"ilastik", "deepimagej"}
    assert claimed_consumers({"tags": "ilastik"}) == frozenset()
    assert claimed_consumers({}) == frozenset()
