"""Fixtures of the network tests."""

from __future__ import annotations

from typing import Iterator

import pytest
import torch


@pytest.fixture(params=["1-thread", "several-threads"])
def threads(request: pytest.FixtureRequest) -> Iterator[int]:
    """Run a test once with ``torch.set_num_threads(1)`` and once with several threads (the default
    count, at least 2: a parallel test worker's default may be 1)."""
    before = torch.get_num_threads()
    n = 1 if request.param == "1-thread" else max(2, before)
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)
