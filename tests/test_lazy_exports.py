"""The lazy package ``__init__`` files (:mod:`unifmir._lazy`): every public name resolves to the
object its ``TYPE_CHECKING`` import names, and importing a package imports none of them."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from unifmir._lazy import lazy_table

LAZY_PACKAGES = ["unifmir", "unifmir.data", "unifmir.export", "unifmir.training"]


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_public_names_resolve_to_their_type_checking_imports(package: str) -> None:
    pkg = importlib.import_module(package)
    table = lazy_table(package, pkg.__file__)
    assert set(pkg.__all__) - {"__version__"} == set(table)
    for name, (module, attr) in table.items():
        # the package's own lazy hook (an attribute already set, e.g. a submodule of the same name, would hide it)
        assert pkg.__getattr__(name) is getattr(importlib.import_module(module), attr), name
        assert name in dir(pkg)
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        getattr(pkg, "not_a_name")


def test_importing_the_packages_imports_nothing_heavy() -> None:
    code = (
        "import sys, unifmir, unifmir.data, unifmir.export, unifmir.training; "
        "print(sorted(m for m in ('torch', 'pydantic', 'bioimageio.spec', 'unifmir.tasks') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_unifmir_predict_stays_callable_after_its_submodules_are_imported() -> None:
    """Importing ``unifmir.predict.modules`` (the export layer does) binds the package to
    ``unifmir.predict``; the public function must still work through that name."""
    code = (
        "import numpy as np, torch, unifmir, unifmir.export.bundle, unifmir.predict.modules; "
        "torch.manual_seed(0); net = unifmir.build_model('denoise', 'small').eval(); "
        "out = unifmir.predict(net, np.random.default_rng(0).random((5, 16, 16), dtype=np.float32), task='denoise'); "
        "print(out.shape)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().splitlines()[-1] == "(5, 16, 16)"
