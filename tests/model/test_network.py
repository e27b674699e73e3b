"""The typed accessors of :mod:`unifmir.model.network` (what the package reads instead of probing
network attributes)."""

from __future__ import annotations

import pytest
from torch import nn

from unifmir.model.config import PRESETS
from unifmir.model.factory import build_model
from unifmir.model.network import has_config, input_channels, network_config, network_task, upscale
from unifmir.model.single import SwinIRNet


def test_build_model_attaches_the_resolved_config() -> None:
    net = build_model("denoise", {"preset": "small", "in_chans": 1})
    assert has_config(net) and network_config(net) == PRESETS["small"].model_copy(update={"in_chans": 1})
    assert network_task(net) == "denoise" and input_channels(net) == 1 and upscale(net) == 1


def test_multi_task_and_foreign_modules() -> None:
    multi = build_model(None, "small")
    assert network_task(multi) is None and input_channels(multi) is None and upscale(multi) is None
    foreign = nn.Conv2d(1, 1, 3)
    setattr(foreign, "task", "sr")  # a look-alike attribute does not make a unifmir network
    assert network_task(foreign) is None and not has_config(foreign)


def test_a_network_built_without_the_factory_has_no_config() -> None:
    net = SwinIRNet(embed_dim=12, depths=(1,), num_heads=(2,), upscale=2, task="sr")
    assert network_task(net) == "sr" and upscale(net) == 2 and not has_config(net)
    with pytest.raises(ValueError, match=r"SwinIRNet\) has no \.config .*build_model or load_any"):
        network_config(net)


def test_new_uneta_starts_near_the_vcd_background() -> None:
    """VCD normalisation puts the (mostly empty) volume at -1: a fresh UNetA starts there, not at
    tanh(0) = 0 (from bias 0, Adam needs ~1/lr steps to get there)."""
    import torch

    from unifmir.model.unet import UNetA

    torch.manual_seed(0)
    out = UNetA(121, 61, 64, (16, 32, 64, 128, 128, 128)).train()(torch.randn(2, 121, 8, 8))
    assert float(out.mean()) < -0.6
