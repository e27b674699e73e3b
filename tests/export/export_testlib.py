"""Helpers of the export tests: the small, seeded networks they export."""

from __future__ import annotations

import torch


def small_network(task: str) -> torch.nn.Module:
    """Seeded small network whose output depends on its input, as a trained network's does
    (the volumetric UNetA's own He initialisation keeps the signal through its layers)."""
    from unifmir.model.factory import build_model

    torch.manual_seed(0)
    return build_model(task, "small").eval()
