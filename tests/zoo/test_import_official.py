"""`unifmir import-official` turns release checkpoints (here: the reference fixtures) into valid bundles."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from unifmir.cli import main
from unifmir.zoo.official import OFFICIAL_MODELS

from .test_fetch import make_release

RUNS = ["SwinIRDenoising_Planaria"]  # full-size 1-slice denoiser -> the 2D bundle variant (full-size SR export is tested in tests/export)


@pytest.fixture(scope="module")
def imported(tmp_path_factory, reference_dir) -> Path:
    tmp = tmp_path_factory.mktemp("official")
    release = make_release(reference_dir, tmp / "release",
                           models=[m for m in OFFICIAL_MODELS if m.run in RUNS])
    out = tmp / "bundles"
    rc = main(["import-official", "--release", str(release), "--out", str(out), "--folder"])
    assert rc == 0
    return out


@pytest.mark.parametrize("run", RUNS)
def test_bundle_passes_bioimageio_test(imported, run):
    from bioimageio.core import test_model

    model = next(m for m in OFFICIAL_MODELS if m.run == run)
    zip_path = imported / f"{model.bundle_name}.zip"
    assert zip_path.is_file() and (imported / model.bundle_name / "rdf.yaml").is_file()
    summary = test_model(zip_path, devices=["cpu"])
    assert summary.status == "passed", summary.format()


@pytest.mark.parametrize("run", RUNS)
def test_bundle_metadata_names_task_dataset_and_citation(imported, run):
    model = next(m for m in OFFICIAL_MODELS if m.run == run)
    rdf = yaml.safe_load((imported / model.bundle_name / "rdf.yaml").read_text())
    assert model.structure in rdf["name"] and "official release" in rdf["name"]
    dois = {c.get("doi") for c in rdf["cite"]}
    assert "10.1038/s41592-024-02244-3" in dois  # UniFMIR
    assert model.dataset in rdf["description"]
    assert all("github_user" not in a for a in rdf["authors"])


def test_unknown_run_is_reported(tmp_path, reference_dir):
    release = make_release(reference_dir, tmp_path / "release", models=OFFICIAL_MODELS[:1])
    rc = main(["import-official", "--release", str(release), "--out", str(tmp_path / "o"), "--only", "NoSuchRun"])
    assert rc == 2


def test_empty_release_folder_is_reported(tmp_path):
    rc = main(["import-official", "--release", str(tmp_path), "--out", str(tmp_path / "o")])
    assert rc == 2
