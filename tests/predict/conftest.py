"""Fixtures for the prediction tests: small random networks per task and a stand-in window net."""

from __future__ import annotations

import os
from typing import Dict

import pytest
import torch
from torch import nn

from .predict_testlib import WindowNet


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep the receptive-field disk cache out of the user's home."""
    old = os.environ.get("UNIFMIR_CACHE_DIR")
    os.environ["UNIFMIR_CACHE_DIR"] = str(tmp_path_factory.mktemp("unifmir-cache"))
    yield
    if old is None:
        os.environ.pop("UNIFMIR_CACHE_DIR", None)
    else:
        os.environ["UNIFMIR_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def window_net() -> WindowNet:
    torch.manual_seed(0)
    return WindowNet().eval()


_NETS: Dict[str, nn.Module] = {}


def small_net(task: str) -> nn.Module:
    """A seeded small-preset network of ``task`` (built once per session)."""
    if task not in _NETS:
        from unifmir.model.factory import build_model

        torch.manual_seed(1234)
        _NETS[task] = build_model(task, "small").eval()
    return _NETS[task]


@pytest.fixture(scope="session")
def nets() -> "type[small_net]":
    return small_net  # type: ignore[return-value]
