"""Fixtures of the network tests."""

from __future__ import annotations

from typing import Iterator

import pytest
import torch


# torch's default thread count, at least 2: a parallel test worker's default may be 1 (read at
# import, before any test changes it)
SEVERAL_THREADS = max(2, torch.get_num_threads())


@pytest.fixture(params=["1-thread", "several-threads"])
def threads(request: pytest.FixtureRequest) -> Iterator[int]:
    """Run a test once with ``torch.set_num_threads(1)`` (the reference's bit-exact setting) and
    once with ``SEVERAL_THREADS``."""
    before = torch.get_num_threads()
    n = 1 if request.param == "1-thread" else SEVERAL_THREADS
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)
