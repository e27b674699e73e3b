"""`unifmir zoo build` on a one-recipe suite: pretrain -> fine-tune -> evaluate -> export, step
records, resume without rework, and a README table that follows the bundle on disk."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from unifmir.zoo.build import BuildOptions, build_suite, current_records

SUITE = """\
preset: small
steps: 2
batch_size: 2
tasks:
  - task: sr
    data: {structure: ccp, n: 4, seed: 1}
"""

RECIPE = """\
id: t-sr
task: sr
preset: small
data: {source: synthetic, structure: ccp, n: 8, seed: 2}
finetune: {steps: 2, batch_size: 2, patch_size: 32, val_every: 1, init: suite}
metadata:
  name: test sr
  description: a two-step test model
  cite: [unifmir]
  training_data: synthetic CCP-like pairs
"""


@pytest.mark.slow
def test_build_resume_and_table(tmp_path: Path) -> None:
    pkg = tmp_path / "packaging"
    (pkg / "recipes").mkdir(parents=True)
    (pkg / "suite.yaml").write_text(SUITE)
    (pkg / "recipes" / "t-sr.yaml").write_text(RECIPE)
    logs: list[str] = []
    opts = BuildOptions(out=tmp_path / "zoo", work=tmp_path / "work", packaging=pkg, progress=False,
                        export_kwargs={"onnx": False, "check_libtorch": False}, log=logs.append)
    (rec,) = build_suite(None, opts)
    zip_path = Path(rec["zip"])
    assert zip_path.is_file() and (tmp_path / "zoo" / "t-sr" / "rdf.yaml").is_file()
    assert rec["steps"] == 2 and all(rec["gates"].values()) and rec["baseline"] == "bicubic"
    table = (tmp_path / "zoo" / "README.md").read_text()
    assert "[t-sr](t-sr/)" in table and f"{rec['psnr']:.2f} / {rec['baseline_psnr']:.2f}" in table
    assert any("shared pretraining on sr" in m for m in logs)

    # a second build does nothing: pretraining cached, model up to date, bundle untouched
    mtime = zip_path.stat().st_mtime_ns
    logs.clear()
    (again,) = build_suite(["t-sr"], opts)
    assert again == rec and zip_path.stat().st_mtime_ns == mtime
    assert any("cached" in m for m in logs) and any("up to date" in m for m in logs)

    # a stale record (e.g. from before a recipe edit) never reaches the table
    steps = tmp_path / "work" / "steps"
    stale = dict(rec, psnr=99.0, zip_sha256="0" * 64)
    (steps / "model-t-sr-stale.json").write_text(json.dumps(stale))  # newest, but wrong hash
    old = dict(rec, psnr=98.0)
    old.pop("zip_sha256")
    (steps / "model-t-sr-old.json").write_text(json.dumps(old))
    os.utime(steps / "model-t-sr-old.json", (1, 1))  # older than the real record
    (cur,) = current_records(tmp_path / "work")
    assert cur["psnr"] == rec["psnr"]


def test_unknown_recipe_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown recipe.*available: unifmir-"):
        build_suite(["no-such-model"], BuildOptions(work=tmp_path / "w", out=tmp_path / "o"))
