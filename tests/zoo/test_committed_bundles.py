"""The committed model suite (``zoo_models/``): complete, and every bundle passes ``bioimageio test``
from the shell and the libtorch 2.0.0 (deepImageJ) check.

This is the CI gate of the suite: a bundle edited by hand, a stale zip or a bundle that stopped
validating with the pinned bioimageio.core fails here.
"""

from __future__ import annotations

import filecmp
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
from bundle_checks import assert_libtorch_reproduces_test_output, assert_shell_test_passes, shell_predict

from unifmir.zoo.recipe import load_recipes

ROOT = Path(__file__).resolve().parents[2]
ZOO = ROOT / "zoo_models"
RECIPES = load_recipes()
SIZE_LIMIT_MB = 20.0


def test_suite_is_complete_and_tabled() -> None:
    """One folder + zip per recipe, each within the size limit, and a README table row for each."""
    table = (ZOO / "README.md").read_text(encoding="utf-8")
    for rid in RECIPES:
        assert (ZOO / rid / "rdf.yaml").is_file(), f"{rid}: folder missing (run `unifmir zoo build {rid}`)"
        z = ZOO / f"{rid}.zip"
        assert z.is_file(), f"{rid}.zip missing"
        assert z.stat().st_size / 1e6 <= SIZE_LIMIT_MB, f"{rid}.zip is {z.stat().st_size / 1e6:.1f} MB"
        assert f"[{rid}]({rid}/)" in table, f"{rid} has no row in zoo_models/README.md"
    assert "Not built yet" not in table
    assert sorted(p.stem for p in ZOO.glob("*.zip")) == sorted(RECIPES)


@pytest.mark.parametrize("rid", sorted(RECIPES))
def test_folder_and_zip_hold_the_same_bundle(rid: str, tmp_path: Path) -> None:
    with zipfile.ZipFile(ZOO / f"{rid}.zip") as z:
        z.extractall(tmp_path)
        names = sorted(z.namelist())
    assert names == sorted(p.name for p in (ZOO / rid).iterdir())
    match, mismatch, errors = filecmp.cmpfiles(tmp_path, ZOO / rid, names, shallow=False)
    assert not mismatch and not errors, f"{rid}: folder and zip differ in {mismatch + errors}"


@pytest.mark.slow
@pytest.mark.parametrize("rid", sorted(RECIPES))
def test_bioimageio_test_predict_and_libtorch(rid: str, tmp_path: Path) -> None:
    """`bioimageio test` and `bioimageio predict` (shell) work, and libtorch 2.0.0 reproduces the
    test output."""
    bundle = ZOO / f"{rid}.zip"
    assert_shell_test_passes(bundle, tmp_path)
    # `bioimageio predict` on the bundle's sample tensor gives the sample output's shape
    got = shell_predict(bundle, ZOO / rid / "sample_input.tif", tmp_path)
    assert got.shape == np.squeeze(tifffile.imread(ZOO / rid / "sample_output.tif")).shape
    assert_libtorch_reproduces_test_output(ZOO / rid)
