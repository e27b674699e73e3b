"""Forward models: registry shapes, determinism and measured physics (PSF, photons, anisotropy)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from unifmir.data import forward as F
from unifmir.data.datasets import lightfield_to_views
from unifmir.tasks import TASKS

SMALL = {"sr": 32, "denoise": 32, "isotropic": 24, "projection": 32, "volumetric": 44}


def _sigmas(img: np.ndarray) -> list[float]:
    """Per-axis standard deviation of an intensity distribution (second moments)."""
    w = img / img.sum()
    grids = np.meshgrid(*[np.arange(s) for s in img.shape], indexing="ij")
    out = []
    for g in grids:
        c = (g * w).sum()
        out.append(float(np.sqrt((((g - c) ** 2) * w).sum())))
    return out


@pytest.mark.parametrize("task", list(TASKS))
def test_shapes_follow_registry(task):
    spec = TASKS[task]
    size = SMALL[task]
    x, y = F.make_pair(task, np.random.default_rng(0), size=size)
    assert x.dtype == np.float32 and y.dtype == np.float32
    assert x.ndim == len(spec.input_axes) and y.ndim == len(spec.output_axes)
    assert np.isfinite(x).all() and np.isfinite(y).all()
    if task == "sr":
        assert x.shape == (size, size) and y.shape == (size * spec.scale,) * 2
    elif task == "denoise":
        assert x.shape == y.shape and x.shape[1:] == (size, size)
    elif task == "isotropic":
        assert y.shape == (size, size, size)
        assert x.shape == (math.ceil(size / spec.z_factor), size, size)
    elif task == "projection":
        assert x.shape == (spec.in_depth, size, size) and y.shape == (size, size)
    else:
        assert x.shape == (size, size) and size % spec.lenslets == 0
        assert y.shape == (spec.out_depth, size, size)
        assert lightfield_to_views(x, spec.lenslets).shape == (spec.net_in_channels, size // 11, size // 11)
    from unifmir.data.io import check_pair

    check_pair(x, y, task)


@pytest.mark.parametrize(
    "task, structure",
    [(t, s) for t, ss in F.STRUCTURES.items() for s in ss],
)
def test_every_structure_is_deterministic(task, structure):
    size = SMALL[task]
    a = F.make_pair(task, np.random.default_rng(7), size=size, structure=structure)
    b = F.make_pair(task, np.random.default_rng(7), size=size, structure=structure)
    c = F.make_pair(task, np.random.default_rng(8), size=size, structure=structure)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert a[1].max() > 0


def test_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown structure 'nuclei' for task 'sr'"):
        F.make_pair("sr", rng, structure="nuclei")
    with pytest.raises(ValueError, match="multiple of 11"):
        F.make_pair("volumetric", rng, size=50)
    with pytest.raises(ValueError, match="size must be"):
        F.make_pair("sr", rng, size=3)
    with pytest.raises(ValueError, match="unknown task"):
        F.make_pair("deblur", rng)
    with pytest.raises(TypeError):
        F.make_pair("sr", rng, size=16, wavelenght=0.5)
    with pytest.raises(TypeError, match="Generator"):
        F.make_pair("sr", 0, size=16)


def test_sr_psf_width_on_point_source():
    obj = np.zeros((96, 96), np.float32)
    obj[48, 48] = 1.0
    lq, hq, ex = F.sr_forward(obj, np.random.default_rng(0), noise=False, background=0.0)
    sigma = F.psf_sigma_lateral(1.3, 0.525, 0.0313)  # fine pixels
    assert sigma == pytest.approx(0.21 * 0.525 / 1.3 / 0.0313)
    # target: PSF narrowed 2x (SIM-like); input: PSF + 2x2 camera-pixel integration
    assert _sigmas(hq) == pytest.approx([sigma / 2] * 2, rel=0.02)
    assert _sigmas(ex) == pytest.approx([math.sqrt(sigma**2 + 3 / 12) / 2] * 2, rel=0.03)
    assert ex.max() == pytest.approx(100.0)  # default peak photons


def test_airy_fwhm():
    k = F.airy_kernel(1.3, 0.525, 0.0313)
    c = k.shape[0] // 2
    prof = k[c, c:] / k[c, c]
    i = int(np.argmax(prof < 0.5))
    r = i - 1 + (prof[i - 1] - 0.5) / (prof[i - 1] - prof[i])
    assert 2 * r == pytest.approx(0.51 * 0.525 / 1.3 / 0.0313, rel=0.05)
    x, y = F.make_pair("sr", np.random.default_rng(0), size=16, psf="airy")
    assert x.shape == (16, 16)


@pytest.mark.parametrize("task", ["sr", "denoise", "projection"])
def test_poisson_gaussian_photon_statistics(task):
    p = F.synthesize(task, np.random.default_rng(3), size=SMALL[task] * 2)
    rn = p.params["read_noise"]
    assert p.expected.max() == pytest.approx(p.params["photons"] + p.params["background"], rel=1e-5)
    assert p.expected.min() >= p.params["background"] - 1e-4
    resid = p.input - p.expected
    # mean zero and variance = expected (shot noise) + read_noise^2
    assert abs(resid.mean()) < 0.05 * np.sqrt(p.expected.mean() + rn**2)
    assert np.mean(resid**2 / (p.expected + rn**2)) == pytest.approx(1.0, abs=0.05)


def test_bacteria_denoise_is_low_photon():
    p = F.synthesize("denoise", np.random.default_rng(1), size=64, structure="ecoli")
    assert p.params["photons"] == 12.0 and p.expected.max() == pytest.approx(12.0 + p.params["background"])
    assert p.input.shape[0] == 8 and p.input_pixel_size["X"] == pytest.approx(0.08)
    # the clean target has far higher SNR than the input
    assert np.corrcoef(p.input.ravel(), p.target.ravel())[0, 1] < 0.9


def test_isotropic_anisotropy_and_subsampling():
    vol = np.zeros((41, 41, 41), np.float32)
    vol[20, 20, 20] = 1.0
    lq, hq, ex = F.isotropic_forward(vol, np.random.default_rng(0), z_factor=1, noise=False, background=0.0)
    sz, sy, sx = _sigmas(ex)
    want_ax = F.psf_sigma_axial(0.8, 0.52, 0.15)
    want_lat = F.psf_sigma_lateral(0.8, 0.52, 0.15)
    assert sz == pytest.approx(want_ax, rel=0.03) and sy == pytest.approx(want_lat, rel=0.03)
    assert sz / sy == pytest.approx(want_ax / want_lat, rel=0.05) and sz / sy > 4
    assert _sigmas(hq) == pytest.approx([want_lat] * 3, rel=0.03)  # isotropic target
    lq4, hq4, _ = F.isotropic_forward(vol, np.random.default_rng(0), z_factor=4, noise=False)
    assert lq4.shape == (11, 41, 41) and hq4.shape == (41, 41, 41)
    # input slice k is target-grid slice 4k of the anisotropically blurred volume
    np.testing.assert_allclose(lq4, ex[::4] / ex.max() * 50 + 5, rtol=1e-4, atol=1e-4)


def test_upsample_z_inverts_subsampling_of_linear_ramps():
    z = np.arange(13, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    up = F.upsample_z(z[::4], 4, depth=13)
    np.testing.assert_allclose(up, z, atol=1e-5)
    np.testing.assert_allclose(F.upsample_z(z[::4], 4, depth=15)[-2:], 12.0)  # clamped


def test_projection_surface_is_in_focus_at_height_map():
    from unifmir.data import synthetic as S

    rng = np.random.default_rng(0)
    surf = S.cell_junctions((48, 48), rng, cell_size=10)
    h = S.height_map((48, 48), rng, 50)
    lq, hq, ex = F.projection_forward(surf, h, rng, clutter=0.0, noise=False, background=0.0)
    assert lq.shape == (50, 48, 48)
    on = hq > 0.3 * hq.max()
    zmax = ex.argmax(axis=0)
    assert np.mean(np.abs(zmax[on] - h[on]) <= 1.0) > 0.95
    # with clutter, a maximum projection is fooled somewhere while the target is unchanged
    lq2, hq2, ex2 = F.projection_forward(surf, h, np.random.default_rng(1), clutter=1.0, noise=False)
    np.testing.assert_allclose(hq2, hq)
    assert np.mean(np.abs(ex2.argmax(axis=0) - h) > 4) > 0.01


def test_lightfield_parallax():
    n = 11
    vol = np.zeros((61, 66, 66), np.float32)
    vol[30, 33, 33] = 1.0  # in the focal plane: every view inside the pupil sees the same thing
    _, _, ex = F.lightfield_forward(vol, np.random.default_rng(0), noise=False, background=0.0, lateral_sigma=0)
    views = lightfield_to_views(ex, n)
    du = np.arange(n) - 5
    pupil = ((du[:, None] ** 2 + du[None, :] ** 2) <= 30.25).ravel()
    assert np.allclose(views[pupil], views[pupil][0]) and np.all(views[~pupil] == 0)
    # out of focus by dz slices: view (u, c) is displaced by disparity * dz * (u - c) pixels
    vol[:] = 0
    vol[50, 33, 33] = 1.0
    _, _, ex = F.lightfield_forward(
        vol, np.random.default_rng(0), noise=False, background=0.0, lateral_sigma=0, disparity=0.22,
        aperture="square",
    )
    v = lightfield_to_views(ex, n).reshape(n, n, 6, 6)
    pos = [np.argmax(v[u, 5].max(axis=1)) for u in range(n)]
    assert pos[0] - pos[-1] >= 3  # extreme views ~ 2 * 5 * 0.22 * 20 = 44 px = 4 lenslets apart
    assert all(a >= b for a, b in zip(pos, pos[1:]))


def test_pixel_sizes_and_params_recorded():
    p = F.synthesize("sr", np.random.default_rng(0), size=16, photons=42.0)
    assert p.input_pixel_size["X"] == pytest.approx(2 * p.target_pixel_size["X"])
    assert p.params["photons"] == 42.0 and p.params["structure"] in F.STRUCTURES["sr"]
    p = F.synthesize("isotropic", np.random.default_rng(0), size=16, z_factor=2)
    assert p.input_pixel_size["Z"] == pytest.approx(2 * p.target_pixel_size["Z"])
    assert p.input.shape[0] == 8


def test_denoise_psf_given_as_voxel_sigmas_equals_the_one_derived_from_the_optics() -> None:
    obj = np.random.default_rng(0).uniform(0, 1, (8, 24, 24)).astype(np.float32)
    na, wl, px = 1.1, 0.52, (1.0, 0.2)
    sig = (F.psf_sigma_axial(na, wl, px[0], 1.33), F.psf_sigma_lateral(na, wl, px[1]))
    a = F.denoise_forward(obj, np.random.default_rng(1), na=na, wavelength=wl, pixel_size=px)
    b = F.denoise_forward(obj, np.random.default_rng(1), sigma=sig)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
