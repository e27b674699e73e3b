"""Fixtures of the bad-input tests: tiny checkpoints and datasets (built once), a fresh working folder
per test holding copies of them, and a folder this process cannot write."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from .clitestlib import FIXTURES, Watch, can_write

SIZES = {"sr": 16, "denoise": 16}


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def assets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small checkpoints (``sr.pt``, ``denoise.pt``, ``nan.pt``), datasets (``ds_sr``, ``ds_denoise``)
    and images (``img.tif`` YX, ``stack.tif`` ZYX) shared by the tests (read-only: tests copy them)."""
    from unifmir.data.io import write_image
    from unifmir.data.pairs import synthesize_dataset
    from unifmir.model.checkpoints import save_checkpoint
    from unifmir.model.factory import build_model

    root = tmp_path_factory.mktemp("assets")
    torch.manual_seed(0)
    for task in ("sr", "denoise"):
        save_checkpoint(root / f"{task}.pt", build_model(task, "small"))
        synthesize_dataset(task, 3, root / f"ds_{task}", seed=1, size=SIZES[task], test_fraction=0.34)
    nan_net = build_model("sr", "small")
    with torch.no_grad():
        next(iter(nan_net.parameters())).view(-1)[0] = float("nan")
    save_checkpoint(root / "nan.pt", nan_net)
    rng = np.random.default_rng(0)
    write_image(root / "img.tif", rng.random((24, 20)).astype(np.float32), "YX")
    write_image(root / "stack.tif", rng.random((3, 24, 20)).astype(np.float32), "ZYX")
    return root


@pytest.fixture()
def world(tmp_path: Path, assets: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working folder (also the current directory) holding copies of the assets."""
    w = tmp_path / "world"
    shutil.copytree(assets, w)
    monkeypatch.chdir(w)
    monkeypatch.setenv("UNIFMIR_CACHE", str(tmp_path / "cache"))  # nothing written to the user's home
    return w


@pytest.fixture()
def watch(world: Path, assets: Path):
    """``watch()`` snapshots the world and the shared assets; ``.assert_unchanged()`` after a refusal."""
    return lambda *extra: Watch(world, assets, *extra)


@pytest.fixture()
def official() -> dict[str, Path]:
    """The reference fixtures standing in for released checkpoints (compact format)."""
    return {name: FIXTURES / f"{name}.pt" for name in ("swinir_x2_in1", "swinir_x1_in5", "swinir_x1_in1")}


@pytest.fixture()
def unwritable(tmp_path: Path) -> Path:
    """A path (not existing) whose nearest existing folder this process cannot write.

    A read-only folder (mode 0555) for normal users; as root, whom permissions do not stop, a
    folder of a read-only kernel file system (/sys) instead.
    """
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    if not can_write(locked):
        yield locked / "out"
        locked.chmod(0o755)
        return
    locked.chmod(0o755)
    for candidate in (Path("/sys"), Path("/proc")):
        if candidate.is_dir() and not can_write(candidate):
            yield candidate / "unifmir-test-output"
            return
    pytest.fail("no folder this process cannot write (root without a read-only /sys or /proc): the "
                "unwritable-destination tests need one; run them as a normal user")
