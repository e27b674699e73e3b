"""``unifmir predict`` end to end on small TIFFs; bad inputs give clear errors and no files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from unifmir.cli import main
from unifmir.data.io import read_image, write_image

_CKPT: dict[str, Path] = {}


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, nets):
    """Checkpoint path of a small network per task (written once)."""
    from unifmir.model.checkpoints import save_checkpoint

    root = tmp_path_factory.mktemp("ckpt")

    def get(task: str) -> Path:
        if task not in _CKPT:
            _CKPT[task] = save_checkpoint(root / f"{task}.pt", nets(task))
        return _CKPT[task]

    return get


def _files(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_sr_end_to_end(tmp_path, ckpt, capsys) -> None:
    rng = np.random.default_rng(0)
    img = (rng.random((40, 36)) * 4000).astype(np.uint16)
    src = write_image(tmp_path / "cell.tif", img, "YX", pixel_size={"Y": 0.1, "X": 0.12})
    out = tmp_path / "out"
    rc = main(["predict", "--model", str(ckpt("sr")), "--task", "sr", "--input", str(src),
               "--output", str(out), "--quiet"])
    assert rc == 0
    assert _files(out) == ["cell.ome.tif"]
    y, meta = read_image(out / "cell.ome.tif")
    assert y.shape == (80, 72) and y.dtype == np.float32 and meta.axes == "YX"
    assert meta.pixel_size == pytest.approx({"Y": 0.05, "X": 0.06})
    # the same as the Python API (normalised, de-normalised with the input's statistics)
    from unifmir.predict import predict

    from unifmir.model.checkpoints import load_any

    ref = predict(load_any(ckpt("sr")), img)
    assert np.abs(ref - y).max() < 1e-4 * max(1.0, float(np.abs(ref).max()))

    # exists -> refused, file untouched; --overwrite replaces; --dtype input gives uint16
    before = (out / "cell.ome.tif").read_bytes()
    rc = main(["predict", "--model", str(ckpt("sr")), "--input", str(src), "--output", str(out), "--quiet"])
    assert rc == 2 and "--overwrite" in capsys.readouterr().err
    assert (out / "cell.ome.tif").read_bytes() == before
    rc = main(["predict", "--model", str(ckpt("sr")), "--input", str(src), "--output", str(out), "--quiet",
               "--overwrite", "--dtype", "input", "--tile", "96", "--backend", "torchscript"])
    assert rc == 0
    y2, _ = read_image(out / "cell.ome.tif")
    assert y2.dtype == np.uint16 and _files(out) == ["cell.ome.tif"]


def test_denoise_and_isotropic_metadata(tmp_path, ckpt) -> None:
    rng = np.random.default_rng(1)
    stack = rng.random((3, 24, 20)).astype(np.float32)
    src = write_image(tmp_path / "s.ome.tif", stack, "ZYX", pixel_size={"Z": 1.0, "Y": 0.2, "X": 0.2})
    out = tmp_path / "o"
    assert main(["predict", "--model", str(ckpt("denoise")), "--input", str(src), "--output", str(out), "--quiet"]) == 0
    y, meta = read_image(out / "s.ome.tif")
    assert y.shape == (3, 24, 20) and meta.pixel_size == pytest.approx({"Z": 1.0, "Y": 0.2, "X": 0.2})
    out2 = tmp_path / "o2"
    assert main(["predict", "--model", str(ckpt("isotropic")), "--input", str(src), "--output", str(out2),
                 "--quiet", "--z-factor", "2"]) == 0
    y, meta = read_image(out2 / "s.ome.tif")
    assert y.shape == (6, 24, 20) and meta.pixel_size == pytest.approx({"Z": 0.5, "Y": 0.2, "X": 0.2})


@pytest.mark.parametrize(
    "task, shape, axes, message",
    [
        ("denoise", (24, 20), "YX", "ZYX"),  # wrong ndim for the task
        ("sr", (3, 24, 20), "ZYX", "single YX"),  # a stack given to a 2-D task
        ("projection", (10, 24, 20), "ZYX", "exactly 50 z-slices"),  # z too small
        ("volumetric", (100, 121), "YX", "multiples of 11"),  # light field not a multiple of 11
    ],
)
def test_bad_inputs_clear_errors_no_files(tmp_path, ckpt, capsys, task, shape, axes, message) -> None:
    good = write_image(tmp_path / "a_good.tif", np.random.rand(*(
        {"denoise": (3, 24, 20), "sr": (24, 20), "projection": (50, 24, 20), "volumetric": (88, 88)}[task]
    )).astype(np.float32), {"denoise": "ZYX", "sr": "YX", "projection": "ZYX", "volumetric": "YX"}[task])
    bad = write_image(tmp_path / "b_bad.tif", np.random.rand(*shape).astype(np.float32), axes)
    out = tmp_path / "out"
    rc = main(["predict", "--model", str(ckpt(task)), "--input", str(good), str(bad), "--output", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "b_bad.tif" in err
    assert _files(out) == [], "no output at all when one input is bad (checked before writing)"


def test_unreadable_and_missing_files(tmp_path, ckpt, capsys) -> None:
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"this is not a tiff")
    out = tmp_path / "out"
    rc = main(["predict", "--model", str(ckpt("sr")), "--input", str(junk), "--output", str(out), "--quiet"])
    assert rc == 2 and "junk.tif" in capsys.readouterr().err
    rc = main(["predict", "--model", str(ckpt("sr")), "--input", str(tmp_path / "nope.tif"), "--output", str(out)])
    assert rc == 2 and "does not exist" in capsys.readouterr().err
    rc = main(["predict", "--model", str(tmp_path / "none.pt"), "--input", str(junk), "--output", str(out)])
    assert rc == 2 and "none.pt" in capsys.readouterr().err
    assert _files(out) == []


def test_failure_during_prediction_leaves_no_partial_file(tmp_path, ckpt, monkeypatch, capsys) -> None:
    import unifmir.predict.api as api

    src = write_image(tmp_path / "x.tif", np.random.rand(24, 20).astype(np.float32), "YX")
    out = tmp_path / "out"
    calls = {"n": 0}
    real = api.write_image if hasattr(api, "write_image") else None
    import unifmir.data.io as io

    orig = tifffile.imwrite

    def broken(path, *a, **k):  # fail in the middle of writing the file
        Path(path).write_bytes(b"partial")
        calls["n"] += 1
        raise OSError("disk full")

    monkeypatch.setattr(tifffile, "imwrite", broken)
    rc = main(["predict", "--model", str(ckpt("sr")), "--input", str(src), "--output", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "error: disk full" in err and "Traceback" not in err  # an OS error is a message
    assert calls["n"] == 1 and _files(out) == []
    monkeypatch.setattr(tifffile, "imwrite", orig)
    del real, io


def test_api_errors(nets) -> None:
    from unifmir.predict import predict

    with pytest.raises(ValueError, match="expects a 3-D image"):
        predict(nets("denoise"), np.zeros((16, 16), np.float32))
    with pytest.raises(ValueError, match="exactly 50"):
        predict(nets("projection"), np.zeros((49, 16, 16), np.float32))
    with pytest.raises(ValueError, match="multiples of 11"):
        predict(nets("volumetric"), np.zeros((88, 90), np.float32))
    with pytest.raises(ValueError, match="too small for an overlap"):
        predict(nets("sr"), np.zeros((200, 200), np.float32), tile=40, overlap=32)
    with pytest.raises(ValueError, match="backend"):
        predict(nets("sr"), np.zeros((16, 16), np.float32), backend="onnx")
    y = predict(nets("denoise"), np.random.rand(1, 2, 16, 16).astype(np.float32), axes="CZYX")
    assert y.shape == (2, 16, 16)
