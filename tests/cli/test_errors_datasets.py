"""Whole datasets are validated before the first training step (classes 2 and 3 of issue 15).

A NaN in a target used to surface as "loss is nan at step 3" with no file named, and a mismatched
pair only when it was first sampled (a short run completed, a longer one failed after writing
checkpoints). Every pair of the training and validation splits is now checked up front (files,
channels, dimensions, dtype, finite values, pair sizes for the task), naming the file; nothing is
written (no run folder).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from .clitestlib import assert_refused, cli

# a fault per kind, put into the LAST pair of the split so that sampling would hit it late (or never)


def _nan_target(ds: Path) -> Path:
    p = sorted((ds / "train" / "target").iterdir())[-1]
    a = tifffile.imread(p).astype(np.float32)
    a.flat[5] = np.nan
    tifffile.imwrite(p, a)
    return p


def _wrong_pair(ds: Path) -> Path:
    p = sorted((ds / "train" / "target").iterdir())[-1]
    a = tifffile.imread(p)
    tifffile.imwrite(p, a[: a.shape[0] // 2])  # target no longer 2x the input
    return sorted((ds / "train" / "input").iterdir())[-1]


def _text_image(ds: Path) -> Path:
    p = sorted((ds / "train" / "input").iterdir())[-1]
    p.write_bytes(b"not an image")
    return p


def _missing_target(ds: Path) -> Path:
    p = sorted((ds / "train" / "target").iterdir())[-1]
    p.unlink()
    return p


FAULTS = {
    "nan target": (_nan_target, ["NaN", "nan_to_num"]),
    "wrong pair size": (_wrong_pair, ["do not match", "the target must be 2x the input"]),
    "unreadable": (_text_image, ["not a readable TIFF file"]),
    "missing target": (_missing_target, ["inputs without target", "add the missing file"]),
}


def _argv(cmd: str) -> list[str]:
    return {
        "finetune": ["finetune", "--task", "sr", "--data", "ds_sr", "--out", "run", "--steps", "50", "--quiet"],
        "pretrain": ["pretrain", "--data", "sr=ds_sr", "--data", "denoise=ds_denoise", "--out", "run", "--quiet"],
        "evaluate": ["evaluate", "--model", "sr.pt", "--data", "ds_sr", "--split", "train", "--out", "ev"],
    }[cmd]


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("cmd", ["finetune", "pretrain", "evaluate"])
def test_bad_pair_is_named_before_any_step(world, watch, capsys, monkeypatch, cmd, fault) -> None:
    import unifmir.training.loop as loop

    def no_training(*a, **k):
        raise AssertionError("training started before the data were checked")

    monkeypatch.setattr(loop._Run, "build", no_training)
    make, words = FAULTS[fault]
    bad = make(world / "ds_sr")
    w = watch()
    res = cli(_argv(cmd), capsys)
    named = str(bad.relative_to(world)).replace("target", "input") if fault == "missing target" \
        else str(bad.relative_to(world))
    assert_refused(res, named, *words)
    w.assert_unchanged()


def test_validation_split_is_checked_too(world, watch, capsys) -> None:
    p = sorted((world / "ds_sr" / "test" / "target").iterdir())[-1]
    a = tifffile.imread(p).astype(np.float32)
    a.flat[0] = np.inf
    tifffile.imwrite(p, a)
    w = watch()
    res = cli(_argv("finetune"), capsys)
    assert_refused(res, str(p.relative_to(world)), "infinite")
    w.assert_unchanged()


def test_zoo_build_checks_a_folder_recipe_before_pretraining(world, watch, capsys, monkeypatch) -> None:
    import unifmir.zoo.build as build

    monkeypatch.setattr(build, "pretrain", lambda *a, **k: (_ for _ in ()).throw(AssertionError("pretraining ran")))
    bad = _nan_target(world / "ds_sr")
    pkg = world / "packaging"
    (pkg / "recipes").mkdir(parents=True)
    (pkg / "suite.yaml").write_text("tasks: [{task: sr}]\nsteps: 1\n")
    (pkg / "recipes" / "mine.yaml").write_text(
        f"id: mine\ntask: sr\ndata: {{source: folder, path: {world / 'ds_sr'}}}\n"
        "metadata: {name: mine, description: my data}\n")
    w = watch()
    res = cli(["zoo", "build", "--packaging", pkg, "--out", "zoo", "--work", "work"], capsys)
    assert_refused(res, str(bad), "NaN")
    w.assert_unchanged()


def test_large_sets_show_a_progress_bar(tmp_path, capsys) -> None:
    """More than 50 pairs: validate_dataset reports its progress (tqdm on stderr)."""
    from unifmir.data.datasets import validate_dataset
    from unifmir.data.io import write_image
    from unifmir.data.pairs import write_dataset_info

    rng = np.random.default_rng(0)
    for i in range(51):
        write_image(tmp_path / "train/input" / f"{i}.tif", rng.random((8, 8)).astype(np.float32), "YX")
        write_image(tmp_path / "train/target" / f"{i}.tif", rng.random((16, 16)).astype(np.float32), "YX")
    write_dataset_info(tmp_path, "sr")
    capsys.readouterr()
    assert validate_dataset(tmp_path, "sr", progress=True) == {"train": 51}
    err = capsys.readouterr().err
    assert "checking" in err and "/51" in err
