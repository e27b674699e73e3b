"""Prediction: whole-image task modules, exact tiling and the ``unifmir.predict`` function.

* :mod:`unifmir.predict.modules` - scriptable task modules (also used by the bioimage.io export);
* :mod:`unifmir.predict.tiling` - overlapping, window-aligned tiles with halo and blending;
* :mod:`unifmir.predict.receptive` - empirical receptive field (impulse response), cached;
* :mod:`unifmir.predict.api` - :func:`predict`.
"""

from __future__ import annotations

from unifmir.predict.api import predict
from unifmir.predict.modules import TASK_MODULES, TaskModule, build_task_module

__all__ = ["predict", "TASK_MODULES", "TaskModule", "build_task_module"]
