"""The transfer experiment runs end to end with tiny budgets (train/test and k-fold)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from unifmir.training.experiment import (
    ARM_FINETUNED,
    ARM_PRETRAINED,
    ARM_SCRATCH,
    make_fold_datasets,
    run_transfer,
)

TINY = {"checkpoint": {"val_every": 1}, "data": {"val_samples": 1}, "logging": {"progress": False, "plot": False}}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from unifmir.data.pairs import synthesize_dataset
    from unifmir.model.checkpoints import save_checkpoint
    from unifmir.model.factory import build_model

    root = tmp_path_factory.mktemp("transfer")
    data = root / "ecoli"
    synthesize_dataset("denoise", 4, data, 0, structure="ecoli", size=32)
    torch.manual_seed(0)
    ckpt = root / "pretrained.pt"
    save_checkpoint(ckpt, build_model("denoise", "small").eval())
    return data, ckpt


def test_transfer_train_test(setup: tuple[Path, Path], tmp_path: Path) -> None:
    data, ckpt = setup
    res = run_transfer("denoise", data, ckpt, tmp_path, steps=2, progress=False,
                       overrides=TINY, log=lambda s: None)
    methods = res.evaluation.methods
    assert methods[:3] == [ARM_SCRATCH, ARM_PRETRAINED, ARM_FINETUNED]
    assert "noisy input" in methods
    md = (tmp_path / "transfer.md").read_text()
    for arm in (ARM_SCRATCH, ARM_PRETRAINED, ARM_FINETUNED, "noisy input"):
        assert arm in md
    assert "protocol: `care`" in md
    payload = json.loads((tmp_path / "transfer.json").read_text())
    assert payload["settings"]["steps"] == 2
    assert len(res.comparisons()) == 4  # (c) vs (a), (c) vs (b) in PSNR and SSIM
    rows = list(csv.DictReader(open(tmp_path / "transfer.csv", newline="")))
    n_test = len(res.evaluation.images)
    assert len(rows) == n_test * len(methods)
    for arm_dir in ("scratch", "finetuned"):
        assert (tmp_path / "runs" / "main" / arm_dir / "last.pt").exists()


def test_fold_datasets_partition_train(setup: tuple[Path, Path], tmp_path: Path) -> None:
    data, _ = setup
    n = len(list((data / "train" / "input").iterdir()))
    roots = make_fold_datasets(data, 2, tmp_path)
    held = [sorted(p.name for p in (r / "test" / "input").iterdir()) for r in roots]
    assert sum(len(h) for h in held) == n and not set(held[0]) & set(held[1])
    for r, h in zip(roots, held):
        train = {p.name for p in (r / "train" / "input").iterdir()}
        assert train.isdisjoint(h) and len(train) + len(h) == n


def test_transfer_kfold_and_cli(setup: tuple[Path, Path], tmp_path: Path) -> None:
    from unifmir.cli import main

    data, ckpt = setup
    res = run_transfer("denoise", data, ckpt, tmp_path / "kf", steps=1, folds=2, progress=False,
                       overrides=TINY, log=lambda s: None)
    n = len(list((data / "train" / "input").iterdir()))
    assert len(res.evaluation.images) == n  # every train image held out exactly once
    assert all(name.startswith("fold") for name in res.evaluation.images)
    # CLI: user errors
    assert main(["experiment", "transfer", "--task", "denoise", "--data", str(data), "--from",
                 str(tmp_path / "missing.pt"), "--out", str(tmp_path / "x")]) == 2
    assert main(["experiment", "transfer", "--task", "denoise", "--data", str(data), "--from",
                 str(ckpt), "--out", str(tmp_path / "kf")]) == 2  # not empty, no --overwrite
