from __future__ import annotations

from pathlib import Path

import pytest
import torch

from .train_testlib import synth


@pytest.fixture(autouse=True)
def _threads() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory):
    """Factory: ``data_root(task)`` -> a cached tiny dataset folder of ``task``."""
    base = tmp_path_factory.mktemp("train-data")
    cache: dict[str, Path] = {}

    def get(task: str) -> Path:
        if task not in cache:
            cache[task] = synth(task, base / task, n=3)
        return cache[task]

    return get
