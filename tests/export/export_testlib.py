"""Helpers of the export tests: the small, seeded networks they export."""

from __future__ import annotations

import torch


def small_network(task: str) -> torch.nn.Module:
    """Seeded small network whose output depends on its input, as a trained network's does.

    With the reference initialisation (truncated normal, std 0.02) the volumetric UNetA stage
    passes almost no signal: its tanh output moves by ~0.1 % of its range when the input is
    shuffled, and the export's input-sensitivity gate rightly refuses it. Its convolutions get
    He initialisation here, which keeps the signal through the layers.
    """
    from unifmir.model.factory import build_model
    from unifmir.model.unet import UNetA

    torch.manual_seed(0)
    net = build_model(task, "small").eval()
    for unet in (m for m in net.modules() if isinstance(m, UNetA)):
        for conv in unet.modules():
            if isinstance(conv, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                torch.nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
    return net
