"""Offline parts of benchmarks/real_images.py (no network: no wheel download, no bundle, no N2V)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import real_images_baselines as rb  # noqa: E402
import real_images_bundles as rbun  # noqa: E402
import real_images_physics as rp  # noqa: E402
import real_images_report as rr  # noqa: E402


def _fake_images(rng):
    return {
        "hybiss": rng.uniform(1000, 2500, (512, 512)).astype(np.float32),
        "telomeres": rng.uniform(90, 180, (200, 133, 162)).astype(np.float32),
        "cells": rng.uniform(1, 254, (30, 511, 511)).astype(np.float32),
        "nuclei3d": rng.uniform(104, 375, (31, 61, 57)).astype(np.float32),
    }


@pytest.mark.parametrize("task", list(rp.CONDITIONS))
def test_quick_crops_degrade_to_valid_shapes_reproducibly(task):
    crops = rp.make_crops(task, _fake_images(np.random.default_rng(0)), quick=True)
    assert crops and len({c.image for c in crops}) == len(crops)  # one crop per image
    cond = rp.CONDITIONS[task][0]
    assert cond.training
    lq, target = rp.degrade(crops[0], cond)
    lq2, _ = rp.degrade(crops[0], cond)
    np.testing.assert_array_equal(lq, lq2)  # seeded by names
    obj = crops[0].obj
    expect = {
        "sr": ((obj.shape[0] // 2, obj.shape[1] // 2), obj.shape),
        "denoise": (obj.shape, obj.shape),
        "isotropic": ((-(-obj.shape[0] // 4),) + obj.shape[1:], obj.shape),
        "projection": ((50,) + obj.shape, obj.shape),
        "volumetric": (obj.shape[1:], obj.shape),
    }[task]
    assert (lq.shape, target.shape) == expect
    for name, (pred, _) in rb.run_baselines(task, lq, target).items():
        assert pred.shape == target.shape, name


def test_hot_pixels_fraction_and_level():
    rng = np.random.default_rng(1)
    img = np.zeros((100, 100), np.float32)
    hot = rp.add_hot_pixels(img, rng, photons=10.0)
    on = hot[hot > 0]
    assert on.size == 5  # 0.05 % of 10^4
    assert on.min() >= 50 and on.max() <= 500


def test_best_sigma_baseline_is_never_worse_than_sigma_1_in_psnr():
    from unifmir.metrics import evaluate_pair

    rng = np.random.default_rng(2)
    clean = np.zeros((6, 64, 64), np.float32)
    clean[:, 20:40, 20:40] = 1.0
    noisy = clean + rng.normal(0, 0.8, clean.shape).astype(np.float32)
    out = rb.run_baselines("denoise", noisy, clean)
    p1 = evaluate_pair(out["Gaussian sigma 1"][0], clean, "care")["psnr"]
    pb = evaluate_pair(out["Gaussian best sigma (oracle)"][0], clean, "care")["psnr"]
    assert pb >= p1 and out["Gaussian best sigma (oracle)"][1]["sigma"] > 1.0


def test_bundle_task_from_rdf_sources():
    assert rbun.bundle_task({"config": {"unifmir": {"task": "isotropic"}}}) == "isotropic"
    assert rbun.bundle_task({"weights": {"pytorch_state_dict": {"architecture": {"kwargs": {"task": "sr"}}}}}) == "sr"
    kw = {"network_kwargs": {"task": "denoise"}}
    assert rbun.bundle_task({"weights": {"pytorch_state_dict": {"architecture": {"kwargs": kw}}}}) == "denoise"
    with pytest.raises(ValueError, match="cannot tell"):
        rbun.bundle_task({"name": "x", "tags": []})


def test_verdict_needs_margin_in_psnr_and_higher_ssim():
    cond = rp.Condition("sr", "c", {}, training=True)

    def rec(method, kind, psnr, ssim, image="hybiss", crop="a"):
        return dict(condition="c", method=method, kind=kind, image=image, crop_id=crop, psnr=psnr, ssim=ssim)

    recs = [rec("linear interpolation", "baseline", 25.0, 0.50), rec("cubic interpolation", "baseline", 24.0, 0.60),
            rec("good", "bundle", 26.5, 0.61), rec("ssim-short", "bundle", 26.5, 0.55),
            rec("psnr-short", "bundle", 25.9, 0.70)]
    s = rr.summarise("sr", [cond], recs, ["hybiss"])
    rows = {r["method"]: r for r in s["conditions"][0]["rows"]}
    assert rows["linear interpolation"]["best_baseline"] and not rows["cubic interpolation"]["best_baseline"]
    assert rows["good"]["vs_best_baseline"]["passes"]
    assert not rows["ssim-short"]["vs_best_baseline"]["passes"]  # SSIM below cubic's 0.60
    assert not rows["psnr-short"]["vs_best_baseline"]["passes"]  # 0.9 dB < 1 dB
    md = rr.markdown(s, ["hybiss"], {})
    assert md.count("\n") == 6 and "**\\***" in md
