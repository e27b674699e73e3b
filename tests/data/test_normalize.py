"""Percentile / VCD normalisation: closed forms, inverses, numpy and torch agreement."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unifmir.data.normalize import (
    NormStats,
    denormalize,
    normalize_for_task,
    percentile_normalize,
    vcd_denormalize,
    vcd_normalize,
)
from unifmir.tasks import TASKS


@pytest.fixture
def img():
    return np.random.default_rng(0).gamma(2.0, 50.0, (4, 32, 40)).astype(np.float32)


def test_percentile_closed_form(img):
    y, st = percentile_normalize(img, 2.0, 99.8)
    lo, hi = np.percentile(img, [2.0, 99.8])
    assert st.lo == pytest.approx(lo) and st.hi == pytest.approx(hi)
    np.testing.assert_allclose(y, (img - lo) / (hi - lo + 1e-6), rtol=1e-5, atol=1e-6)
    assert y.dtype == np.float32
    np.testing.assert_allclose(denormalize(y, st), img, rtol=1e-5, atol=1e-3)


def test_per_axis_and_clip(img):
    y, st = percentile_normalize(img, 1, 99, axes=(1, 2), clip=True)
    assert np.asarray(st.lo).shape == (4, 1, 1)
    assert y.min() >= 0 and y.max() <= 1
    for z in range(4):
        lo, hi = np.percentile(img[z], [1, 99])
        assert st.lo[z, 0, 0] == pytest.approx(lo)
    y, st = percentile_normalize(img, 1, 99, axes=(-2, -1))
    np.testing.assert_allclose(denormalize(y, st), img, rtol=1e-5, atol=1e-3)


def test_torch_matches_numpy(img):
    t = torch.from_numpy(img)
    yt, st = percentile_normalize(t, 2.0, 99.8)
    yn, _ = percentile_normalize(img, 2.0, 99.8)
    assert isinstance(yt, torch.Tensor)
    np.testing.assert_allclose(yt.numpy(), yn, rtol=1e-4, atol=1e-5)
    back = denormalize(yt, st)
    assert isinstance(back, torch.Tensor)
    np.testing.assert_allclose(back.numpy(), img, rtol=1e-4, atol=1e-2)
    yt2, st2 = percentile_normalize(t, 2.0, 99.8, axes=(1, 2))
    yn2, _ = percentile_normalize(img, 2.0, 99.8, axes=(1, 2))
    np.testing.assert_allclose(yt2.numpy(), yn2, rtol=1e-4, atol=1e-5)
    yi, _ = percentile_normalize(torch.arange(10), 0, 100)  # integer tensor -> float
    assert yi.dtype == torch.float32 and float(yi.max()) == pytest.approx(1.0, abs=1e-5)


def test_constant_image_is_finite():
    y, st = percentile_normalize(np.full((8, 8), 7.0))
    assert np.isfinite(y).all() and np.all(y == 0)
    y, st = vcd_normalize(np.zeros((8, 8)))
    assert np.isfinite(y).all()


def test_invalid_arguments():
    with pytest.raises(ValueError, match="pmin < pmax"):
        percentile_normalize(np.ones((3, 3)), 50, 10)
    with pytest.raises(ValueError, match="eps"):
        percentile_normalize(np.ones((3, 3)), eps=0)
    with pytest.raises(ValueError, match="unknown normalisation"):
        denormalize(np.ones(3), NormStats(0, 1, kind="nope"))


def test_vcd_closed_form_and_inverse(img):
    y, st = vcd_normalize(img)
    np.testing.assert_allclose(y, img / (1.1 * img.max() / 2) - 1, rtol=1e-6)
    assert y.max() == pytest.approx(2 / 1.1 - 1, rel=1e-6)
    np.testing.assert_allclose(vcd_denormalize(y, st), img, rtol=1e-5)
    np.testing.assert_allclose(denormalize(y, st), img, rtol=1e-5)
    np.testing.assert_allclose(vcd_denormalize(y, st.hi), img, rtol=1e-5)
    yt, stt = vcd_normalize(torch.from_numpy(img))
    np.testing.assert_allclose(yt.numpy(), y, rtol=1e-6)


def test_normalize_for_task_reads_registry(img):
    for name, spec in TASKS.items():
        y, st = normalize_for_task(img, name)
        if spec.normalization == "vcd":
            assert st.kind == "vcd"
        else:
            assert (st.pmin, st.pmax) == spec.percentiles
    # no task scales by min/max: one hot pixel would set the whole image's scale
    assert all(s.percentiles[0] > 0 and s.percentiles[1] < 100 for s in TASKS.values() if s.normalization != "vcd")
    hot = np.array(img, dtype=np.float32, copy=True)
    hot.reshape(-1)[::1999] = 1e6  # 0.05 % hot pixels, as on a real camera
    y_hot, _ = normalize_for_task(hot, "sr")
    y, st = normalize_for_task(img, "sr")
    mask = hot == img
    assert float(np.abs(y_hot - y)[mask].max()) < 0.1
    minmax, _ = percentile_normalize(hot, 0.0, 100.0)  # what min/max scaling would do: all signal ~0
    assert float(minmax[mask].max()) < 1e-2
    assert st.as_dict()["kind"] == "percentile"
