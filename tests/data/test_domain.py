"""The randomised training domain: what each draw renders and what the operating range states."""

from __future__ import annotations

import numpy as np
import pytest

from unifmir.data import domain
from unifmir.tasks import get_task


@pytest.mark.parametrize("task", sorted(domain.DOMAINS))
def test_draw_pair_shapes_and_physics_inside_the_domain(task: str) -> None:
    spec, d = get_task(task), domain.get_domain(task)
    for i in range(6):
        a, b, phys = domain.draw_pair(task, np.random.default_rng([0, i]), 44)  # 44: whole lenslets
        up = 1 if spec.lenslets else spec.scale  # a light field has the volume's lateral grid
        assert a.shape[-2:] == (44, 44) and b.shape[-2:] == (44 * up, 44 * up)
        assert a.dtype == b.dtype == np.float32 and np.isfinite(a).all() and np.isfinite(b).all()
        assert d.photons[0] <= phys["photons"] <= d.photons[1]
        assert d.sigma_px[0] <= phys["sigma_px"] <= d.sigma_px[1]
        assert 0 <= phys["hot_pixels"] <= d.hot_pixels[1]
        assert b.max() == pytest.approx(1.0) and b.min() >= 0  # unit-peak, noise-free target


@pytest.mark.parametrize("task", sorted(domain.DOMAINS))
def test_draws_vary_and_are_reproducible(task: str) -> None:
    draws = [domain.draw_pair(task, np.random.default_rng([3, i]), 33) for i in range(8)]
    photons = {round(p["photons"], 3) for _, _, p in draws}
    assert len(photons) == 8  # a new acquisition every draw, not one fixed set
    again = domain.draw_pair(task, np.random.default_rng([3, 0]), 33)
    np.testing.assert_array_equal(again[0], draws[0][0])


def test_every_family_renders_structure() -> None:
    rng = np.random.default_rng(1)
    for name, draw in domain.FAMILIES_2D.items():
        img = draw((64, 64), rng, 1.0)
        assert img.shape == (64, 64) and float(img.std()) > 0, name


def test_nucleoli_darken_only_inside_the_nuclei() -> None:
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[:64, :64]
    disc = ((yy - 32) ** 2 + (xx - 32) ** 2 < 20 ** 2).astype(np.float32)
    out = domain.add_nucleoli(disc, rng, 1.0, depth=0.6)
    assert out[disc == 0].max() == 0  # nothing drawn outside
    assert out[disc == 1].min() < 0.7 and out[disc == 1].max() > 0.95  # dark spots, bright rest
    np.testing.assert_array_equal(domain.add_nucleoli(disc, rng, 1.0, depth=0.0), disc)


def test_only_the_denoiser_draws_flat_nuclei_the_other_domains_keep_their_families() -> None:
    assert "nuclei" in domain.get_domain("denoise").families
    for task in ("sr", "projection", "volumetric"):
        assert domain.get_domain(task).families == domain.GENERAL_FAMILIES


def test_hot_pixels_hit_the_requested_fraction_and_share_the_sensor_across_z() -> None:
    rng = np.random.default_rng(2)
    stack = np.zeros((4, 100, 100), np.float32)
    out = domain.add_hot_pixels(stack, rng, photons=10.0, fraction=0.01)
    hot = out > 0
    assert 60 <= hot[0].sum() <= 140 and (hot == hot[0]).all()
    assert out[hot].min() >= 50.0  # at least 5x the photon budget
    assert stack.max() == 0  # the input is not modified


def test_background_gradient_is_smooth_shot_noise_on_top() -> None:
    img = np.full((64, 64), 5.0, np.float32)
    out = domain.add_background_gradient(img, np.random.default_rng(4), level=200.0)
    assert out.mean() > 5.0 + 20 and np.all(out >= 5.0)
    assert (out - 5.0 == np.round(out - 5.0)).all()  # Poisson counts


def test_operating_range_names_the_physics_a_user_checks() -> None:
    text = domain.get_domain("sr").describe()
    for word in ("PSF sigma", "photo-electrons", "read noise", "hot pixels", "Airy", "output grid"):
        assert word in text, word
    assert "axial PSF sigma" in domain.get_domain("denoise").describe()


def test_task_without_a_domain_is_refused_with_the_alternative() -> None:
    with pytest.raises(ValueError, match="unifmir synth"):
        domain.get_domain("isotropic")


def test_light_field_draws_are_whole_lenslets_and_layers_sit_at_varied_depths() -> None:
    n, depth = get_task("volumetric").lenslets, get_task("volumetric").out_depth
    peaks = set()
    for i in range(12):
        lf, vol, _ = domain.draw_pair("volumetric", np.random.default_rng([5, i]), 50)
        assert lf.shape == (44, 44) and vol.shape == (depth, 44, 44) and 44 % n == 0
        profile = vol.sum(axis=(1, 2))
        peaks.add(int(np.argmax(profile)))
        assert (profile > 0.05 * profile.max()).mean() < 1.0  # not a z-invariant volume
    assert len(peaks) >= 6  # structures at many depths, not one focal plane


def test_stack_domains_cut_several_training_items_from_one_rendering() -> None:
    assert domain.get_domain("sr").reuse == 2
    assert domain.get_domain("denoise").reuse > domain.get_domain("sr").reuse
