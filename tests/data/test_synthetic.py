"""Ground-truth generators: determinism and claimed geometry (speed: benchmarks/synth_speed.py)."""

from __future__ import annotations

import numpy as np
import pytest

from unifmir.data import synthetic as S

GENS_2D = {
    "filaments": S.filaments,
    "microtubules": S.microtubules,
    "actin": S.actin,
    "ccps": S.ccps,
    "er": S.er_network,
    "nuclei": S.nuclei,
    "ecoli": S.ecoli,
    "saureus": S.saureus,
    "bacteria": S.bacteria,
    "junctions": S.cell_junctions,
}


@pytest.mark.parametrize("name", list(GENS_2D))
def test_2d_generators_deterministic(name):
    f = GENS_2D[name]
    a = f((64, 80), np.random.default_rng(5))
    b = f((64, 80), np.random.default_rng(5))
    c = f((64, 80), np.random.default_rng(6))
    assert a.shape == (64, 80) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.min() >= 0 and 0.2 < a.max() < 5


@pytest.mark.parametrize("f", [S.nuclei, S.filaments3d, S.smooth_noise])
def test_3d_generators_deterministic(f):
    a = f((8, 32, 32), np.random.default_rng(1))
    np.testing.assert_array_equal(a, f((8, 32, 32), np.random.default_rng(1)))
    assert a.shape == (8, 32, 32) and a.dtype == np.float32


def test_single_straight_filament_peak_and_width():
    img = S.filaments((64, 64), np.random.default_rng(0), n=1, persistence=1e9, length=40.0,
                      width=1.5, brightness=(0.8, 0.8))
    assert img.max() == pytest.approx(0.8, rel=0.05)
    # profile across the line is Gaussian with sigma = width: integral / peak = sqrt(2 pi) sigma
    assert img.sum() / img.max() / 40.0 == pytest.approx(np.sqrt(2 * np.pi) * 1.5, rel=0.1)


def test_filament_stiffness_controls_curvature():
    def end_to_end(per):
        rng = np.random.default_rng(0)
        pts = S._walk2d(rng, 200, 200, 0.5, np.full(200, per), (100, 100))
        return np.mean(np.linalg.norm(pts[:, -1] - pts[:, 0], axis=1))

    # worm-like chain: contour length L = 99.5; stiff chains are nearly straight
    assert end_to_end(1e6) == pytest.approx(99.5, rel=0.01)
    assert end_to_end(10.0) < 0.6 * end_to_end(1e6)


def test_ccp_rings_and_dots():
    rng = np.random.default_rng(0)
    ring = S.ccps((41, 41), rng, n=1, radius=(4.0, 4.0), ring_fraction=1.0)
    assert 0.35 < ring.max() < 1.05
    # a ring is hollow: its brightest pixels lie ~radius away from its intensity centroid
    w = ring / ring.sum()
    yy, xx = np.meshgrid(np.arange(41), np.arange(41), indexing="ij")
    cy, cx = (w * yy).sum(), (w * xx).sum()
    r_peak = np.hypot(*(np.array(np.unravel_index(ring.argmax(), ring.shape)) - [cy, cx]))
    assert r_peak == pytest.approx(4.0, abs=1.0)
    dot = S.ccps((41, 41), np.random.default_rng(0), n=1, ring_fraction=0.0)
    assert 0.35 < dot.max() < 1.05


def test_nucleus_radius_matches_request():
    img = S.nuclei((160, 160), np.random.default_rng(2), n=1, radius=(20.0, 20.0), elongation=0.0,
                   texture=0.0, brightness=(1.0, 1.0))
    r_eq = np.sqrt((img > 0.5 * img.max()).sum() / np.pi)
    assert r_eq == pytest.approx(20.0, rel=0.15)


def test_ecoli_rod_geometry():
    px = 0.05
    img = S.ecoli((200, 200), np.random.default_rng(3), n=1, pixel_size=px, pattern="membrane")
    ys, xs = np.nonzero(img > 0.3 * img.max())
    pts = np.stack([ys, xs], 1).astype(float)
    pts -= pts.mean(0)
    ev = np.linalg.eigvalsh(np.cov(pts.T))
    # membrane outline of a 2-4 um x 0.8-1 um spherocylinder: extents along the principal axes
    proj_long = np.ptp(pts @ np.linalg.eigh(np.cov(pts.T))[1][:, 1]) * px
    proj_short = np.ptp(pts @ np.linalg.eigh(np.cov(pts.T))[1][:, 0]) * px
    assert 1.8 < proj_long < 4.2 and 0.6 < proj_short < 1.1
    assert ev[1] > 2 * ev[0]  # elongated


@pytest.mark.parametrize("pattern", ["membrane", "nucleoid", "mreb"])
def test_ecoli_patterns(pattern):
    img = S.ecoli((96, 96), np.random.default_rng(0), pixel_size=0.05, pattern=pattern)
    assert img.max() > 0.3
    with pytest.raises(ValueError, match="unknown E. coli pattern"):
        S.ecoli((32, 32), np.random.default_rng(0), pattern="flagella")


def test_saureus_cocci_size():
    px = 0.05
    img = S.saureus((120, 120), np.random.default_rng(4), n_clusters=1, cluster_size=(1, 1),
                    pixel_size=px, septum_fraction=0.0)
    ys, xs = np.nonzero(img > 0.3 * img.max())
    assert 0.7 < np.ptp(ys) * px < 1.2 and 0.7 < np.ptp(xs) * px < 1.2


def test_height_map_within_stack():
    h = S.height_map((64, 64), np.random.default_rng(0), depth=50, margin=6)
    assert h.min() >= 6 - 1e-4 and h.max() <= 43 + 1e-4 and np.ptp(h) > 5


def test_splat_conserves_mass_inside():
    pts = np.array([[1.3, 2.7], [4.5, 4.5], [-3.0, 1.0]])
    img = S.splat((6, 6), pts, np.array([1.0, 2.0, 5.0]))
    assert img.sum() == pytest.approx(3.0)
