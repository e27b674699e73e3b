"""Invalid numbers (and device names) are rejected when the command line is parsed (class 1 of issue 15).

``--batch-size 0`` used to end in ``ZeroDivisionError``/``IndexError`` after a half-made run
folder was written; now every numeric flag has a type that refuses bad values with a usage error
naming the flag, before anything is loaded or written.
"""

from __future__ import annotations

import pytest

from .clitestlib import assert_refused, cli

TRAIN = ["--task", "sr", "--data", "ds_sr", "--out", "run", "--quiet"]
CASES = {
    "synth": (["synth", "--task", "sr", "--out", "d"], [("--n", "0"), ("--size", "4"), ("--test-fraction", "1.5"),
                                                        ("--seed", "-1"), ("--n", "two")]),
    "finetune": (["finetune", *TRAIN], [("--batch-size", "0"), ("--steps", "0"), ("--lr", "0"), ("--lr", "nan"),
                                        ("--patch-size", "4"), ("--val-every", "0"), ("--workers", "-1"),
                                        ("--early-stopping", "0"), ("--upscale", "0"), ("--in-chans", "0"),
                                        ("--device", "gpu0")]),
    "pretrain": (["pretrain", "--data", "sr=ds_sr", "--out", "run", "--quiet"],
                 [("--batch-size", "0"), ("--steps", "-3"), ("--lr", "-1e-4")]),
    "predict": (["predict", "--model", "sr.pt", "--input", "img.tif", "--output", "out"],
                [("--batch-size", "0"), ("--tile", "0"), ("--overlap", "-8"), ("--z-factor", "0"),
                 ("--z-spacing", "0"), ("--device", "cuda:x")]),
    "experiment transfer": (["experiment", "transfer", "--task", "sr", "--data", "ds_sr", "--from", "sr.pt", "--out", "x"],
                   [("--folds", "1"), ("--steps", "0"), ("--patch", "4")]),
    "zoo build": (["zoo", "build", "--out", "zoo", "--work", "work"], [("--step-scale", "0"), ("--data-scale", "-1")]),
    "fetch-official": (["fetch-official", "--cache", "cache"], [("--sha256", "not-a-digest")]),
    "demo": (["demo", "--out", "demo"], [("--pretrain-steps", "0")]),
}
PARAMS = [(cmd, flag, value) for cmd, (_, bad) in CASES.items() for flag, value in bad]


@pytest.mark.parametrize("cmd, flag, value", PARAMS)
def test_invalid_number_is_a_usage_error(world, watch, capsys, cmd, flag, value) -> None:
    base, _ = CASES[cmd]
    w = watch()
    res = cli([*base, flag, value], capsys)
    assert_refused(res, f"argument {flag}:", f"unifmir {cmd}: error:")
    assert "usage:" in res.err
    w.assert_unchanged()  # in particular no half-made run folder


def test_batch_size_zero_in_a_config_file(world, watch, capsys) -> None:
    """The same rule for a config file (validated before the run folder is made)."""
    (world / "cfg.yaml").write_text("mode: finetune\ntasks: [sr]\ndata: {roots: {sr: ds_sr}, batch_size: 0}\n")
    w = watch()
    res = cli(["finetune", "--config", "cfg.yaml", "--out", "run"], capsys)
    assert_refused(res, "data.batch_size", "at least 1")
    w.assert_unchanged()
