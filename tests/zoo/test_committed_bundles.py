"""The committed model suite (``zoo_models/``): complete, and every bundle passes ``bioimageio test``
from the shell and the libtorch 2.0.0 (deepImageJ) check.

This is the CI gate of the suite: a bundle edited by hand, a stale zip or a bundle that stopped
validating with the pinned bioimageio.core fails here.
"""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from unifmir.zoo.recipe import load_recipes

ROOT = Path(__file__).resolve().parents[2]
ZOO = ROOT / "zoo_models"
RECIPES = load_recipes()
BIOIMAGEIO = shutil.which("bioimageio") or str(Path(sys.executable).with_name("bioimageio"))
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
    res = subprocess.run(
        [BIOIMAGEIO, "test", str(bundle), "--devices", "cpu", "--summary", str(tmp_path / "s.md")],
        cwd=tmp_path, capture_output=True, text=True, timeout=1200,
    )
    summary = (tmp_path / "s.md").read_text() if (tmp_path / "s.md").exists() else ""
    assert res.returncode == 0 and "| status          | passed" in summary, res.stdout[-3000:] + res.stderr[-3000:]

    # `bioimageio predict` on the bundle's sample tensor gives the sample output's shape
    import tifffile

    res = subprocess.run(
        [BIOIMAGEIO, "predict", str(bundle), "--inputs", str(ZOO / rid / "sample_input.tif"),
         "--outputs", str(tmp_path / "out" / "{sample_id}_{output_id}.tif")],
        cwd=tmp_path, capture_output=True, text=True, timeout=1200,
    )
    outs = list((tmp_path / "out").glob("*.tif"))
    assert res.returncode == 0 and len(outs) == 1, res.stdout[-3000:] + res.stderr[-3000:]
    got, ref = tifffile.imread(outs[0]), tifffile.imread(ZOO / rid / "sample_output.tif")
    assert np.squeeze(got).shape == np.squeeze(ref).shape

    from bioimageio.core import create_prediction_pipeline, load_model_description
    from bioimageio.core.digest_spec import get_test_inputs, get_test_outputs

    from unifmir.export.libtorch_check import check_torchscript, ensure_libtorch

    ensure_libtorch()
    descr = load_model_description(ZOO / rid / "rdf.yaml")
    post = {p.id for p in descr.outputs[0].postprocessing}
    assert post <= {"ensure_dtype"}, f"the check below assumes no postprocessing beyond ensure_dtype, got {post}"
    # the TorchScript file sees the input after the bundle's own preprocessing
    pp = create_prediction_pipeline(descr, devices=["cpu"], weight_format="torchscript")
    sample = get_test_inputs(descr)
    pp.apply_preprocessing(sample)
    x = np.asarray(sample.members[descr.inputs[0].id].data, dtype=np.float32)
    y = np.asarray(get_test_outputs(descr).members[descr.outputs[0].id].data, dtype=np.float32)
    out = check_torchscript(ZOO / rid / "weights_torchscript.pt", [x], [y], atol=1.5e-4, rtol=1e-4)
    assert out.ok, f"{rid}: {out.message}"
