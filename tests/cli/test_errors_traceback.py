"""One rule for the whole CLI: user errors never show a traceback, ``--debug`` does (issue 15, class 1).

A few checks run the real ``python -m unifmir`` in a subprocess (what a user sees on the terminal);
the rest run in-process.
"""

from __future__ import annotations

import pytest

from .clitestlib import assert_refused, cli, run_subprocess


def test_user_errors_in_a_real_terminal_have_no_traceback(world) -> None:
    code = """
import sys
from unifmir.cli import main
cases = [
    ["predict", "--model", "missing.pt", "--input", "img.tif", "--output", "out"],
    ["predict", "--model", "sr.pt", "--input", "img.tif", "--output", "out", "--batch-size", "0"],
    ["evaluate", "--model", "sr.pt", "--data", "nowhere"],
    ["finetune", "--resume", "nowhere"],
    ["export", "--model", "sr.pt", "--out", "b.txt"],
    ["synth", "--task", "sr", "--out", "ds_sr"],
    ["import-official", "--release", ".", "--out", "bundles"],
    ["zoo", "build", "nosuchrecipe", "--out", "zoo", "--work", "work"],
]
for argv in cases:
    print("RC", main(argv), file=sys.stderr)
"""
    proc = run_subprocess(code, cwd=world)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.count("RC 2") == 8, proc.stderr
    assert proc.stderr.count("error:") == 8, proc.stderr
    assert "unifmir zoo build: error: unknown recipe(s) ['nosuchrecipe']" in proc.stderr


def test_debug_shows_the_traceback(world, capsys, monkeypatch) -> None:
    for argv, env in ((["--debug", "predict"], None), (["predict", "--debug"], None), (["predict"], "1")):
        if env:
            monkeypatch.setenv("UNIFMIR_DEBUG", env)
        res = cli([*argv, "--model", "missing.pt", "--input", "img.tif", "--output", "out"], capsys)
        assert res.rc == 2
        assert "Traceback (most recent call last)" in res.err, (argv, env, res.err)
        assert "unifmir predict: error: --model missing.pt: no such checkpoint file" in res.err


def test_a_bug_is_an_internal_error_not_a_user_error(world, capsys, monkeypatch) -> None:
    import unifmir.cli.synth as synth

    def broken(args):
        raise RuntimeError("something unexpected")

    monkeypatch.setattr(synth, "run", broken)  # register() binds the module's run at parse time
    res = cli(["synth", "--task", "sr", "--out", "x"], capsys)
    assert res.rc == 1
    assert "internal error (RuntimeError: something unexpected)" in res.err and "--debug" in res.err
    assert "Traceback" not in res.err
    res = cli(["--debug", "synth", "--task", "sr", "--out", "x"], capsys)
    assert res.rc == 1 and "Traceback (most recent call last)" in res.err


@pytest.mark.parametrize("err, words", [
    (PermissionError(13, "Permission denied", "/data/x.tif"), ["Permission denied: /data/x.tif", "permissions"]),
    (OSError(28, "No space left on device", "/data/out.tif"), ["No space left on device", "free some space"]),
    (IsADirectoryError(21, "Is a directory", "/data"), ["Is a directory: /data", "give a file, not a folder"]),
])
def test_operating_system_errors_become_messages(world, capsys, monkeypatch, err, words) -> None:
    import unifmir.cli.synth as synth

    def failing(args):
        raise err

    monkeypatch.setattr(synth, "run", failing)
    res = cli(["synth", "--task", "sr", "--out", "x"], capsys)
    assert_refused(res, *words)


def test_help_and_version_exit_cleanly(capsys) -> None:
    assert cli(["--version"], capsys).rc == 0
    assert cli(["predict", "--help"], capsys).rc == 0
    res = cli(["predict"], capsys)
    assert res.rc == 2 and "the following arguments are required" in res.err
