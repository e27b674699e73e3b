"""Write one synthetic (input | target) pair per task to ``docs/images/<task>.png``.

Also writes the DeepBacs-style bacteria variants (``bacteria_denoise_ecoli.png``,
``bacteria_sr.png``). Run from the repository root::

    python docs/make_examples.py [--out docs/images] [--seed 0]

Every pair comes from :func:`unifmir.data.forward.synthesize` with its default physics; 3D data
are shown as a slice (and, where informative, a maximum projection). Display contrast is the
0.5-99.8 percentile range of each panel.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from unifmir.data.forward import synthesize, upsample_z  # noqa: E402


def _disp(x: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(x, [0.5, 99.8])
    return np.clip((x - lo) / (hi - lo + 1e-12), 0, 1)


def _figure(panels: list[tuple[str, np.ndarray, float]], title: str, path: Path) -> None:
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.7))
    for ax, (label, img, aspect) in zip(np.atleast_1d(axes), panels):
        ax.imshow(_disp(img), cmap="magma", interpolation="nearest", aspect=aspect)
        ax.set_title(label, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).parent / "images"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    out = Path(args.out)
    rng = lambda k: np.random.default_rng([args.seed, k])  # noqa: E731

    p = synthesize("sr", rng(0), size=128, structure="microtubules")
    _figure([(f"input {p.input.shape} (widefield, noisy)", p.input, 1),
             (f"target {p.target.shape} (2x, SIM-like)", p.target, 1)],
            "sr: 2x super-resolution (microtubules)", out / "sr.png")

    p = synthesize("denoise", rng(1), size=128)
    z = p.input.shape[0] // 2
    _figure([(f"input slice {z} of {p.input.shape} ({p.params['photons']:g} photons)", p.input[z], 1),
             (f"target slice {z}", p.target[z], 1)],
            "denoise: low-photon 3D stack (nuclei)", out / "denoise.png")

    p = synthesize("isotropic", rng(2), size=96)
    f = int(p.params["z_factor"])
    y = p.target.shape[1] // 2
    xz_in = upsample_z(p.input[:, y, :], f, depth=p.target.shape[0])
    _figure([(f"input XZ ({p.input.shape[0]} slices, z factor {f}, linear interp.)", xz_in, 1),
             (f"target XZ ({p.target.shape[0]} slices)", p.target[:, y, :], 1),
             ("target XY", p.target[p.target.shape[0] // 2], 1)],
            "isotropic: axially blurred + subsampled stack", out / "isotropic.png")

    p = synthesize("projection", rng(3), size=128)
    _figure([("input slice 25 of 50", p.input[25], 1),
             ("input max-projection (fooled by clutter)", p.input.max(axis=0), 1),
             ("target surface image", p.target, 1)],
            "projection: curved epithelium in a 50-slice stack", out / "projection.png")

    p = synthesize("volumetric", rng(4), size=176)
    _figure([(f"input light field {p.input.shape} (11x11 lenslets)", p.input, 1),
             ("input crop (lenslet pattern)", p.input[66:110, 66:110], 1),
             (f"target max over {p.target.shape[0]} slices", p.target.max(axis=0), 1),
             ("target XZ", p.target[:, p.target.shape[1] // 2, :], 2.0)],
            "volumetric: light field -> 61-slice volume", out / "volumetric.png")

    p = synthesize("denoise", rng(5), size=192, structure="ecoli")
    z = p.input.shape[0] // 2
    _figure([(f"input ({p.params['photons']:g} photons, slice {z})", p.input[z], 1), ("target", p.target[z], 1)],
            "bacteria: E. coli denoising (DeepBacs-like)", out / "bacteria_denoise_ecoli.png")

    p = synthesize("sr", rng(6), size=192, structure="bacteria")
    _figure([("input (widefield)", p.input, 1), ("target (2x)", p.target, 1)],
            "bacteria: rods + cocci super-resolution", out / "bacteria_sr.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
