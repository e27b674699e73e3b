"""``--threads`` on every sub-command that runs PyTorch: accepted, applied, checked, warned about."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest
import torch

from unifmir import _threads
from unifmir.cli import build_parser, main

NO_TORCH = {"fetch-official", "zoo pack", "zoo list"}
"""Sub-commands that run no PyTorch code (download, zip, list): no --threads."""

MINIMAL = {  # the required arguments of each torch sub-command (the values are never read)
    "synth": ["--task", "sr", "--out", "ds"],
    "pretrain": [],
    "finetune": [],
    "evaluate": ["--model", "m.pt", "--data", "ds"],
    "predict": ["--model", "m.pt", "--input", "img.tif", "--output", "out"],
    "export": ["--model", "m.pt", "--out", "b.zip"],
    "import-official": ["--release", "rel", "--out", "out"],
    "zoo build": [],
    "demo": [],
    "experiment transfer": ["--task", "sr", "--data", "ds", "--from", "m.pt"],
}


def _leaves(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    """Every runnable sub-command parser of ``parser``, by its command words."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return {prefix: parser}
    out: dict[str, argparse.ArgumentParser] = {}
    for action in subs:
        for name, sub in action.choices.items():
            out.update(_leaves(sub, f"{prefix} {name}".strip()))
    return out


def test_every_torch_subcommand_has_threads() -> None:
    leaves = _leaves(build_parser())
    assert NO_TORCH <= set(leaves)
    assert set(leaves) - NO_TORCH == set(MINIMAL), "a new sub-command: add it to MINIMAL (or NO_TORCH)"
    for name, parser in leaves.items():
        threads = [a for a in parser._actions if "--threads" in a.option_strings]
        if name in NO_TORCH:
            assert not threads, name
            continue
        assert len(threads) == 1 and threads[0].default == "auto", name
        args = build_parser().parse_args([*name.split(), *MINIMAL[name], "--threads", "3"])
        assert args.threads == "3", name


@pytest.mark.parametrize("name", sorted(MINIMAL))
@pytest.mark.parametrize("bad", ["0", "two"])
def test_bad_threads_is_one_error_naming_the_flag(name: str, bad: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([*name.split(), *MINIMAL[name], "--threads", bad]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"unifmir {name}: error: --threads {bad}: expected auto or a positive whole number of CPU "
                   "threads (e.g. --threads 1 on a busy machine)")
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def _record_run(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    """Replace ``unifmir synth``'s work by a recorder of the thread count it runs with."""
    import unifmir.cli.synth

    seen: list[tuple[int, str]] = []

    def run(args: argparse.Namespace) -> int:
        seen.append((torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS", "")))
        return 0

    monkeypatch.setattr(unifmir.cli.synth, "run", run)
    return seen


def test_threads_apply_to_the_command_and_its_subprocesses(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _record_run(monkeypatch)
    monkeypatch.setattr(_threads, "other_load", lambda: 0.0)
    before = torch.get_num_threads()
    assert main(["synth", "--task", "sr", "--out", "ds", "--threads", "2"]) == 0
    assert seen == [(2, "2")]
    assert torch.get_num_threads() == before


def test_oversubscribed_threads_warn_in_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    seen = _record_run(monkeypatch)
    monkeypatch.setattr(_threads, "available_cores", lambda: 2)
    monkeypatch.setattr(_threads, "_own_load", lambda: 0.0)
    monkeypatch.setattr(os, "getloadavg", lambda: (2.5, 2.0, 2.0))  # the other processes fill both cores
    assert main(["synth", "--task", "sr", "--out", "ds", "--threads", "2"]) == 0
    assert seen == [(2, "2")]  # an explicit count is used as given, with the warning
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("unifmir synth: warning: 2 CPU threads (--threads) but the other "
                                               "processes keep 2.5 of the 2 CPU cores busy")
    assert err[0].endswith("use --threads 1")
