"""Data handling: image I/O and validation, normalisation, synthetic ground truth, per-task
forward models, the on-disk dataset layout and PyTorch training datasets.

Submodules are imported lazily (``from unifmir.data import io`` or ``unifmir.data.read_image``)
so that importing one part never pulls in torch or scipy unnecessarily.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "read_image": "io",
    "write_image": "io",
    "validate_image": "io",
    "check_pair": "io",
    "ImageMeta": "io",
    "ImageError": "io",
    "percentile_normalize": "normalize",
    "denormalize": "normalize",
    "vcd_normalize": "normalize",
    "vcd_denormalize": "normalize",
    "normalize_for_task": "normalize",
    "NormStats": "normalize",
    "make_pair": "forward",
    "synthesize": "forward",
    "SynthPair": "forward",
    "synthesize_dataset": "pairs",
    "load_dataset_info": "pairs",
    "list_pairs": "pairs",
    "DatasetInfo": "pairs",
    "PatchDataset": "datasets",
    "whole_image_pairs": "datasets",
    "lightfield_to_views": "datasets",
    "views_to_lightfield": "datasets",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'unifmir.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{mod}"), name)
    globals()[name] = value
    return value
