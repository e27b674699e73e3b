"""Shared test configuration: fixture paths and the compact reference-fixture loader."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
REFERENCE = FIXTURES / "unifmir-reference"
sys.path.insert(0, str(FIXTURES))  # makes `import compact` work in every test module


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """Folder of the UniFMIR reference fixtures (see its README.txt)."""
    return REFERENCE
