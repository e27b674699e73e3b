"""Classical baselines: shapes from the registry and exact values where closed forms exist."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from unifmir.tasks import TASKS, get_task
from unifmir.training.baselines import BASELINES, GAUSSIAN_SIGMA, run_baselines


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


def test_every_task_has_its_registry_baseline() -> None:
    for spec in TASKS.values():
        assert spec.classical_baseline in BASELINES, spec.name


def test_sr_bicubic_shape_and_values() -> None:
    spec = get_task("sr")
    img = _rng().random((12, 10), dtype=np.float32)
    out = run_baselines(img, "sr")
    (name, up), = out.items()
    assert "bicubic" in name
    assert up.shape == (12 * spec.scale, 10 * spec.scale)
    ref = F.interpolate(torch.from_numpy(img)[None, None], scale_factor=spec.scale, mode="bicubic",
                        align_corners=False)[0, 0].numpy()
    np.testing.assert_allclose(up, ref, atol=1e-6)
    # a constant image stays constant
    const = run_baselines(np.full((8, 8), 3.0, np.float32), "sr")["bicubic"]
    np.testing.assert_allclose(const, 3.0, atol=1e-5)
    # explicit target shape wins
    assert run_baselines(img, "sr", (25, 21))["bicubic"].shape == (25, 21)


def test_denoise_noisy_input_and_gaussian() -> None:
    stack = _rng().random((7, 16, 18), dtype=np.float32)
    out = run_baselines(stack, "denoise", stack.shape)
    assert len(out) == 2
    noisy = out["noisy input"]
    np.testing.assert_array_equal(noisy, stack)
    (gname, smooth), = [(k, v) for k, v in out.items() if k.startswith("gaussian")]
    assert smooth.shape == stack.shape
    for z in range(stack.shape[0]):  # per-slice 2D filter, no mixing across z
        np.testing.assert_allclose(
            smooth[z], ndimage.gaussian_filter(stack[z], GAUSSIAN_SIGMA, mode="reflect"), atol=1e-6)
    assert smooth.std() < stack.std()  # it smooths


def test_isotropic_linear_interpolation() -> None:
    spec = get_task("isotropic")
    f = spec.z_factor
    z = np.arange(5, dtype=np.float32)
    stack = np.broadcast_to(z[:, None, None] * 2.0 + 1.0, (5, 6, 7)).copy()
    out = run_baselines(stack, "isotropic")["linear z interpolation"]
    assert out.shape == (5 * f, 6, 7)
    # input slices land on every f-th output slice, linear in between, last one repeated
    pos = np.minimum(np.arange(5 * f) / f, 4)
    np.testing.assert_allclose(out[:, 3, 3], pos * 2.0 + 1.0, atol=1e-5)
    # the data module's convention: ceil(Z / f) input slices for a target of depth Z
    assert run_baselines(stack, "isotropic", (5 * f - 1, 6, 7))["linear z interpolation"].shape == (5 * f - 1, 6, 7)
    # an input already at the target depth is returned unchanged
    same = run_baselines(stack, "isotropic", stack.shape)["linear z interpolation"]
    np.testing.assert_array_equal(same, stack)
    # a target depth that does not fit z_factor decides the factor
    assert run_baselines(stack, "isotropic", (10, 6, 7))["linear z interpolation"].shape == (10, 6, 7)


def test_projection_mip_equals_numpy_max() -> None:
    spec = get_task("projection")
    stack = _rng().random((spec.in_depth, 9, 11), dtype=np.float32)
    (mip,) = run_baselines(stack, "projection", (9, 11)).values()
    np.testing.assert_array_equal(mip, stack.max(axis=0))


def test_volumetric_back_projection_shape_and_constant() -> None:
    spec = get_task("volumetric")
    n = spec.lenslets
    raw = _rng().random((4 * n, 5 * n), dtype=np.float32)
    (vol,) = run_baselines(raw, "volumetric").values()
    assert vol.shape == (spec.out_depth, 4 * n, 5 * n)
    assert vol.dtype == np.float32 and np.isfinite(vol).all()
    # a uniform light field back-projects to a uniform volume
    (flat,) = run_baselines(np.full((3 * n, 3 * n), 2.0, np.float32), "volumetric").values()
    np.testing.assert_allclose(flat, 2.0, atol=1e-5)
    # the central slice (zero shear) is the mean over views, upsampled
    views = F.pixel_unshuffle(torch.from_numpy(raw)[None, None], n)[0]
    centre = views.mean(0)
    ref = F.interpolate(centre[None, None], size=raw.shape, mode="bilinear",
                        align_corners=False)[0, 0].numpy()
    np.testing.assert_allclose(vol[spec.out_depth // 2], ref, atol=1e-5)


def test_volumetric_back_projection_refocuses_a_plane() -> None:
    """A single bright plane imaged by the forward model is brightest at its own depth."""
    from unifmir.data.forward import lightfield_forward

    spec = get_task("volumetric")
    n = spec.lenslets
    rng = np.random.default_rng(0)
    vol = np.zeros((spec.out_depth, 8 * n, 8 * n), np.float32)
    plane = 10
    vol[plane] = (rng.random((8 * n, 8 * n)) > 0.97).astype(np.float32)
    lf, _, _ = lightfield_forward(vol, rng, noise=False, aperture="square")
    (bp,) = run_baselines(lf, "volumetric").values()
    # sharpness (variance) of each refocused slice peaks at the true plane (within the light
    # field's depth resolution: 0.2 raw pixels of parallax per slice and unit view offset)
    assert abs(int(np.argmax(bp.var(axis=(1, 2)))) - plane) <= 3


def test_unknown_task_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown task"):
        run_baselines(np.zeros((4, 4)), "nope")
