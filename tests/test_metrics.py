"""Metrics: closed forms, protocol invariances and an independent numpy implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from unifmir.data.io import ImageError
from unifmir.metrics import PROTOCOLS, care_normalize, evaluate_pair, minmax_255, nrmse, psnr, ssim


# ---- independent reference implementation (numpy/scipy only) ---------------------------------
def _gauss1d(k=11, s=1.5):
    x = np.arange(k) - (k - 1) / 2
    g = np.exp(-(x**2) / (2 * s * s))
    return g / g.sum()


def np_ssim(a, b, L, k=11, s=1.5, k1=0.01, k2=0.03):
    """Wang et al. 2004 SSIM, Gaussian window, population statistics; borders by mirror
    reflection (torch/numpy 'reflect') and the map averaged over every pixel."""
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    g = _gauss1d(k, s)

    def filt(x):
        y = ndimage.correlate1d(x, g, axis=0, mode="mirror")
        return ndimage.correlate1d(y, g, axis=1, mode="mirror")

    mu_a, mu_b = filt(a), filt(b)
    saa = filt(a * a) - mu_a**2
    sbb = filt(b * b) - mu_b**2
    sab = filt(a * b) - mu_a * mu_b
    c1, c2 = (k1 * L) ** 2, (k2 * L) ** 2
    m = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2))
    return float(m.mean())


def np_psnr(a, b, L):
    return 10 * math.log10(L * L / np.mean((a.astype(np.float64) - b) ** 2))


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    gt = ndimage.gaussian_filter(rng.random((48, 56)), 2) * 100 + 10
    pred = gt + rng.normal(0, 2.0, gt.shape)
    return pred, gt


def test_identical_images():
    x = np.random.default_rng(1).random((32, 32))
    assert psnr(x, x, 1.0) == math.inf
    assert ssim(x, x, 1.0) == pytest.approx(1.0, abs=1e-12)
    assert nrmse(x, x, 1.0) == 0.0
    for proto in PROTOCOLS:
        r = evaluate_pair(x, x, proto)
        # care refits the prediction: equal up to float64 round-off (PSNR > 250 dB)
        assert r["psnr"] > 250 and r["ssim"] == pytest.approx(1.0) and r["nrmse"] == pytest.approx(0.0)
    assert evaluate_pair(x, x, "unifmir")["psnr"] == math.inf


def test_known_mse_closed_form():
    x = np.random.default_rng(2).random((40, 40))
    for c in (0.01, 0.1, 0.5):
        assert psnr(x + c, x, 1.0) == pytest.approx(20 * math.log10(1 / c), abs=1e-9)
        assert psnr(x + c, x, 255.0) == pytest.approx(20 * math.log10(255 / c), abs=1e-9)
        assert nrmse(x + c, x, 2.0) == pytest.approx(c / 2.0, abs=1e-12)


def test_agrees_with_numpy_reference(pair):
    pred, gt = pair
    for L in (1.0, 100.0, 255.0):
        assert ssim(pred, gt, L) == pytest.approx(np_ssim(pred, gt, L), abs=1e-4)
        assert psnr(pred, gt, L) == pytest.approx(np_psnr(pred, gt, L), abs=1e-4)
    assert nrmse(pred, gt, 50.0) == pytest.approx(np.sqrt(np.mean((pred - gt) ** 2)) / 50, abs=1e-8)


def test_unifmir_protocol_matches_numpy(pair):
    pred, gt = pair
    r = evaluate_pair(pred, gt, "unifmir")
    p = (pred - pred.min()) / np.ptp(pred) * 255
    g = (gt - gt.min()) / np.ptp(gt) * 255
    assert r["data_range"] == 255.0
    assert r["psnr"] == pytest.approx(np_psnr(p, g, 255), abs=1e-4)
    assert r["ssim"] == pytest.approx(np_ssim(p, g, 255), abs=1e-4)
    assert r["nrmse"] == pytest.approx(np.sqrt(np.mean((p - g) ** 2)) / 255, abs=1e-6)


def test_unifmir_protocol_is_per_slice():
    rng = np.random.default_rng(3)
    gt = ndimage.gaussian_filter(rng.random((3, 32, 32)), (0, 2, 2))
    gt[1] *= 10  # slices with different ranges: per-slice min-max removes it
    pred = gt + rng.normal(0, 0.01, gt.shape)
    r = evaluate_pair(pred, gt, "unifmir", axes="ZYX")
    per = [evaluate_pair(pred[z], gt[z], "unifmir") for z in range(3)]
    for k in ("psnr", "ssim", "nrmse"):
        assert r[k] == pytest.approx(np.mean([q[k] for q in per]), abs=1e-9)
    ref_psnr = np.mean([np_psnr(minmax_255(pred[z]), minmax_255(gt[z]), 255) for z in range(3)])
    assert r["psnr"] == pytest.approx(ref_psnr, abs=1e-4)


def test_care_protocol_matches_numpy(pair):
    pred, gt = pair
    r = evaluate_pair(pred, gt, "care")
    lo, hi = np.percentile(gt, [0.1, 99.9])
    g = (gt - lo) / (hi - lo)
    A = np.stack([pred.ravel(), np.ones(pred.size)], 1)
    coef, *_ = np.linalg.lstsq(A, g.ravel(), rcond=None)
    p = (A @ coef).reshape(gt.shape)
    assert r["data_range"] == 1.0
    assert r["psnr"] == pytest.approx(np_psnr(p, g, 1.0), abs=1e-4)
    assert r["ssim"] == pytest.approx(np_ssim(p, g, 1.0), abs=1e-4)
    assert r["nrmse"] == pytest.approx(np.sqrt(np.mean((p - g) ** 2)), abs=1e-6)


@pytest.mark.parametrize("a, b", [(3.0, 7.0), (0.01, -5.0), (-2.0, 1.0), (1e4, 1e6)])
def test_care_affine_invariance(pair, a, b):
    pred, gt = pair
    base = evaluate_pair(pred, gt, "care")
    r = evaluate_pair(a * pred + b, gt, "care")
    for k in ("psnr", "ssim", "nrmse"):
        assert r[k] == pytest.approx(base[k], rel=1e-6, abs=1e-9)
    fitted, gn = care_normalize(pred, gt)
    assert np.mean((fitted - gn) ** 2) <= np.mean((pred / pred.max() - gn) ** 2)


def test_care_3d_whole_volume_psnr_per_slice_ssim():
    rng = np.random.default_rng(4)
    gt = ndimage.gaussian_filter(rng.random((4, 24, 24)), 1.5)
    pred = gt + rng.normal(0, 0.02, gt.shape)
    r = evaluate_pair(pred, gt, "care", axes="ZYX")
    p, g = care_normalize(pred, gt)
    assert r["psnr"] == pytest.approx(np_psnr(p, g, 1.0), abs=1e-4)
    assert r["ssim"] == pytest.approx(np.mean([np_ssim(p[z], g[z], 1.0) for z in range(4)]), abs=1e-4)


def test_torch_inputs_accepted(pair):
    import torch

    pred, gt = pair
    r1 = evaluate_pair(torch.from_numpy(pred).float(), torch.from_numpy(gt).float(), "unifmir")
    r2 = evaluate_pair(pred.astype(np.float32), gt.astype(np.float32), "unifmir")
    assert r1 == pytest.approx(r2)


def test_errors():
    x = np.zeros((16, 16))
    with pytest.raises(ImageError, match="differs from ground truth shape"):
        evaluate_pair(x, np.zeros((16, 17)), "care")
    with pytest.raises(ValueError, match="unknown protocol"):
        evaluate_pair(x, x, "max")
    with pytest.raises(ImageError, match="NaN"):
        evaluate_pair(np.full((16, 16), np.nan), x, "unifmir")
    with pytest.raises(ImageError, match="at least 11x11"):
        ssim(np.zeros((8, 8)), np.zeros((8, 8)), 1.0)
    with pytest.raises(ImageError, match="do not match"):
        evaluate_pair(x, x, "unifmir", axes="ZYX")


def test_protocols_are_documented():
    assert set(PROTOCOLS) == {"care", "unifmir"}
    assert PROTOCOLS["care"].gt_percentiles == (0.1, 99.9) and PROTOCOLS["care"].data_range == 1.0
    assert PROTOCOLS["unifmir"].data_range == 255.0
    for p in PROTOCOLS.values():
        assert (p.ssim_kernel, p.ssim_sigma, p.k1, p.k2) == (11, 1.5, 0.01, 0.03)
        assert "data_range" in p.description
