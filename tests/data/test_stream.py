"""Stream datasets: training pairs drawn on the fly, shaped and normalised as file pairs are."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from unifmir.data.datasets import PatchDataset, validate_dataset
from unifmir.data.pairs import load_dataset_info, synthesize_dataset
from unifmir.data.stream import StreamDataset
from unifmir.training.loop import make_dataset


@pytest.mark.parametrize("task,cin,out", [("sr", 1, 64), ("denoise", 5, 32)])
def test_items_have_the_network_shapes_of_file_pairs(task: str, cin: int, out: int) -> None:
    ds = StreamDataset(task, patch_size=32, seed=0, length=6)
    item = ds[0]
    assert tuple(item["input"].shape) == (cin, 32, 32) and tuple(item["target"].shape) == (1, out, out)
    # normalised with the task's percentiles over the whole rendered image
    x = ds[1]["input"].numpy()
    assert -1.0 < float(np.median(x)) < 1.5


def test_items_are_a_function_of_seed_epoch_index_and_epochs_differ() -> None:
    a = StreamDataset("sr", patch_size=32, seed=5, length=4)
    b = StreamDataset("sr", patch_size=32, seed=5, length=4)
    assert np.array_equal(a[3]["input"].numpy(), b[3]["input"].numpy())
    first = a[3]["input"].numpy()
    a.set_epoch(1)
    assert not np.array_equal(first, a[3]["input"].numpy())
    with pytest.raises(IndexError):
        a[4]


def test_randomized_synth_writes_held_out_pairs_and_a_stream(tmp_path: Path) -> None:
    root = synthesize_dataset("sr", 3, tmp_path / "ds", seed=2, size=32, randomized=True, epoch_size=40)
    info = load_dataset_info(root)
    assert info.stream == {"seed": 3, "image_size": 32, "epoch_size": 40}
    assert info.counts["train"] == 0 and info.counts["test"] == 3
    assert "photo-electrons" in info.provenance["operating_range"]
    assert validate_dataset(root, "sr", ("train", "test")) == {"test": 3}  # train is the stream
    train = make_dataset(root, "sr", "train", 16, seed=0, length=None, augment=True)
    test = make_dataset(root, "sr", "test", 16, seed=0, length=None, augment=False)
    assert isinstance(train, StreamDataset) and len(train) == 40 and train.image_size == 32
    assert type(test) is PatchDataset and len(test) == 3


def test_a_bad_stream_entry_names_the_key(tmp_path: Path) -> None:
    root = synthesize_dataset("sr", 2, tmp_path / "ds", size=32, randomized=True)
    doc = yaml.safe_load((root / "dataset.yaml").read_text())
    doc["stream"]["epoch_size"] = 0
    (root / "dataset.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(ValueError, match="stream.epoch_size must be a positive integer"):
        load_dataset_info(root)


def test_image_smaller_than_patch_is_refused() -> None:
    with pytest.raises(ValueError, match="smaller than the patch"):
        StreamDataset("sr", patch_size=64, image_size=32)
