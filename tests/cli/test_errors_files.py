"""Missing, corrupt, hostile and misleading files get one clear message each (classes 1 and 2 of issue 15).

* a truncated or hostile ``train_state.pt`` on ``--resume`` (finetune, pretrain);
* YAML tags in every YAML the CLI reads (export --metadata, --config, dataset.yaml, zoo recipes,
  synth --param): refused, never constructed;
* an RGB/multichannel TIFF (predict, the datasets of finetune/pretrain/evaluate, export --data):
  named as such, with how to take one channel;
* a model path that is a folder (predict, export, evaluate, finetune/pretrain/experiment --from);
* NaN weights reported as NaN weights of that file (predict, export, evaluate, finetune/pretrain --from).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile

from .clitestlib import assert_refused, cli, hostile_pickle

TINY = ["--quiet", "--patch-size", "16", "--batch-size", "1", "--device", "cpu"]


@pytest.fixture(scope="module")
def runs(assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 1-step fine-tuning run and a 1-step pretraining run (``ft/``, ``pt/``)."""
    import torch

    from unifmir.cli import main

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("runs")
    assert main(["finetune", "--task", "sr", "--data", str(assets / "ds_sr"), "--out", str(root / "ft"),
                 "--steps", "1", *TINY]) == 0
    assert main(["pretrain", "--data", f"sr={assets / 'ds_sr'}", "--out", str(root / "pt"), "--steps", "1", *TINY]) == 0
    return root


# ---------------------------------------------------------------------------------------------
# --resume with a damaged train_state.pt


def _damage(state: Path, how: str, marker: Path) -> None:
    if how == "truncated":
        data = state.read_bytes()
        state.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        state.write_bytes(b"")
    elif how == "garbage":
        state.write_bytes(b"\x80\x04this is not a checkpoint" * 10)
    elif how == "hostile":
        hostile_pickle(state, marker)
    elif how == "foreign":
        import torch

        torch.save({"format": "unifmir-train-state/1", "step": "three", "model": {}}, state)


@pytest.mark.parametrize("cmd", ["finetune", "pretrain"])
@pytest.mark.parametrize("how", ["truncated", "empty", "garbage", "hostile", "foreign"])
def test_resume_from_a_damaged_state(world, watch, runs, capsys, cmd, how) -> None:
    run = world / "run"
    shutil.copytree(runs / ("ft" if cmd == "finetune" else "pt"), run)
    marker = world.parent / "PWNED"
    _damage(run / "train_state.pt", how, marker)
    w = watch()
    res = cli([cmd, "--resume", run, "--steps", "2", "--quiet"], capsys)
    text = assert_refused(res, f"cannot resume from {run / 'train_state.pt'}", "--from", "last.pt")
    if how == "hostile":
        assert "pickled Python objects or code" in text
    assert not marker.exists(), "the hostile pickle was executed"
    w.assert_unchanged()


def test_resume_from_a_folder_without_a_run(world, watch, capsys) -> None:
    (world / "empty").mkdir()
    w = watch()
    res = cli(["finetune", "--resume", "empty"], capsys)
    assert_refused(res, "--resume empty", "no resumable run", "--out")
    res = cli(["pretrain", "--resume", "nowhere"], capsys)
    assert_refused(res, "--resume nowhere", "no such run folder")
    w.assert_unchanged()


# ---------------------------------------------------------------------------------------------
# YAML tags


def _tag(marker: Path) -> str:
    return f"!!python/object/apply:os.system ['touch {marker}']"


def test_yaml_tag_in_export_metadata(world, watch, capsys) -> None:
    marker = world.parent / "PWNED"
    (world / "meta.yaml").write_text(f"name: {_tag(marker)}\n")
    w = watch()
    res = cli(["export", "--model", "sr.pt", "--out", "b.zip", "--metadata", "meta.yaml"], capsys)
    assert_refused(res, "meta.yaml", "!!python")
    assert not marker.exists()
    w.assert_unchanged()


@pytest.mark.parametrize("cmd", ["finetune", "pretrain"])
def test_yaml_tag_in_a_training_config(world, watch, capsys, cmd) -> None:
    marker = world.parent / "PWNED"
    (world / "cfg.yaml").write_text(f"mode: {cmd}\ntasks: [sr]\ndata: {{roots: {{sr: {_tag(marker)}}}}}\n")
    w = watch()
    res = cli([cmd, "--config", "cfg.yaml", "--out", "run"], capsys)
    assert_refused(res, "cfg.yaml", "not valid YAML", "!!python")
    assert not marker.exists()
    w.assert_unchanged()


@pytest.mark.parametrize("cmd", ["finetune", "evaluate"])
def test_yaml_tag_in_dataset_yaml(world, watch, capsys, cmd) -> None:
    marker = world.parent / "PWNED"
    (world / "ds_sr" / "dataset.yaml").write_text(f"task: {_tag(marker)}\n")
    w = watch()
    argv = {"finetune": ["finetune", "--task", "sr", "--data", "ds_sr", "--out", "run"],
            "evaluate": ["evaluate", "--model", "sr.pt", "--data", "ds_sr"]}[cmd]
    res = cli(argv, capsys)
    assert_refused(res, "dataset.yaml", "not valid YAML")
    assert not marker.exists()
    w.assert_unchanged()


def test_yaml_tag_in_a_zoo_recipe(world, watch, capsys) -> None:
    marker = world.parent / "PWNED"
    pkg = world / "packaging"
    (pkg / "recipes").mkdir(parents=True)
    (pkg / "suite.yaml").write_text("tasks: [{task: sr}]\n")
    (pkg / "recipes" / "x.yaml").write_text(f"id: x\ntask: sr\nmetadata: {_tag(marker)}\n")
    w = watch()
    res = cli(["zoo", "build", "--packaging", pkg, "--out", "zoo", "--work", "work"], capsys)
    assert_refused(res, "x.yaml", "not valid YAML")
    assert not marker.exists()
    w.assert_unchanged()


def test_yaml_tag_in_a_synth_param(world, watch, capsys) -> None:
    marker = world.parent / "PWNED"
    w = watch()
    res = cli(["synth", "--task", "sr", "--out", "d", "--param", f"photons={_tag(marker)}"], capsys)
    assert_refused(res, "argument --param", "YAML tags are not read")
    assert not marker.exists()
    w.assert_unchanged()


# ---------------------------------------------------------------------------------------------
# RGB / multichannel images


def _rgb(path: Path, shape=(32, 32, 3)) -> Path:
    tifffile.imwrite(path, (np.random.default_rng(0).random(shape) * 255).astype(np.uint8))
    return path


def test_rgb_input_to_predict(world, watch, capsys) -> None:
    _rgb(world / "photo.tif")
    w = watch()
    for model in ("sr.pt", "denoise.pt"):  # not read as a 32-slice stack either
        res = cli(["predict", "--model", model, "--input", "photo.tif", "--output", "out"], capsys)
        assert_refused(res, "photo.tif", "RGB/multichannel", "take one channel with", "[..., 0]")
    w.assert_unchanged()


def test_folder_given_as_an_input_image(world, watch, capsys) -> None:
    w = watch()
    res = cli(["predict", "--model", "sr.pt", "--input", "ds_sr", "--output", "out"], capsys)
    assert_refused(res, "ds_sr is a directory, not an image file", "ds_sr/*.tif")
    w.assert_unchanged()


def test_multichannel_input_to_predict(world, watch, capsys) -> None:
    tifffile.imwrite(world / "two.tif", np.random.default_rng(0).random((2, 24, 24)).astype(np.float32),
                     imagej=True, metadata={"axes": "CYX"})
    w = watch()
    res = cli(["predict", "--model", "sr.pt", "--input", "two.tif", "--output", "out"], capsys)
    assert_refused(res, "two.tif", "multichannel image (2 channels", "take one channel with")
    w.assert_unchanged()


@pytest.mark.parametrize("cmd", ["finetune", "pretrain", "evaluate"])
def test_rgb_image_in_a_dataset(world, watch, capsys, cmd) -> None:
    bad = _rgb(world / "ds_denoise" / "train" / "input" / "0000.tif")
    argv = {"finetune": ["finetune", "--task", "denoise", "--data", "ds_denoise", "--out", "run"],
            "pretrain": ["pretrain", "--data", "denoise=ds_denoise", "--out", "run"],
            "evaluate": ["evaluate", "--model", "denoise.pt", "--data", "ds_denoise", "--split", "train"]}[cmd]
    w = watch()
    res = cli(argv, capsys)
    assert_refused(res, str(Path("ds_denoise") / "train" / "input" / bad.name), "RGB/multichannel",
                   "take one channel with")
    w.assert_unchanged()


def test_rgb_test_image_for_export(world, watch, capsys) -> None:
    _rgb(world / "photo.tif")
    w = watch()
    res = cli(["export", "--model", "sr.pt", "--out", "b.zip", "--data", "photo.tif"], capsys)
    assert_refused(res, "photo.tif", "RGB/multichannel", "take one channel with")
    w.assert_unchanged()


# ---------------------------------------------------------------------------------------------
# a model path that is a folder; NaN weights


def _model_argv(cmd: str, model: str) -> list[str]:
    return {
        "predict": ["predict", "--model", model, "--input", "img.tif", "--output", "out"],
        "export": ["export", "--model", model, "--out", "b.zip"],
        "evaluate": ["evaluate", "--model", model, "--data", "ds_sr"],
        "finetune": ["finetune", "--task", "sr", "--data", "ds_sr", "--from", model, "--out", "run", *TINY],
        "pretrain": ["pretrain", "--data", "sr=ds_sr", "--from", model, "--out", "run", *TINY],
        "experiment transfer": ["experiment", "transfer", "--task", "sr", "--data", "ds_sr", "--from", model,
                                "--out", "x", "--folds", "2"],
    }[cmd]


@pytest.mark.parametrize("cmd", ["predict", "export", "evaluate", "finetune", "pretrain", "experiment transfer"])
def test_model_path_is_a_folder(world, watch, capsys, cmd) -> None:
    (world / "runs").mkdir()
    shutil.copy(world / "sr.pt", world / "runs" / "best.pt")
    w = watch()
    res = cli(_model_argv(cmd, "runs"), capsys)
    assert_refused(res, "runs is a folder, not a checkpoint file", "best.pt", "give the .pt/.pth file inside it")
    assert "does not exist" not in res.err
    w.assert_unchanged()


@pytest.mark.parametrize("cmd", ["predict", "export", "evaluate", "finetune", "pretrain"])
def test_nan_weights_are_named(world, watch, capsys, cmd) -> None:
    w = watch()
    res = cli(_model_argv(cmd, "nan.pt"), capsys)
    assert_refused(res, "nan.pt", "NaN/Inf weights", "conv_first.weight", "another checkpoint")
    assert "array for" not in res.err  # not blamed on the output
    w.assert_unchanged()


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", None])
def test_corrupt_checkpoint(world, watch, capsys, content) -> None:
    bad = world / "bad.pt"
    if content is None:  # truncated
        data = (world / "sr.pt").read_bytes()
        bad.write_bytes(data[: len(data) // 3])
    else:
        bad.write_bytes(content)
    w = watch()
    for cmd in ("predict", "evaluate", "finetune"):
        res = cli(_model_argv(cmd, "bad.pt"), capsys)
        assert_refused(res, "bad.pt")
        assert any(k in res.err for k in ("empty", "corrupted", "truncated", "not a PyTorch checkpoint"))
    w.assert_unchanged()
