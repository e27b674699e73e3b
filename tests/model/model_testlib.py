"""Helpers for the network tests: reference fixtures rebuilt into exact state_dicts.

Import as ``from .model_testlib import ...`` (``tests`` and its folders are packages).
"""

from __future__ import annotations

import collections
import functools
import sys
from pathlib import Path
from typing import Any

import torch

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "fixtures"
if str(REFERENCE_DIR) not in sys.path:
    sys.path.insert(0, str(REFERENCE_DIR))
from compact import rebuild_state_dict  # noqa: E402  (tests/fixtures/compact.py)

REFERENCE = Path(__file__).resolve().parents[1] / "fixtures" / "unifmir-reference"
ATOL = 1e-5


@functools.lru_cache(maxsize=None)
def load_fixture(name: str) -> dict[str, Any]:
    """``torch.load`` a reference fixture file (``name`` without ``.pt``), weights_only."""
    return torch.load(REFERENCE / f"{name}.pt", weights_only=True)


@functools.lru_cache(maxsize=None)
def fixture_state_dict(name: str) -> "collections.OrderedDict[str, torch.Tensor]":
    """The exact reference state_dict of a fixture (``unimodel_small`` merged with UNetA keys)."""
    fx = load_fixture(name)
    if name != "unimodel_small":
        return rebuild_state_dict(fx)
    own = rebuild_state_dict({**fx, "key_order": fx["stored_keys"]})
    vol = fixture_state_dict(fx["external_keys"]["file"].removesuffix(".pt"))
    merged = dict(own)
    merged.update({k: vol[k] for k in fx["external_keys"]["keys"]})
    return collections.OrderedDict((k, merged[k]) for k in fx["key_order"])


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """Max absolute difference (shapes must match)."""
    assert a.shape == b.shape, f"shape {tuple(a.shape)} != {tuple(b.shape)}"
    return (a - b).abs().max().item()


