"""Evaluation: per-image CSV numbers equal a direct metric computation; the CLI writes reports."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from unifmir.metrics import PROTOCOLS, evaluate_pair
from unifmir.training.baselines import run_baselines
from unifmir.training.evaluate import (
    METRICS,
    ImagePair,
    evaluate_models,
    write_report,
)


class CentreSlice(nn.Module):
    """A denoise "model" that returns the centre of its 5 input slices: the identity."""

    task = "denoise"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 2:3]


def _pairs(n: int = 2, shape: tuple[int, int, int] = (6, 24, 28)) -> list[ImagePair]:
    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        target = rng.random(shape).astype(np.float32) * 100
        noisy = (target + rng.normal(0, 20, shape)).astype(np.float32)
        out.append(ImagePair(f"img{i}", noisy, target))
    return out


@pytest.mark.parametrize("protocol", ["care", "unifmir"])
def test_identity_model_csv_matches_direct_metrics(tmp_path: Path, protocol: str) -> None:
    pairs = _pairs()
    result = evaluate_models({"identity": CentreSlice()}, pairs, "denoise", protocol)
    csv_path, md_path = write_report(result, tmp_path, stem="ev")
    with open(csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    methods = {r["method"] for r in rows}
    assert "identity" in methods and "noisy input" in methods
    assert any(m.startswith("gaussian") for m in methods)
    assert len(rows) == len(pairs) * len(methods)
    by = {(r["image"], r["method"]): r for r in rows}
    for p in pairs:
        direct = evaluate_pair(p.input, p.target, protocol)
        for m in METRICS:
            # the identity model reproduces the input's metrics ...
            assert float(by[(p.name, "identity")][m]) == pytest.approx(float(direct[m]), rel=1e-4, abs=1e-5)
            # ... and so does the "noisy input" baseline, exactly
            assert float(by[(p.name, "noisy input")][m]) == pytest.approx(float(direct[m]), rel=1e-9)
        for name, img in run_baselines(p.input, "denoise", p.target.shape).items():
            d = evaluate_pair(img, p.target, protocol)
            assert float(by[(p.name, name)]["psnr"]) == pytest.approx(float(d["psnr"]), rel=1e-9)
    for r in rows:
        assert r["protocol"] == protocol
        assert float(r["data_range"]) == PROTOCOLS[protocol].data_range
    # the summary states protocol and data range and holds mean ± std
    md = md_path.read_text()
    assert f"protocol: `{protocol}`" in md and f"data_range: {PROTOCOLS[protocol].data_range:g}" in md
    s = result.summary_by_method()["identity"]
    vals = np.array([float(by[(p.name, "identity")]["psnr"]) for p in pairs])
    assert s.mean["psnr"] == pytest.approx(vals.mean()) and s.std["psnr"] == pytest.approx(vals.std())
    assert f"{s.mean['psnr']:.2f} ± {s.std['psnr']:.2f}" in md


def test_report_refuses_to_overwrite(tmp_path: Path) -> None:
    result = evaluate_models({}, _pairs(1), "denoise", "care")
    write_report(result, tmp_path)
    with pytest.raises(FileExistsError):
        write_report(result, tmp_path)
    write_report(result, tmp_path, overwrite=True)


def test_wrong_output_shape_is_reported() -> None:
    class Bad(nn.Module):
        task = "sr"

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    rng = np.random.default_rng(0)
    pair = ImagePair("a", rng.random((16, 16), dtype=np.float32), rng.random((31, 31), dtype=np.float32))
    with pytest.raises((ValueError, RuntimeError)):
        evaluate_models({"bad": Bad()}, [pair], "sr", "care")


def test_cli_evaluate_writes_csv_and_summary(tmp_path: Path) -> None:
    from unifmir.cli import main
    from unifmir.data.pairs import synthesize_dataset
    from unifmir.model.checkpoints import save_checkpoint
    from unifmir.model.factory import build_model

    data = tmp_path / "data"
    synthesize_dataset("sr", 2, data, 0, size=32)
    torch.manual_seed(0)
    ckpt = tmp_path / "sr.pt"
    save_checkpoint(ckpt, build_model("sr", "small").eval())
    out = tmp_path / "report"
    rc = main(["evaluate", "--model", str(ckpt), "--data", str(data), "--protocol", "unifmir",
               "--out", str(out)])
    assert rc == 0
    rows = list(csv.DictReader(open(out / "evaluation.csv", newline="")))
    assert {r["method"] for r in rows} == {"sr.pt", "bicubic"}
    assert all(np.isfinite(float(r[m])) for r in rows for m in METRICS)
    assert "data_range: 255" in (out / "evaluation.md").read_text()
    # refuses to clobber, and a missing checkpoint is a user error
    assert main(["evaluate", "--model", str(ckpt), "--data", str(data), "--out", str(out)]) == 2
    assert main(["evaluate", "--model", str(tmp_path / "nope.pt"), "--data", str(data)]) == 2
