"""Output units of ``unifmir.predict`` / ``unifmir predict``: ``input`` (default) or ``normalized``.

``normalized`` is what an exported bundle gives: the same image through ``unifmir predict --model
BUNDLE.zip --output-units normalized``, through ``bioimageio predict`` (bioimageio.core, from the
shell) and through the bundle's TorchScript file in libtorch 2.0.0 (deepImageJ's engine) agree.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml
from ..bundle_checks import committed_bundle, shell_predict

from unifmir.cli import build_parser, main
from unifmir.data.normalize import denormalize, normalize_for_task
from unifmir.predict.api import predict

AGREEMENT = 1e-5
"""Largest difference allowed between the three runtimes (output range ~1, normalised units).

All three run the same float32 weights on the same normalised input; they differ only in kernel
choice and summation order (eager SDPA attention vs the TorchScript graph in torch 2.13 and in
libtorch 2.0.0, thread counts), measured at <= 3e-7 here. 1e-5 is ~30x that, and still ~100x below
what a different normalisation gives (a 0.1 % shift of the percentiles moves the output by ~1e-3;
input units differ by the image's intensity scale)."""


def test_api_default_is_input_units(nets) -> None:
    net = nets("sr")
    img = np.random.default_rng(0).uniform(100, 4000, (24, 24)).astype(np.float32)
    default = predict(net, img, padding="none")  # unpadded: the statistics are the image's own
    norm = predict(net, img, output_units="normalized", padding="none")
    _, stats = normalize_for_task(img, "sr")
    assert np.array_equal(predict(net, img, output_units="input", padding="none"), default)
    np.testing.assert_array_equal(denormalize(norm, stats), default)
    assert float(np.abs(norm).max()) < 10 < float(np.abs(default).max())
    raw = predict(net, img, normalize=False, output_units="normalized")
    assert np.array_equal(raw, predict(net, img, normalize=False))  # unnormalised: the raw output either way
    with pytest.raises(ValueError, match="output_units must be one of 'input', 'normalized', got 'percent'"):
        predict(net, img, output_units="percent")


def test_cli_option_and_its_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    text = sub.choices["predict"].format_help()
    assert "--output-units {input,normalized}" in text and "input (default)" in " ".join(text.split())
    zp, _ = committed_bundle("unifmir-sr", tmp_path)
    img = tmp_path / "img.tif"
    tifffile.imwrite(img, np.full((80, 80), 7, np.uint16))
    rc = main(["predict", "--model", str(zp), "--input", str(img), "--output", str(tmp_path / "o"),
               "--output-units", "normalized", "--dtype", "input", "--quiet"])
    assert rc == 2 and "--dtype input with --output-units normalized" in capsys.readouterr().err
    assert not (tmp_path / "o" / "img.ome.tif").exists()


def _grid_size(axis: dict, at_least: int) -> int:
    mn, st = int(axis["size"]["min"]), int(axis["size"]["step"])
    return mn + st * max(0, math.ceil((at_least - mn) / st))


def test_cli_equals_bioimageio_predict_and_libtorch(tmp_path: Path) -> None:
    """One image, three runtimes: ``unifmir predict --model BUNDLE.zip --output-units normalized``
    == ``bioimageio predict BUNDLE.zip`` (shell) == libtorch 2.0.0 running the bundle's TorchScript.

    ``bioimageio predict`` pads the image by the halo (symmetric) before it normalises and predicts;
    ``unifmir predict`` does the same by default, so the two agree on the whole image, borders
    included. libtorch gets the unpadded input unifmir normalised and is compared with
    ``unifmir predict --padding none`` on the whole image. (The test image has four intensity
    levels, the lowest and the highest each on 10 % of the pixels: both percentiles sit inside runs
    of equal values, with or without padding.)
    """
    from unifmir.export.libtorch_check import check_torchscript, ensure_libtorch

    zp, folder = committed_bundle("unifmir-sr", tmp_path)
    rdf = yaml.safe_load((folder / "rdf.yaml").read_text(encoding="utf-8"))
    ax = {a.get("id", a["type"]): a for a in rdf["inputs"][0]["axes"]}
    halo = {a["id"]: int(a.get("halo", 0)) for a in rdf["outputs"][0]["axes"] if a["type"] == "space"}
    shape = (_grid_size(ax["y"], 96), _grid_size(ax["x"], 96))
    from unifmir.export.tensors import synthetic_input

    smooth = synthetic_input("sr", shape, seed=3)
    img = (np.digitize(smooth, np.quantile(smooth, [0.1, 0.5, 0.9])) * 300 + 100).astype(np.float32)
    tif = tmp_path / "img.tif"
    tifffile.imwrite(tif, img)

    out_dir = tmp_path / "unifmir-out"
    assert main(["predict", "--model", str(zp), "--input", str(tif), "--output", str(out_dir),
                 "--output-units", "normalized", "--quiet"]) == 0
    ours = np.squeeze(tifffile.imread(out_dir / "img.ome.tif"))
    assert main(["predict", "--model", str(zp), "--input", str(tif), "--output", str(tmp_path / "input-units"),
                 "--quiet"]) == 0
    in_units = np.squeeze(tifffile.imread(tmp_path / "input-units" / "img.ome.tif"))

    assert main(["predict", "--model", str(zp), "--input", str(tif), "--output", str(tmp_path / "plain"),
                 "--output-units", "normalized", "--padding", "none", "--quiet"]) == 0
    plain = np.squeeze(tifffile.imread(tmp_path / "plain" / "img.ome.tif"))

    bio = shell_predict(zp, tif, tmp_path)
    assert bio.shape == ours.shape == plain.shape == (2 * shape[0], 2 * shape[1])
    diff = float(np.abs(ours - bio).max())
    assert diff <= AGREEMENT, f"unifmir predict and bioimageio predict differ by {diff:.3g}"
    # the network's own borders differ from the mirrored ones (only within the halo)
    inner = (slice(halo["y"], -halo["y"]), slice(halo["x"], -halo["x"]))
    assert float(np.abs(plain - bio).max()) > 10 * AGREEMENT
    assert float(np.abs(plain[inner] - bio[inner]).max()) <= AGREEMENT
    # the default (input units) is what the CLI gave before: it does not match the bundle
    assert float(np.abs(in_units - bio).max()) > 100 * float(np.ptp(bio))

    ensure_libtorch()
    ts = rdf["weights"]["torchscript"]["source"]
    with zipfile.ZipFile(zp) as z:
        z.extract(ts, tmp_path / "ts")
    x = normalize_for_task(img, "sr")[0][None, None]
    res = check_torchscript(tmp_path / "ts" / ts, [x], [plain[None, None]], atol=AGREEMENT, rtol=0.0)
    assert res.ok and res.libtorch_version == "2.0.0", res.message
