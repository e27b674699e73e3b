"""Every committed bundle passes the consumers' own Python stacks (``consumer_stacks.py``):

* ``validate-format`` in ilastik's stack (tiktorch 26.5.0's pins: bioimageio.core 0.10.2, spec
  0.5.9.1) and in the newest bioimageio.spec (0.5.14.x);
* ``bioimageio test`` in ilastik's stack for every bundle that claims ilastik (tag ``ilastik``), with
  the weight format ilastik itself runs.

The stacks are built once into the cache (PyPI, about a minute); a stack that cannot be built fails
the tests with pip's message.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from .consumer_stacks import (
    STACKS,
    StackUnavailableError,
    bioimage_test,
    ensure_stack,
    installed_versions,
    validate_format,
)
from .consumers_testlib import bundle_id, committed_bundles, edited_copy, one_form_each, read_rdf

from unifmir.export.consumers import claimed_consumers

BUNDLES = committed_bundles()
NO_CLAIM = "no-committed-bundle-claims-ilastik"
# one form per bundle for the (slow) test run: the folder where there is one (folder == zip is
# tests/zoo's job)
ILASTIK_BUNDLES = [b for b in one_form_each(BUNDLES) if "ilastik" in claimed_consumers(read_rdf(b))]
# tiktorch 26.5.0 (tiktorch/server/session/process.py) calls bioimageio.core's
# create_prediction_pipeline without a weight format, so core 0.10.2 takes the first format of
# DEFAULT_WEIGHT_FORMAT_PRIORITY_ORDER (bioimageio/core/backends/_model_adapter.py) the bundle has.
# (tiktorch's environment has no onnxruntime: its ONNX weights cannot run there.)
CORE_0_10_2_WEIGHT_PRIORITY = ("pytorch_state_dict", "tensorflow_saved_model_bundle", "torchscript", "onnx",
                               "keras_v3", "keras_hdf5")


def _stack(name: str) -> Path:
    """The consumer environment; the test fails (never skips) with pip's message if it cannot be built."""
    try:
        return ensure_stack(name)
    except StackUnavailableError as err:
        pytest.fail(str(err), pytrace=False)


def test_stacks_hold_the_pinned_versions() -> None:
    ilastik_env, newest_env = _stack("ilastik"), _stack("spec-newest")
    got = installed_versions(ilastik_env)
    assert got["bioimageio.core"] == "0.10.2" and got["bioimageio.spec"] == "0.5.9.1", got
    major, minor, *_ = (int(x) for x in got["pydantic"].split("."))
    assert (major, minor) < (2, 12), got["pydantic"]
    assert installed_versions(newest_env)["bioimageio.spec"].startswith("0.5.14."), installed_versions(newest_env)
    assert "bioimageio.core" not in installed_versions(newest_env)


@pytest.mark.parametrize("stack", sorted(STACKS))
@pytest.mark.parametrize("bundle", BUNDLES, ids=bundle_id)
def test_committed_bundle_validates(bundle: Path, stack: str) -> None:
    ok, output = validate_format(_stack(stack), bundle)
    assert ok, output


def test_spec_0_5_9_1_rejects_mapping_documentation(tmp_path: Path) -> None:
    """What ilastik's spec does with the old exporter's `documentation: {source, sha256}`."""
    ilastik_env = _stack("ilastik")
    base = next(b for b in BUNDLES if b.suffix != ".zip")
    good = edited_copy(base, tmp_path / "good")
    ok, output = validate_format(ilastik_env, good)
    assert ok, output
    bad = edited_copy(base, tmp_path / "bad",
                      lambda rdf: rdf.update(documentation={"source": "README.md", "sha256": "0" * 64}))
    ok, output = validate_format(ilastik_env, bad)
    assert not ok and "documentation" in output, output


def _ilastik_weight_format(bundle: Path) -> str:
    weights = read_rdf(bundle).get("weights") or {}
    return next((w for w in CORE_0_10_2_WEIGHT_PRIORITY if weights.get(w)), "none")


@pytest.mark.slow
@pytest.mark.parametrize("bundle", ILASTIK_BUNDLES or [NO_CLAIM], ids=lambda b: b if b == NO_CLAIM else bundle_id(b))
def test_bundle_claiming_ilastik_passes_bioimageio_test_in_ilastiks_stack(bundle: Path | str) -> None:
    assert bundle != NO_CLAIM, "no committed bundle is tagged 'ilastik'"
    assert isinstance(bundle, Path)
    ok, output = bioimage_test(_stack("ilastik"), bundle, _ilastik_weight_format(bundle))
    assert ok, output
