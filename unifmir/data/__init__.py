"""Data handling: image I/O and validation, normalisation, synthetic ground truth, per-task
forward models, the on-disk dataset layout and PyTorch training datasets.

Public names are imported lazily (:mod:`unifmir._lazy`; ``from unifmir.data import io`` or
``unifmir.data.read_image``) so that importing one part never pulls in torch or scipy unnecessarily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from unifmir._lazy import attach

if TYPE_CHECKING:
    from .datasets import PatchDataset, lightfield_to_views, views_to_lightfield, whole_image_pairs
    from .forward import SynthPair, make_pair, synthesize
    from .io import ImageError, ImageMeta, check_pair, read_image, validate_image, write_image
    from .normalize import (
        NormStats,
        denormalize,
        normalize_for_task,
        percentile_normalize,
        vcd_denormalize,
        vcd_normalize,
    )
    from .pairs import DatasetInfo, list_pairs, load_dataset_info, synthesize_dataset

__all__ = [
    "DatasetInfo",
    "ImageError",
    "ImageMeta",
    "NormStats",
    "PatchDataset",
    "SynthPair",
    "check_pair",
    "denormalize",
    "lightfield_to_views",
    "list_pairs",
    "load_dataset_info",
    "make_pair",
    "normalize_for_task",
    "percentile_normalize",
    "read_image",
    "synthesize",
    "synthesize_dataset",
    "validate_image",
    "vcd_denormalize",
    "vcd_normalize",
    "views_to_lightfield",
    "whole_image_pairs",
    "write_image",
]

if not TYPE_CHECKING:  # checkers see the imports above, not a catch-all __getattr__
    __getattr__, __dir__ = attach(__name__, __file__, __all__)
