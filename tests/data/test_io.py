"""I/O round trips (OME metadata included) and every bad-input error."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from unifmir.data.io import (
    ImageError,
    ImageMeta,
    check_pair,
    read_image,
    validate_image,
    write_image,
)


def test_ome_roundtrip_zyx_with_pixel_sizes(tmp_path):
    arr = np.random.default_rng(0).random((5, 12, 17)).astype(np.float32)
    ps = {"Z": 0.5, "Y": 0.11, "X": 0.12}
    p = write_image(tmp_path / "a.ome.tif", arr, "ZYX", ps)
    back, meta = read_image(p)
    assert isinstance(meta, ImageMeta)
    assert meta.axes == "ZYX"
    np.testing.assert_array_equal(back, arr)
    assert back.dtype == np.float32
    assert meta.pixel_size == pytest.approx(ps)
    # the file is a genuine OME-TIFF
    with tifffile.TiffFile(p) as tf:
        assert tf.is_ome and 'PhysicalSizeZ="0.5"' in tf.ome_metadata


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.float64])
def test_roundtrip_dtypes_yx(tmp_path, dtype):
    arr = (np.arange(6 * 7).reshape(6, 7) % 200).astype(dtype)
    back, meta = read_image(write_image(tmp_path / "b.tif", arr, "YX", {"X": 0.1, "Y": 0.1}))
    assert meta.axes == "YX" and back.dtype == dtype
    np.testing.assert_array_equal(back, arr)


def test_czyx_and_float16_and_bool(tmp_path):
    arr = np.ones((2, 3, 4, 5), np.float16)
    back, meta = read_image(write_image(tmp_path / "c.tif", arr, "CZYX"))
    assert meta.axes == "CZYX" and back.dtype == np.float32 and back.shape == arr.shape
    back, _ = read_image(write_image(tmp_path / "m.tif", np.eye(4, dtype=bool), "YX"))
    assert back.dtype == np.uint8 and back.sum() == 4


def test_npy_roundtrip_and_mmap(tmp_path):
    arr = np.random.default_rng(1).random((3, 8, 9)).astype(np.float32)
    p = write_image(tmp_path / "d.npy", arr, "ZYX")
    back, meta = read_image(p)
    assert meta.axes == "ZYX" and meta.pixel_size == {}
    np.testing.assert_array_equal(back, arr)
    mm, _ = read_image(p, mmap=True)
    assert isinstance(mm, np.memmap)
    mt, _ = read_image(write_image(tmp_path / "e.tif", arr, "ZYX"), mmap=True)
    assert isinstance(mt, np.memmap)
    np.testing.assert_array_equal(mt, arr)


def test_plain_tiff_axes_guess_and_forced_axes(tmp_path):
    arr = np.zeros((4, 6, 7), np.uint16)
    tifffile.imwrite(tmp_path / "plain.tif", arr, photometric="minisblack")
    back, meta = read_image(tmp_path / "plain.tif")
    assert meta.axes == "ZYX" and back.shape == (4, 6, 7)
    tifffile.imwrite(tmp_path / "single.tif", np.zeros((1, 6, 7), np.float32))
    back, meta = read_image(tmp_path / "single.tif", axes="YX")
    assert back.shape == (6, 7) and meta.axes == "YX"
    with pytest.raises(ImageError, match="cannot be read with axes"):
        read_image(tmp_path / "plain.tif", axes="YX")


def test_overwrite_refused_then_allowed(tmp_path):
    p = write_image(tmp_path / "x.tif", np.zeros((4, 4), np.float32), "YX")
    with pytest.raises(FileExistsError, match="already exists"):
        write_image(p, np.ones((4, 4), np.float32), "YX")
    write_image(p, np.ones((4, 4), np.float32), "YX", overwrite=True)
    assert read_image(p)[0].sum() == 16
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".")]  # no temp leftovers


def test_read_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_image(tmp_path / "missing.tif")
    (tmp_path / "a.png").write_bytes(b"x")
    with pytest.raises(ImageError, match="unsupported image format"):
        read_image(tmp_path / "a.png")
    (tmp_path / "bad.tif").write_bytes(b"not a tiff at all")
    with pytest.raises(ImageError, match="not a readable TIFF"):
        read_image(tmp_path / "bad.tif")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ImageError, match=".npy"):
        read_image(tmp_path / "obj.npy")
    with pytest.raises(ImageError, match="is a directory"):
        read_image(tmp_path)


def test_write_errors(tmp_path):
    with pytest.raises(ImageError, match="use a .tif"):
        write_image(tmp_path / "a.png", np.zeros((3, 3)), "YX")
    with pytest.raises(ImageError, match="positive"):
        write_image(tmp_path / "a.tif", np.zeros((3, 3)), "YX", {"X": -1.0})
    with pytest.raises(ImageError, match="pixel_size key"):
        write_image(tmp_path / "a.tif", np.zeros((3, 3)), "YX", {"Q": 1.0})
    with pytest.raises(ImageError, match="2 dimension"):
        write_image(tmp_path / "a.tif", np.zeros((3, 3)), "ZYX")


@pytest.mark.parametrize(
    "array, axes, kwargs, match",
    [
        (np.zeros((3, 4)), "ZYX", {}, r"has 2 dimension\(s\).*need 3"),
        (np.zeros((2, 4, 4)), "CYX", {"channels": 5}, r"has 2 channel\(s\).*5 are required"),
        (np.zeros((4, 4)), "YX", {"channels": 5}, "no channel axis"),
        (np.zeros((0, 4)), "YX", {}, "is empty"),
        (np.array([[1.0, np.nan], [0, 0]]), "YX", {}, "1 NaN"),
        (np.array([[1.0, np.inf], [0, -np.inf]]), "YX", {}, "2 infinite"),
        (np.array([["a", "b"], ["c", "d"]]), "YX", {}, "non-numeric dtype"),
        (np.zeros((3, 3), dtype=object), "YX", {}, "non-numeric dtype"),
        (np.zeros((3, 3)), "YQ", {}, "unknown letters"),
        (np.zeros((3, 3, 3)), "YYX", {}, "repeat a letter"),
        (np.zeros((3, 3)), "XY", {}, "must end with 'YX'"),
        (np.zeros((3, 3)), "", {}, "non-empty string"),
    ],
)
def test_validate_image_errors(array, axes, kwargs, match):
    with pytest.raises(ImageError, match=match) as info:
        validate_image(array, axes, name="my image", **kwargs)
    assert isinstance(info.value, ValueError)


def test_validate_image_accepts_torch_and_names():
    import torch

    out = validate_image(torch.zeros(2, 3, 3), "ZYX")
    assert isinstance(out, np.ndarray)
    with pytest.raises(ImageError, match="^stack "):
        validate_image(np.zeros(3), "YX", name="stack")


def test_check_pair_valid_cases():
    check_pair(np.zeros((8, 8)), np.zeros((16, 16)), "sr")
    check_pair(np.zeros((3, 8, 8)), np.zeros((3, 8, 8)), "denoise")
    check_pair(np.zeros((3, 8, 8)), np.zeros((9, 8, 8)), "isotropic", z_factor=4)  # ceil(9/4)=3
    check_pair(np.zeros((9, 8, 8)), np.zeros((9, 8, 8)), "isotropic")
    check_pair(np.zeros((50, 8, 8)), np.zeros((8, 8)), "projection")
    check_pair(np.zeros((22, 33)), np.zeros((61, 22, 33)), "volumetric")


@pytest.mark.parametrize(
    "task, lq, hq, match",
    [
        ("sr", (8, 8), (8, 8), "must be 2x the input"),
        ("denoise", (3, 8, 8), (3, 8, 9), "same shape"),
        ("denoise", (8, 8), (8, 8), r"input has 2 dimension\(s\)"),
        ("isotropic", (3, 8, 8), (20, 8, 8), "z factor 4"),
        ("isotropic", (3, 8, 8), (12, 8, 9), "do not match in Y/X"),
        ("projection", (49, 8, 8), (8, 8), "exactly 50 z-slices"),
        ("projection", (50, 8, 8), (8, 9), "input's Y/X size"),
        ("volumetric", (20, 33), (61, 20, 33), "multiples of 11"),
        ("volumetric", (22, 33), (60, 22, 33), "exactly 61 z-slices"),
        ("volumetric", (22, 33), (61, 22, 22), "must equal the input's"),
    ],
)
def test_check_pair_mismatches(task, lq, hq, match):
    with pytest.raises(ImageError, match=match):
        check_pair(np.zeros(lq, np.float32), np.zeros(hq, np.float32), task)


def test_check_pair_bad_values_and_task():
    with pytest.raises(ImageError, match="NaN"):
        check_pair(np.full((4, 4), np.nan), np.zeros((8, 8)), "sr")
    with pytest.raises(ValueError, match="unknown task"):
        check_pair(np.zeros((4, 4)), np.zeros((8, 8)), "deblur")


def test_single_slice_stack_keeps_requested_axes(tmp_path):
    p = write_image(tmp_path / "one.tif", np.ones((1, 5, 6), np.float32), "ZYX", {"Z": 2.0, "X": 0.1})
    arr, meta = read_image(p, axes="ZYX")
    assert arr.shape == (1, 5, 6) and meta.axes == "ZYX" and meta.pixel_size["Z"] == 2.0
