"""`unifmir.training.api`: the one-call functions keep their public names whatever is imported."""

from __future__ import annotations

import importlib
import pkgutil
import types

import unifmir.training


def test_finetune_and_pretrain_stay_functions_after_every_training_module_is_imported() -> None:
    """A submodule named like a public function would replace it on the package when imported."""
    for info in pkgutil.iter_modules(unifmir.training.__path__):
        importlib.import_module(f"unifmir.training.{info.name}")
    from unifmir.training import api, finetune, pretrain

    assert finetune is api.finetune and pretrain is api.pretrain
    assert not isinstance(unifmir.training.finetune, types.ModuleType)
    assert not isinstance(unifmir.training.pretrain, types.ModuleType)
