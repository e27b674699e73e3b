"""Dataset layout (writer/reader, dataset.yaml) and the training-patch datasets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from unifmir.data.datasets import (
    PatchDataset,
    denoise_window,
    lightfield_to_views,
    views_to_lightfield,
    whole_image_pairs,
)
from unifmir.data.io import ImageError, read_image, write_image
from unifmir.data.pairs import list_pairs, load_dataset_info, synthesize_dataset, write_dataset_info
from unifmir.tasks import TASKS

SIZES = {"sr": 24, "denoise": 24, "isotropic": 16, "projection": 24, "volumetric": 44}
PATCH = {"sr": 16, "denoise": 16, "isotropic": 16, "projection": 16, "volumetric": 22}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    return {
        t: synthesize_dataset(t, 3, root / t, seed=4, size=SIZES[t], test_fraction=0.34)
        for t in TASKS
    }


@pytest.mark.parametrize("task", list(TASKS))
def test_layout_and_yaml(datasets, task):
    root = datasets[task]
    info = load_dataset_info(root)
    spec = TASKS[task]
    assert info.task == task and info.counts == {"train": 2, "test": 1}
    assert (info.input_axes, info.target_axes) == (spec.input_axes, spec.output_axes)
    assert info.input_pixel_size and info.target_pixel_size
    assert info.provenance["seed"] == 4 and info.provenance["params"]["photons"] > 0
    doc = yaml.safe_load((root / "dataset.yaml").read_text())
    assert doc["task"] == task
    if task == "isotropic":
        assert info.z_factor == spec.z_factor
    pairs = list_pairs(root, "train")
    assert [p.name for p, _ in pairs] == ["0000.tif", "0001.tif"]
    arr, meta = read_image(pairs[0][0])
    assert meta.axes == spec.input_axes and meta.pixel_size == pytest.approx(info.input_pixel_size)


def test_reproducible_and_independent_of_n(tmp_path):
    a = synthesize_dataset("denoise", 2, tmp_path / "a", seed=1, size=16, test_fraction=0)
    b = synthesize_dataset("denoise", 3, tmp_path / "b", seed=1, size=16, test_fraction=0)
    for name in ("0000.tif", "0001.tif"):
        np.testing.assert_array_equal(
            read_image(a / "train/input" / name)[0], read_image(b / "train/input" / name)[0]
        )


def test_refuses_nonempty_and_overwrites(tmp_path):
    out = synthesize_dataset("sr", 2, tmp_path / "d", size=16)
    with pytest.raises(FileExistsError, match="not empty"):
        synthesize_dataset("sr", 2, out, size=16)
    synthesize_dataset("sr", 1, out, size=16, overwrite=True)
    assert load_dataset_info(out).counts == {"train": 1, "test": 0}
    with pytest.raises(ValueError, match="positive integer"):
        synthesize_dataset("sr", 0, tmp_path / "e")
    with pytest.raises(ValueError, match="test_fraction"):
        synthesize_dataset("sr", 2, tmp_path / "e", test_fraction=1.0)


def test_own_data_without_yaml_and_with_npy(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "train/target").mkdir(parents=True)
    for i in range(2):
        x = rng.random((6, 20, 20)).astype(np.float32)
        write_image(tmp_path / "train/input" / f"s{i}.ome.tif", x, "ZYX")
        np.save(tmp_path / "train/target" / f"s{i}.npy", x * 2)
    with pytest.raises(FileNotFoundError, match="at least 'task: <name>'"):
        load_dataset_info(tmp_path)
    info = load_dataset_info(tmp_path, "denoise")
    assert info.counts == {"train": 2, "test": 0}
    ds = PatchDataset(tmp_path, "denoise", patch_size=16, augment=False)
    assert ds[0]["input"].shape == (5, 16, 16)
    with pytest.raises(FileNotFoundError, match="test/input"):
        list_pairs(tmp_path, "test")


def test_yaml_validation(tmp_path):
    (tmp_path / "train/input").mkdir(parents=True)
    (tmp_path / "train/target").mkdir(parents=True)
    (tmp_path / "dataset.yaml").write_text("task: sr\ninput_axes: ZYX\n")
    with pytest.raises(ValueError, match="do not match task 'sr'"):
        load_dataset_info(tmp_path)
    (tmp_path / "dataset.yaml").write_text("task: [unclosed\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_dataset_info(tmp_path)
    (tmp_path / "dataset.yaml").write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="must contain a mapping"):
        load_dataset_info(tmp_path)
    (tmp_path / "dataset.yaml").write_text("task: denoise\npixel_size: {input: {X: -1}}\n")
    with pytest.raises(ValueError, match="must be positive"):
        load_dataset_info(tmp_path)
    (tmp_path / "dataset.yaml").write_text("task: isotropic\nz_factor: 0\n")
    with pytest.raises(ValueError, match="z_factor"):
        load_dataset_info(tmp_path)
    (tmp_path / "dataset.yaml").write_text("task: denoise\n")
    with pytest.raises(ValueError, match="holds a 'denoise' dataset"):
        load_dataset_info(tmp_path, "sr")
    (tmp_path / "dataset.yaml").write_text("task: deblur\n")
    with pytest.raises(ValueError, match="unknown task"):
        load_dataset_info(tmp_path)
    (tmp_path / "dataset.yaml").unlink()
    write_dataset_info(tmp_path, "sr", input_pixel_size={"X": 0.1, "Y": 0.1})
    assert load_dataset_info(tmp_path).input_pixel_size == {"X": 0.1, "Y": 0.1}


def test_unmatched_files(tmp_path):
    write_image(tmp_path / "train/input/a.tif", np.zeros((4, 4)), "YX")
    write_image(tmp_path / "train/target/b.tif", np.zeros((8, 8)), "YX")
    (tmp_path / "train/target/.hidden.tif").write_bytes(b"")
    with pytest.raises(ImageError, match=r"inputs without target: \S*input/a.tif.*targets without input: \S*target/b.tif"):
        list_pairs(tmp_path, "train")


@pytest.mark.parametrize("task", list(TASKS))
def test_patch_shapes_match_network_contract(datasets, task):
    spec = TASKS[task]
    p = PATCH[task]
    ds = PatchDataset(datasets[task], task, patch_size=p, length=5, seed=3)
    assert len(ds) == 5
    item = ds[4]
    x, y = item["input"], item["target"]
    assert x.dtype == torch.float32 and y.dtype == torch.float32
    assert x.shape[0] == spec.net_in_channels and y.shape[0] == spec.net_out_channels
    if task == "volumetric":
        assert x.shape[1:] == (p // spec.lenslets,) * 2 and y.shape[1:] == (p, p)
        # VCD range (read noise can dip slightly below zero photons, hence below -1)
        assert -1.1 <= float(x.min()) and float(x.max()) <= 2 / 1.1 - 1 + 1e-5
    else:
        assert x.shape[1:] == (p, p) and y.shape[1:] == (p * spec.scale,) * 2
    # deterministic for (seed, epoch, index); a new epoch draws new patches
    again = PatchDataset(datasets[task], task, patch_size=p, length=5, seed=3)[4]
    assert torch.equal(again["input"], x) and torch.equal(again["target"], y)
    ds.set_epoch(1)
    assert not torch.equal(ds[4]["input"], x)
    assert isinstance(ds._arrays(0)[0], np.memmap)  # memory-mapped, not loaded


def test_sr_augmentation_keeps_pairs_aligned(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(2):
        x = rng.random((20, 20)).astype(np.float32)
        write_image(tmp_path / f"train/input/{i}.tif", x, "YX")
        write_image(tmp_path / f"train/target/{i}.tif", np.kron(x, np.ones((2, 2), np.float32)), "YX")
    write_dataset_info(tmp_path, "sr")
    ds = PatchDataset(tmp_path, "sr", patch_size=8, length=16, normalize=False)
    for k in range(16):
        it = ds[k]
        np.testing.assert_array_equal(
            np.kron(it["input"][0].numpy(), np.ones((2, 2), np.float32)), it["target"][0].numpy()
        )


def test_volumetric_augmentation_consistent(tmp_path):
    rng = np.random.default_rng(1)
    lf = rng.random((44, 44)).astype(np.float32)
    write_image(tmp_path / "train/input/0.tif", lf, "YX")
    write_image(tmp_path / "train/target/0.tif", np.broadcast_to(lf, (61, 44, 44)).copy(), "ZYX")
    ds = PatchDataset(tmp_path, "volumetric", patch_size=22, length=12, normalize=False)
    for k in range(12):
        it = ds[k]
        np.testing.assert_array_equal(views_to_lightfield(it["input"].numpy()), it["target"][0].numpy())


def test_isotropic_slices_align_with_subsampling(tmp_path):
    rng = np.random.default_rng(2)
    tgt = rng.random((17, 12, 12)).astype(np.float32)
    write_image(tmp_path / "train/input/0.tif", tgt[::4], "ZYX")
    write_image(tmp_path / "train/target/0.tif", tgt, "ZYX")
    write_dataset_info(tmp_path, "isotropic", z_factor=4)
    ds = PatchDataset(tmp_path, "isotropic", patch_size=12, length=8, normalize=False, augment=False)
    for k in range(8):
        it = ds[k]
        x, y = it["input"][0].numpy(), it["target"][0].numpy()
        # rows are z; the crop starts at z0, rows with (z0 + r) % 4 == 0 are measured slices
        rows = [r for r in range(12) if np.allclose(x[r], y[r])]
        assert len(rows) == 3 and all((r - rows[0]) % 4 == 0 for r in rows)


def test_denoise_window_repeats_edges():
    stack = np.arange(6)[:, None, None] * np.ones((1, 2, 2))
    assert denoise_window(stack, 0)[:, 0, 0].tolist() == [0, 0, 0, 1, 2]
    assert denoise_window(stack, 5)[:, 0, 0].tolist() == [3, 4, 5, 5, 5]


def test_lightfield_view_order_and_inverse():
    n = 11
    img = np.arange(22 * 33).reshape(22, 33)
    v = lightfield_to_views(img, n)
    assert v.shape == (121, 2, 3)
    assert v[3 * n + 4, 1, 2] == img[1 * n + 3, 2 * n + 4]
    np.testing.assert_array_equal(views_to_lightfield(v), img)
    t = torch.arange(2 * 22 * 33).reshape(2, 22, 33)
    assert torch.equal(views_to_lightfield(lightfield_to_views(t)), t)
    with pytest.raises(ImageError, match="multiples"):
        lightfield_to_views(np.zeros((20, 22)))


def test_whole_image_pairs(datasets):
    got = list(whole_image_pairs(datasets["projection"], "projection", "test", with_names=True))
    assert len(got) == 1
    name, x, y = got[0]
    assert name == "0002" and x.shape == (50, 24, 24) and y.shape == (24, 24) and x.dtype == np.float32


def test_patch_dataset_errors(datasets):
    with pytest.raises(ValueError, match="multiple of 11"):
        PatchDataset(datasets["volumetric"], "volumetric", patch_size=20)
    with pytest.raises(ValueError, match="holds a 'sr' dataset"):
        PatchDataset(datasets["sr"], "denoise")
    with pytest.raises(ImageError, match="smaller than the patch"):
        PatchDataset(datasets["volumetric"], "volumetric", patch_size=55)[0]
    with pytest.raises(IndexError):
        PatchDataset(datasets["sr"], "sr", patch_size=8, length=2)[2]


def test_dataset_pickles_without_arrays_and_works_in_dataloader(datasets):
    import pickle

    ds = PatchDataset(datasets["denoise"], "denoise", patch_size=16, length=4)
    first = ds[1]
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._cache == {} and torch.equal(clone[1]["input"], first["input"])
    batches = list(torch.utils.data.DataLoader(ds, batch_size=2))
    assert [tuple(b["input"].shape) for b in batches] == [(2, 5, 16, 16)] * 2
    assert torch.equal(batches[0]["input"][1], first["input"])


def test_val_split_is_accepted(tmp_path):
    out = synthesize_dataset("sr", 2, tmp_path / "v", size=16, test_fraction=0)
    (out / "train").rename(out / "val")
    assert load_dataset_info(out).counts["val"] == 2
    assert len(list_pairs(out, "val")) == 2
    with pytest.raises(ValueError, match="folder name"):
        list_pairs(out, "../x")
