"""Shared test configuration: fixture paths, the compact reference-fixture loader, and how the
suite is spread over CPU cores.

The suite runs in parallel with pytest-xdist (``-n auto`` in pyproject.toml; ``-n 0`` runs it in
one process). Each worker gets an equal share of the cores for PyTorch and for the subprocesses it
starts (``bioimageio test``), so two workers on a 2-core machine do not fight over threads.

Scheduling (``pytest_xdist_make_scheduler``): the tests of one module run in the same worker, so
module fixtures are built once, except the long end-to-end tests listed in ``SPREAD``, which are
handed out on their own. xdist's own ``--dist loadgroup`` cannot do this here: it renames the
collected items' ``_nodeid``, which pytest 9.2 no longer reads (items keep their plain id and no
group forms; pytest-dev/pytest-xdist#1386), so the rule lives in a small ``LoadScopeScheduling``
subclass that maps node ids to work units. Slow tests are collected first so that a long one does not end up alone at the tail.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
REFERENCE = FIXTURES / "unifmir-reference"
sys.path.insert(0, str(FIXTURES))  # makes `import compact` work in every test module
# (the test folders are packages: shared helpers are imported relatively, `from ..bundle_checks import ...`)

# long tests spread over the workers: "test" = one work unit per test, "param" = one unit per
# parameter id shared by the listed functions of the module (the export tests of one task share
# that task's exported bundle, a session fixture)
SPREAD: dict[str, str] = {
    "tests/export/test_end_to_end.py::test_export_end_to_end": "param",
    "tests/export/test_end_to_end.py::test_round_trip_matches_unifmir_predict": "param",
    "tests/export/test_end_to_end.py::test_official_full_size_checkpoint": "test",
    "tests/zoo/test_committed_bundles.py::test_bioimageio_test_predict_and_libtorch": "test",
}


def work_unit(nodeid: str) -> str:
    """The xdist work unit of a test: its module, or its own unit for the tests in ``SPREAD``."""
    module, _, rest = nodeid.partition("::")
    function, bracket, param = rest.partition("[")
    rule = SPREAD.get(f"{module}::{function}")
    if rule == "test":
        return nodeid
    if rule == "param" and bracket:
        return f"{module}[{param}"
    return module


def pytest_configure(config: pytest.Config) -> None:
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        share = max(1, (os.cpu_count() or 1) // int(workers))
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(share)  # subprocesses
        import torch

        torch.set_num_threads(share)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    class WorkUnitScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    config.option.loadscopereorder = False  # keep collection order: slow units first
    return WorkUnitScheduling(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: slow first


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """Folder of the UniFMIR reference fixtures (see its README.txt)."""
    return REFERENCE
