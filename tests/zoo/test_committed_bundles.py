"""The committed model suite (``zoo_models/``): complete, current, and every bundle passes
``bioimageio test`` from the shell, the libtorch 2.0.0 (deepImageJ) check, and every command its
README gives.

This is the CI gate of the suite: a bundle edited by hand, an architecture file that no longer
matches the code, or a bundle that stopped validating with the pinned bioimageio.core fails here.
The consumers' own stacks (ilastik's pinned bioimageio.core, the newest spec, JDLL's field casts)
run in ``tests/consumers/``.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml
from ..bundle_checks import assert_libtorch_reproduces_test_output, assert_shell_test_passes, shell_predict

from unifmir.export import weights
from unifmir.export.docs import readme_commands
from unifmir.zoo.build import pack_bundle
from unifmir.zoo.recipe import load_recipes

ROOT = Path(__file__).resolve().parents[2]
ZOO = ROOT / "zoo_models"
RECIPES = load_recipes()
SIZE_LIMIT_MB = 20.0
COMMITTED = sorted(p.parent.name for p in ZOO.glob("*/rdf.yaml"))


def _rdf(rid: str) -> dict:
    return yaml.safe_load((ZOO / rid / "rdf.yaml").read_text(encoding="utf-8"))


def test_suite_is_complete_and_tabled(tmp_path: Path) -> None:
    """One folder per recipe (or a table line saying which gate removed it), each within the size
    limit once zipped, a README table row for each, and no committed zips (one form only)."""
    table = (ZOO / "README.md").read_text(encoding="utf-8")
    for rid in RECIPES:
        if rid not in COMMITTED:
            assert f"- **{rid}**: gate(s)" in table, f"{rid}: neither committed nor reported as failing a gate"
            continue
        z = pack_bundle(ZOO / rid, tmp_path / f"{rid}.zip")
        assert z.stat().st_size / 1e6 <= SIZE_LIMIT_MB, f"{rid} zips to {z.stat().st_size / 1e6:.1f} MB"
        assert f"[{rid}]({rid}/)" in table, f"{rid} has no row in zoo_models/README.md"
    assert set(COMMITTED) <= set(RECIPES), f"bundles without a recipe: {set(COMMITTED) - set(RECIPES)}"
    assert "Not built yet" not in table
    assert not list(ZOO.glob("*.zip")), "commit the bundle folders only (`unifmir zoo pack` makes the zips)"


@pytest.mark.parametrize("rid", COMMITTED)
def test_every_file_the_rdf_names_is_there_with_its_hash(rid: str) -> None:
    rdf, folder = _rdf(rid), ZOO / rid

    def check(entry: object) -> None:
        if isinstance(entry, str):
            assert (folder / entry).is_file(), f"{rid}: {entry} missing"
        elif isinstance(entry, dict) and "source" in entry:
            f = folder / entry["source"]
            assert f.is_file(), f"{rid}: {entry['source']} missing"
            if entry.get("sha256"):
                assert hashlib.sha256(f.read_bytes()).hexdigest() == entry["sha256"], f"{rid}: {f.name} changed"

    check(rdf["documentation"])
    for c in rdf["covers"]:
        check(c)
    for t in rdf["inputs"] + rdf["outputs"]:
        check(t["test_tensor"])
        check(t.get("sample_tensor"))
    for w in rdf["weights"].values():
        check(w)
        check(w.get("architecture"))


@pytest.mark.parametrize("rid", COMMITTED)
def test_architecture_file_is_what_todays_code_renders(rid: str) -> None:
    arch = _rdf(rid)["weights"]["pytorch_state_dict"]["architecture"]
    committed = (ZOO / rid / arch["source"]).read_text(encoding="utf-8")
    assert committed == weights.render_architecture(arch["kwargs"]), (
        f"{rid}: {arch['source']} differs from what unifmir renders today; rebuild with "
        f"`unifmir zoo build {rid} --weights-from zoo_models`"
    )


@pytest.mark.slow
@pytest.mark.parametrize("rid", COMMITTED)
def test_bioimageio_test_predict_and_libtorch(rid: str, tmp_path: Path) -> None:
    """`bioimageio test` and `bioimageio predict` (shell) work, and libtorch 2.0.0 reproduces the
    test output."""
    bundle = ZOO / rid / "rdf.yaml"
    assert_shell_test_passes(bundle, tmp_path)
    # `bioimageio predict` on the bundle's sample tensor gives the sample output's shape
    got = shell_predict(bundle, ZOO / rid / "sample_input.tif", tmp_path)
    assert got.shape == np.squeeze(tifffile.imread(ZOO / rid / "sample_output.tif")).shape
    assert_libtorch_reproduces_test_output(ZOO / rid)


@pytest.mark.slow
@pytest.mark.parametrize("rid", COMMITTED)
def test_every_readme_command_runs(rid: str, tmp_path: Path) -> None:
    """Each command line of the bundle README's ``bash`` blocks, as written, in a copy of the
    unpacked bundle folder (what a user does after unzipping)."""
    folder = tmp_path / rid
    shutil.copytree(ZOO / rid, folder)
    commands = readme_commands((folder / "README.md").read_text(encoding="utf-8"))
    assert any(c.startswith("bioimageio predict") for c in commands)
    assert any(c.startswith("unifmir predict") for c in commands)
    assert any(c.startswith("unifmir finetune") for c in commands)
    bindir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
    for cmd in commands:
        res = subprocess.run(shlex.split(cmd), cwd=folder, capture_output=True, text=True, env=env, timeout=900)
        assert res.returncode == 0, f"{rid}: `{cmd}` failed:\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"


@pytest.mark.slow
@pytest.mark.parametrize("rid", COMMITTED)
def test_unifmir_predict_gives_what_bioimageio_core_gives(rid: str) -> None:
    """`unifmir predict` on a bundle = bioimageio.core running it (the Zoo's path), borders
    included: both mirror-pad the image by the declared halo before normalising."""
    from bioimageio.core import create_prediction_pipeline, load_model_description, predict as bio_predict

    import unifmir
    from unifmir.tasks import get_task

    descr = load_model_description(str(ZOO / rid / "rdf.yaml"))
    spec = get_task(_rdf(rid)["config"]["unifmir"]["task"])
    image = np.squeeze(tifffile.imread(ZOO / rid / "sample_input.tif")).astype(np.float32)
    axes = [str(a.id) for a in descr.inputs[0].axes]
    arr = image.reshape([1] * (len(axes) - image.ndim) + list(image.shape))
    got = bio_predict(model=create_prediction_pipeline(descr), inputs={descr.inputs[0].id: arr}, sample_id=rid)
    theirs = np.squeeze(np.asarray(got.members[descr.outputs[0].id].data.values))
    ours = unifmir.predict(ZOO / rid, image, task=spec.name, output_units="normalized")
    assert ours.shape == theirs.shape
    err = float(np.abs(ours - theirs).max())
    assert err <= 1e-4 * max(1.0, float(np.abs(theirs).max())), f"{rid}: max |unifmir - bioimageio.core| = {err}"
