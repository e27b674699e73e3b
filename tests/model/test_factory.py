"""``ModelConfig`` / presets / ``build_model``: what users configure and get back."""

from __future__ import annotations

import pytest
import torch

from unifmir.model import PRESETS, ModelConfig, ProjectionNet, SwinIRNet, UniFMIR, VolumetricNet, build_model, resolve_config
from unifmir.tasks import TASKS


def test_presets_and_resolution() -> None:
    assert PRESETS["full"] == ModelConfig()
    assert resolve_config("small") is PRESETS["small"]
    cfg = resolve_config({"preset": "small", "attention": "matmul"})
    assert cfg.attention == "matmul" and cfg.embed_dim == PRESETS["small"].embed_dim
    assert resolve_config({"depths": [2, 2], "num_heads": [3, 3]}).depths == (2, 2)
    with pytest.raises(ValueError, match="unknown model preset 'tiny'; choose one of full, small"):
        resolve_config("tiny")


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"num_heads": (6, 6)}, "one entry per stage"),
        ({"embed_dim": 91}, "divisible by every num_heads"),
        ({"upscale": 5}, "upscale must be"),
        ({"enlcn_feats": 30}, "divisible by 4"),
        ({"attention": "flash"}, "attention"),
        ({"embed_dims": 90}, "embed_dims"),
        ({"unet_stem": 48}, "unet_stem must be a positive multiple of 32"),
        ({"unet_widths": (16, 64, 32)}, "non-decreasing"),
    ],
)
def test_config_rejects_invalid(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModelConfig(**fields)


@pytest.mark.parametrize("task", [None, *TASKS])
def test_build_model_small(task: str | None) -> None:
    model = build_model(task, "small")
    assert model.task == task and model.config == PRESETS["small"]
    expected = {None: UniFMIR, "sr": SwinIRNet, "denoise": SwinIRNet, "isotropic": SwinIRNet,
                "projection": ProjectionNet, "volumetric": VolumetricNet}[task]
    assert type(model) is expected


@pytest.mark.parametrize("task", [t for t in TASKS if t != "volumetric"])
def test_single_task_shapes_follow_the_registry(task: str) -> None:
    spec = TASKS[task]
    model = build_model(task, "small").eval()
    x = torch.rand(2, spec.net_in_channels, 12, 20)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, spec.net_out_channels, 12 * spec.scale, 20 * spec.scale)
    if spec.two_stage:
        with torch.no_grad():
            stages = model(x, return_stages=True)
        assert len(stages) == 2 and torch.equal(stages[1], y)


def test_overrides_in_chans_and_upscale() -> None:
    model = build_model("sr", {"preset": "small", "upscale": 1, "in_chans": 3}).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 10, 9)).shape == (1, 1, 10, 9)
    with pytest.raises(ValueError, match="in_chans applies to single-task models only"):
        build_model(None, {"in_chans": 3})


def test_unimodel_projection_variant_does_not_crop() -> None:
    model = build_model("projection", {"preset": "small", "projection_variant": "unimodel"}).eval()
    with torch.no_grad():
        stage1, out = model(torch.rand(1, 50, 10, 13), return_stages=True)
    assert stage1.shape == out.shape == (1, 1, 16, 16)


def test_multitask_forward_by_name_and_index() -> None:
    model = build_model(None, "small").eval()
    x = torch.rand(1, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(x, task="sr"), model(x, 1))
        assert model(x, task="isotropic").shape == (1, 1, 8, 8)
        s1, out = model(torch.rand(1, 50, 8, 8), task="projection", return_stages=True)
    assert s1.shape == out.shape == (1, 1, 8, 8)
    with pytest.raises(ValueError, match="unknown task"):
        model(x, task="deblur")


def test_small_preset_trains_one_step() -> None:
    torch.manual_seed(0)
    model = build_model("sr", "small")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.rand(2, 1, 16, 16), torch.rand(2, 1, 32, 32)
    loss = torch.nn.functional.l1_loss(model(x), y)
    loss.backward()
    opt.step()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_too_small_input_gives_a_clear_error() -> None:
    model = build_model("isotropic", "small").eval()
    with pytest.raises(ValueError, match="too small to reflect-pad to a multiple of 8; give at least 5 pixels"):
        model(torch.rand(1, 1, 4, 16))
    with torch.no_grad():
        assert model(torch.rand(1, 1, 5, 16)).shape == (1, 1, 5, 16)


def test_compact_unet_volumetric_network() -> None:
    """A narrower UNetA (the suite's volumetric recipe) keeps every shape and cuts 19 M to 1.65 M."""
    compact = {"preset": "small", "unet_stem": 64, "unet_widths": (16, 32, 64, 128, 128, 128)}
    ref = build_model("volumetric", "small")
    net = build_model("volumetric", compact).eval()
    n_ref = sum(p.numel() for p in ref.parameters())
    n = sum(p.numel() for p in net.parameters())
    assert n_ref > 19_000_000 and n == 1_652_988
    assert [k for k in net.state_dict()] == [k for k in ref.state_dict()]  # same names, other shapes
    with torch.no_grad():
        stage1, out = net(torch.rand(1, 121, 8, 8), return_stages=True)
    assert stage1.shape == out.shape == (1, 61, 88, 88)
    multi = build_model(None, compact)
    assert multi.conv_first0.conv2d.out_channels == 64
