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


def _record(rid: str, rdf: Path, **kw: object) -> dict:
    from unifmir.zoo.fetch import sha256sum

    base = {"id": rid, "task": "sr", "params": 10, "size_mb": 1.0, "psnr": 30.0, "ssim": 0.9,
            "baseline": "bicubic", "baseline_psnr": 25.0, "baseline_ssim": 0.5, "n_test": 2,
            "gates": {"a": True}, "steps": 3, "consumers": ["bioimageio.core"], "zip": "/elsewhere/x.zip",
            "checkpoint": "/elsewhere/best.pt", "recipe": {"finetune": {"steps": 3, "batch_size": 2, "patch_size": 8}},
            "rdf_sha256": sha256sum(rdf)}
    return {**base, **kw}


def test_committed_records_keep_the_rows_a_fresh_machine_did_not_rebuild(tmp_path: Path) -> None:
    from unifmir.zoo.build import SUITE_RECORDS, suite_failures, suite_records, write_suite_readme, write_suite_records

    out = tmp_path / "zoo"
    for rid in ("kept", "rebuilt-elsewhere"):
        (out / rid).mkdir(parents=True)
        (out / rid / "rdf.yaml").write_text(f"name: {rid}\n")
    recs = [_record("kept", out / "kept" / "rdf.yaml"), _record("rebuilt-elsewhere", out / "rebuilt-elsewhere" / "rdf.yaml")]
    path = write_suite_records(recs, out, [{"id": "broken", "gates": ["input-sensitivity"], "detail": "x"}])
    saved = json.loads(path.read_text())
    assert path.name == SUITE_RECORDS and set(saved["bundles"]) == {"kept", "rebuilt-elsewhere"}
    assert not {"zip", "checkpoint", "zip_sha256"} & set(saved["bundles"]["kept"])  # no machine-local paths
    assert [f["id"] for f in suite_failures(tmp_path / "empty-work", out)] == ["broken"]
    (out / "rebuilt-elsewhere" / "rdf.yaml").write_text("name: another build\n")
    found = suite_records(tmp_path / "empty-work", out)  # a fresh machine: nothing in the work folder
    assert [r["id"] for r in found] == ["kept"]
    table = write_suite_readme(found, out).read_text()
    assert "[kept](kept/)" in table and "3 x 2 x 8² = 0 M" in table


def test_a_gate_that_did_not_run_is_not_counted_as_passed(tmp_path: Path) -> None:
    from unifmir.zoo.build import write_suite_readme

    out = tmp_path / "zoo"
    (out / "m").mkdir(parents=True)
    (out / "m" / "rdf.yaml").write_text("name: m\n")
    rec = _record("m", out / "m" / "rdf.yaml", gates={"a": True, "libtorch-2.0.0": True},
                  gates_not_run=["libtorch-2.0.0"])
    table = write_suite_readme([rec], out).read_text()
    assert "all pass (1); not run: libtorch-2.0.0" in table and "all pass (2)" not in table


def test_transfer_column_compares_with_the_scratch_arm(tmp_path: Path) -> None:
    from unifmir.zoo.build import write_suite_readme

    out = tmp_path / "zoo"
    for rid in ("b", "c", "plain"):
        (out / rid).mkdir(parents=True)
        (out / rid / "rdf.yaml").write_text(f"name: {rid}\n")
    recs = [_record("b", out / "b" / "rdf.yaml", scratch={"psnr": 29.0, "ssim": 0.85, "steps": 3, "n_test": 2}),
            _record("c", out / "c" / "rdf.yaml", scratch={"psnr": 31.0, "ssim": 0.80, "steps": 3, "n_test": 2}),
            _record("plain", out / "plain" / "rdf.yaml")]
    rows = {line.split("]")[0][3:]: line for line in write_suite_readme(recs, out).read_text().splitlines()
            if line.startswith("| [")}
    assert "29.00 / 0.850 (pretrained wins: +1.00 dB, +0.050)" in rows["b"]
    assert "**pretrained does not win**: -1.00 dB, +0.100" in rows["c"]
    assert "| - |" in rows["plain"]


def test_a_failed_recipe_shows_its_notes(tmp_path: Path) -> None:
    from unifmir.zoo.build import write_suite_readme
    from unifmir.zoo.recipe import load_recipes

    notes = " ".join(load_recipes()["unifmir-volumetric"].notes.split())
    assert notes
    table = write_suite_readme([], tmp_path, [{"id": "unifmir-volumetric", "gates": ["input-sensitivity"]}]).read_text()
    assert f"- **unifmir-volumetric**: gate(s) input-sensitivity. {notes}" in table


def test_real_image_column_counts_wins_and_flags_a_rebuilt_bundle(tmp_path: Path) -> None:
    from unifmir.zoo.build import _real_image_wins

    def run(date: str, sha: str, passes: list[bool]) -> dict:
        rows = [{"method": "m", "kind": "bundle", "vs_best_baseline": {"passes": p}} for p in passes]
        return {"meta": {"date": date, "bundles": [{"id": "m", "task": "sr", "rdf_sha256": sha}]},
                "tasks": {"sr": {"conditions": [{"rows": [r]} for r in rows]}}}

    (tmp_path / "real_images_results.json").write_text(json.dumps(run("2026-01-01", "old", [False, False])))
    (tmp_path / "real_images_results_sr.json").write_text(json.dumps(run("2026-02-01", "new", [True, False, True])))
    assert _real_image_wins(tmp_path) == {"m": "2 / 3"}  # the most recent run of the task
    assert _real_image_wins(tmp_path, {"m": "new"}) == {"m": "2 / 3"}
    assert "stale" in _real_image_wins(tmp_path, {"m": "newer"})["m"]
