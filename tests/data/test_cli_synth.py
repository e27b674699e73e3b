"""``unifmir synth`` through ``unifmir.cli.main`` for the five tasks and the bacteria variants."""

from __future__ import annotations

import numpy as np
import pytest

from unifmir.cli import main
from unifmir.data.datasets import PatchDataset
from unifmir.data.io import read_image
from unifmir.data.pairs import load_dataset_info

CASES = [
    ("sr", None, 16),
    ("denoise", None, 16),
    ("isotropic", None, 16),
    ("projection", None, 16),
    ("volumetric", None, 22),
    ("denoise", "ecoli", 32),  # DeepBacs-like low-photon E. coli denoising
    ("sr", "bacteria", 32),  # rods + cocci super-resolution
    ("sr", "saureus", 16),
]


@pytest.mark.parametrize("task, structure, size", CASES)
def test_synth_cli(tmp_path, capsys, task, structure, size):
    out = tmp_path / "ds"
    argv = ["synth", "--task", task, "--n", "3", "--out", str(out), "--seed", "2", "--size", str(size)]
    if structure:
        argv += ["--structure", structure]
    assert main(argv) == 0
    assert "wrote 3" in capsys.readouterr().out
    info = load_dataset_info(out)
    assert info.task == task and info.counts == {"train": 2, "test": 1}
    if structure:
        assert info.provenance["structure"] == structure
    x, meta = read_image(out / "train/input/0000.tif")
    assert meta.axes == info.input_axes
    ds = PatchDataset(out, task, patch_size=size if task != "volumetric" else 22, length=1)
    assert ds[0]["input"].ndim == 3


def test_synth_cli_params_and_seed(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    common = ["synth", "--task", "denoise", "--n", "1", "--size", "16", "--quiet"]
    assert main(common + ["--out", str(a), "--param", "photons=2", "--param", "depth=6"]) == 0
    assert main(common + ["--out", str(b), "--param", "photons=2", "--param", "depth=6"]) == 0
    xa, xb = read_image(a / "train/input/0000.tif")[0], read_image(b / "train/input/0000.tif")[0]
    np.testing.assert_array_equal(xa, xb)
    assert xa.shape == (6, 16, 16)
    assert load_dataset_info(a).provenance["params"]["photons"] == 2


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--task", "sr", "--structure", "nuclei"], "not available for task 'sr'"),
        (["--task", "sr", "--param", "wavelenght=0.5"], "unknown --param wavelenght"),
        (["--task", "sr", "--n", "0"], "--n: must be at least 1"),
        (["--task", "volumetric", "--size", "30"], "multiple of 11"),
        (["--task", "sr", "--size", "4"], "--size: must be at least 8"),
    ],
)
def test_synth_cli_user_errors(tmp_path, capsys, extra, match):
    assert main(["synth", "--out", str(tmp_path / "x"), "--quiet", *extra]) == 2
    assert match in capsys.readouterr().err


def test_synth_cli_refuses_existing(tmp_path, capsys):
    out = tmp_path / "d"
    args = ["synth", "--task", "sr", "--n", "1", "--size", "16", "--out", str(out), "--quiet"]
    assert main(args) == 0
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0


def test_synth_randomized_cli_writes_a_stream_dataset(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["synth", "--task", "sr", "--randomized", "--n", "2", "--size", "32", "--out", str(out)]) == 0
    info = load_dataset_info(out)
    assert info.stream is not None and info.counts == {"train": 0, "test": 2}
    assert len(info.provenance["test_physics"]) == 2  # the physics of each held-out pair is recorded


@pytest.mark.parametrize("extra, words", [
    (["--structure", "ccp"], "drop --structure/--param"),
    (["--task", "isotropic"], "no randomised domain yet"),
])
def test_synth_randomized_refuses_what_the_domain_decides(tmp_path, capsys, extra, words):
    argv = ["synth", "--task", "sr", "--randomized", "--n", "2", "--out", str(tmp_path / "ds"), *extra]
    assert main(argv) != 0
    assert words in capsys.readouterr().err
    assert not (tmp_path / "ds").exists()
