"""``unifmir demo`` runs end to end with a tiny budget and refuses to clobber."""

from __future__ import annotations

from pathlib import Path

import pytest

from unifmir.cli import main


@pytest.mark.slow
def test_demo_tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("UNIFMIR_DEMO_STEPS", "2,2")
    monkeypatch.setenv("UNIFMIR_DEMO_IMAGES", "2")
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "pretrained + fine-tuned" in printed and "noisy input" in printed
    assert "protocol: `care`" in printed
    for name in ("evaluation.csv", "evaluation.md", "pretrain/last.pt", "finetune/last.pt"):
        assert (out / name).exists(), name
    # refuses to clobber without --overwrite; replaces an earlier demo with it
    assert main(["demo", "--out", str(out), "--quiet"]) == 2
    assert main(["demo", "--out", str(out), "--quiet", "--overwrite"]) == 0


def test_demo_refuses_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    assert main(["demo", "--out", str(tmp_path), "--overwrite", "--quiet"]) == 2
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_threads_option() -> None:
    import torch

    from unifmir.training.demo import choose_threads, cpu_threads

    assert choose_threads(3) == 3 and choose_threads("2") == 2
    assert choose_threads("auto") >= 1
    with pytest.raises(ValueError):
        choose_threads("zero")
    before = torch.get_num_threads()
    with cpu_threads(1) as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    assert main(["demo", "--threads", "0", "--quiet"]) == 2
