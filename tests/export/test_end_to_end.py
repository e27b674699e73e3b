"""bioimage.io export of every task end to end: gates, shell `bioimageio test`/`predict`, libtorch
2.0.0, the round trip against `unifmir.predict`, and full-size official checkpoints (all slow).

Each task is exported once per session (small preset, seeded random weights); the end-to-end
checks share that bundle. Export timings are printed (``-s -n 0``) for the README benchmark.
"""

from __future__ import annotations

import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from unifmir.export import describe as D
from unifmir.export import tensors
from unifmir.export.bundle import ExportReport, export_model
from unifmir.tasks import TASK_NAMES

from ..bundle_checks import assert_libtorch_reproduces_test_output, assert_shell_test_passes, shell_predict
from .export_testlib import small_network


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """task -> (net, ExportReport); exports lazily, once per session."""
    cache: dict[str, tuple[torch.nn.Module, ExportReport]] = {}
    root = tmp_path_factory.mktemp("bundles")

    def get(task: str) -> tuple[torch.nn.Module, ExportReport]:
        if task not in cache:
            from unifmir.export.libtorch_check import is_available

            net = small_network(task)
            t0 = time.perf_counter()
            rep = export_model(net, task, root / f"{task}.zip", check_libtorch=True if is_available() else None)
            print(f"\nexport {task} (small): {time.perf_counter() - t0:.1f} s {rep.timings}")
            cache[task] = (net, rep)
        return cache[task]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("task", TASK_NAMES)
def test_export_end_to_end(task: str, exported: Any, tmp_path: Path) -> None:
    net, rep = exported(task)
    assert rep.path.is_file()
    assert all(g.ok for g in rep.gates), rep.summary()
    names = {g.name for g in rep.gates}
    assert {"ilastik", "deepimagej", "tiled_vs_whole", "libtorch-2.0.0", "jdll-fields", "input-sensitivity"} <= names
    assert {f"test_model[{f}]" for f in rep.weight_formats} <= names
    assert rep.weight_formats[0] == "torchscript"
    with zipfile.ZipFile(rep.path) as z:
        rdf = z.read("rdf.yaml").decode()
        assert "README.md" in z.namelist() and "cover.png" in z.namelist()
        readme = z.read("README.md").decode()
    import yaml

    data = yaml.safe_load(rdf)
    assert list(data["weights"])[0] == "torchscript"  # deepImageJ takes the first usable format
    # what deepImageJ (JDLL 0.6.1) and ilastik's spec 0.5.9.1 read: plain paths, format 0.5.10
    assert data["format_version"] == "0.5.10"
    assert data["documentation"] == "README.md" and data["covers"] == ["cover.png"]
    assert all(w.get("parent") == "pytorch_state_dict" for k, w in data["weights"].items() if k != "pytorch_state_dict")
    assert data["config"]["unifmir"]["task"] == task and data["timestamp"]
    assert ("ilastik" in data["tags"]) == (task == "denoise")  # ilastik needs the input's spatial shape
    assert data["config"]["deepimagej"]["allow_tiling"] is True
    assert "github_user" not in rdf
    assert "# Validation" in readme and "10.1038/s41592-024-02244-3" in rdf

    assert_shell_test_passes(rep.path, tmp_path, "torchscript")  # every format ran in the export's gates

    # `bioimageio predict` on a TIFF (user axes, fresh image) gives the right shape
    layout = rep.layout
    shape = tensors.default_test_shape(layout)
    img = tensors.synthetic_input(task, shape, seed=7)
    tensors.write_sample_tiff(tmp_path / "in.tif", layout, img)
    got = shell_predict(rep.path, tmp_path / "in.tif", tmp_path)
    in_sizes = dict(zip(layout.user_in_axes.lower(), shape))
    assert got.shape == tuple(layout.out_size(a, in_sizes) for a in layout.user_out_axes.lower())

    # the TorchScript file loads and reproduces the test output in libtorch 2.0.0 (deepImageJ)
    with zipfile.ZipFile(rep.path) as z:
        z.extractall(tmp_path / "bundle")
    assert_libtorch_reproduces_test_output(tmp_path / "bundle")


@pytest.mark.slow
@pytest.mark.parametrize("task", TASK_NAMES)
def test_round_trip_matches_unifmir_predict(task: str, exported: Any) -> None:
    """bioimageio.core on the bundle == unifmir.predict on the same network (fresh image).

    Two bioimageio.core paths: the prediction pipeline on the image as is (what ``test_model``
    runs) must match ``unifmir.predict(..., padding="none")``; ``bioimageio.core.predict`` pads the
    image by the halo first (its whole-image mode) and normalises the padded image, which is what
    ``unifmir.predict`` does by default: the two must match everywhere, borders included.
    Compared in normalised units (the bundle's output).
    """
    from bioimageio.core import Tensor, create_prediction_pipeline, load_model_description
    from bioimageio.core import predict as core_predict
    from bioimageio.core.digest_spec import create_sample_for_model

    from unifmir.predict.api import predict

    net, rep = exported(task)
    layout = rep.layout
    shape = tensors.default_test_shape(layout)
    img = tensors.synthetic_input(task, shape, seed=11)
    bio = D.user_to_bioimage(layout, img)
    descr = load_model_description(rep.path)
    plain = predict(net, img, task=task, output_units="normalized", padding="none")
    scale = float(np.abs(plain).max()) or 1.0

    pp = create_prediction_pipeline(descr, devices=["cpu"], weight_format="torchscript")
    dims = tuple(str(a.id) for a in descr.inputs[0].axes)
    sample = create_sample_for_model(descr, inputs={"input": Tensor(bio, dims=dims)}, sample_id="rt")
    out = pp.predict_sample_without_blocking(sample, skip_input_padding=True, skip_output_cropping=True)
    got = np.asarray(D.bioimage_to_user(layout, np.asarray(out.members["output"].data)))
    assert got.shape == plain.shape
    assert float(np.abs(got - plain).max()) <= 1e-3 * scale + 1e-4

    padded = predict(net, img, task=task, output_units="normalized")
    out = core_predict(model=descr, inputs={"input": bio})
    got = np.asarray(D.bioimage_to_user(layout, np.asarray(out.members["output"].data)))
    assert got.shape == padded.shape
    assert float(np.abs(got - padded).max()) <= 1e-3 * scale + 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("name,task", [("swinir_x2_in1.pt", "sr"), ("swinir_x1_in5.pt", "denoise")])
def test_official_full_size_checkpoint(name: str, task: str, reference_dir: Path, tmp_path: Path) -> None:
    from unifmir.export.libtorch_check import is_available

    src = reference_dir / name
    out = tmp_path / f"{task}_full.zip"
    from unifmir.cli import main

    args = ["export", "--model", str(src), "--task", task, "--out", str(out), "--authors", "Test Author"]
    if is_available():
        args.append("--check-libtorch")
    t0 = time.perf_counter()
    assert main(args) == 0
    print(f"\nexport {task} (full, official {name}): {time.perf_counter() - t0:.1f} s")
    assert_shell_test_passes(out, tmp_path, "torchscript")  # every format ran in the export's gates
