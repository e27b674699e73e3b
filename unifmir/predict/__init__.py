"""Prediction: whole-image task modules, exact tiling and the ``unifmir.predict`` function.

* :mod:`unifmir.predict.modules` - scriptable task modules (also used by the bioimage.io export);
* :mod:`unifmir.predict.tiling` - overlapping, window-aligned tiles with halo and blending;
* :mod:`unifmir.predict.receptive` - empirical receptive field (impulse response), cached;
* :mod:`unifmir.predict.api` - :func:`predict`.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from unifmir.predict.api import predict
from unifmir.predict.modules import TASK_MODULES, TaskModule, build_task_module

__all__ = ["predict", "TASK_MODULES", "TaskModule", "build_task_module"]


class _CallablePackage(types.ModuleType):
    """``unifmir.predict`` names both this package and the function :func:`predict`.

    Importing any submodule (``unifmir.predict.modules``, e.g. through the export layer) makes
    Python bind this package to the ``predict`` attribute of ``unifmir``, hiding the function;
    calling the package calls the function, so ``unifmir.predict(net, image)`` works either way.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return predict(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
