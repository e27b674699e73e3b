"""Unwritable output folders are reported first, before any work (class 1 of issue 15).

They used to end in a ``PermissionError`` traceback from the temporary file, for ``export`` only
after all its gates had run. Each sub-command now checks that its output folder can be written
(a real probe, so read-only file systems are caught too) before it loads or computes anything.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .clitestlib import assert_refused, cli


def _argv(cmd: str, out: Path, world: Path) -> list[str]:
    release = world / "release" / "experiment" / "SwinIRCCPs"
    release.mkdir(parents=True, exist_ok=True)
    (release / "model_best.pt").write_bytes(b"never read: the output is checked first")
    return {
        "synth": ["synth", "--task", "sr", "--n", "2", "--out", out],
        "finetune": ["finetune", "--task", "sr", "--data", "ds_sr", "--out", out, "--steps", "1"],
        "pretrain": ["pretrain", "--data", "sr=ds_sr", "--out", out, "--steps", "1"],
        "evaluate": ["evaluate", "--model", "sr.pt", "--data", "ds_sr", "--out", out],
        "predict": ["predict", "--model", "sr.pt", "--input", "img.tif", "--output", out],
        "export": ["export", "--model", "sr.pt", "--out", out / "b.zip"],
        "fetch-official": ["fetch-official", "--cache", out, "--url", "http://127.0.0.1:9/model.tgz"],
        "import-official": ["import-official", "--release", world / "release", "--out", out],
        "zoo build": ["zoo", "build", "--out", out, "--work", world / "work"],
        "experiment transfer": ["experiment", "transfer", "--task", "sr", "--data", "ds_sr", "--from", "sr.pt",
                                "--out", out, "--folds", "2"],
        "demo": ["demo", "--out", out],
    }[cmd]


COMMANDS = ["synth", "finetune", "pretrain", "evaluate", "predict", "export", "fetch-official",
            "import-official", "zoo build", "experiment transfer", "demo"]


@pytest.mark.parametrize("cmd", COMMANDS)
def test_unwritable_output_is_refused_first(world, watch, unwritable, capsys, monkeypatch, cmd) -> None:
    import unifmir.training.loop as loop
    import unifmir.zoo.build as build

    def never(*a, **k):  # the output is checked before any work starts
        raise AssertionError("work started before the output folder was checked")

    import unifmir.export.bundle as bundle

    monkeypatch.setattr(bundle, "export_model", never)
    monkeypatch.setattr(loop, "train", never)
    monkeypatch.setattr(build, "build_suite", never)
    argv = _argv(cmd, unwritable, world)
    w = watch()
    res = cli(argv, capsys)
    assert_refused(res, str(unwritable), "cannot write to", "choose another location")
    w.assert_unchanged()


def test_output_below_a_file_is_refused(world, watch, capsys) -> None:
    w = watch()
    res = cli(["predict", "--model", "sr.pt", "--input", "img.tif", "--output", "img.tif/out"], capsys)
    assert_refused(res, "img.tif", "is a file, not a folder", "choose another path")
    w.assert_unchanged()
