"""Every reference fixture case reproduced within atol 1e-5 (README.txt sections 3-5).

Models are built by hand from the fixtures' configurations (the checkpoint loader has its own
tests); each case runs with 1 thread and with the default thread count, and the SwinIR-bearing
cases with both attention implementations.
"""

from __future__ import annotations

import functools

import pytest
import torch

from unifmir.model.single import ProjectionNet, SwinIRNet, VolumetricNet
from unifmir.model.multitask import UniFMIR

from .model_testlib import ATOL, fixture_state_dict, load_fixture, max_diff

SWINIR = {"swinir_x2_in1": (2, 1), "swinir_x1_in1": (1, 1), "swinir_x1_in5": (1, 5)}
ATTENTIONS = ["sdpa", "matmul"]


def _loaded(net: torch.nn.Module, name: str) -> torch.nn.Module:
    sd = fixture_state_dict(name)
    assert list(net.state_dict()) == list(sd), "key order differs from the reference"
    net.load_state_dict(sd, strict=True)
    return net.eval()


@functools.lru_cache(maxsize=None)
def swinir_net(name: str) -> SwinIRNet:
    upscale, in_chans = SWINIR[name]
    return _loaded(SwinIRNet(upscale=upscale, in_chans=in_chans), name)


@functools.lru_cache(maxsize=None)
def projection_net() -> ProjectionNet:
    cfg = load_fixture("swinirProj_stage2_small")["config"]
    kw, args = cfg["swinirProj_stage2_kwargs"], cfg["args_namespace"]
    net = ProjectionNet(
        img_size=kw["img_size"],
        in_chans=args["inch"],
        out_chans=kw["out_chans"],
        embed_dim=kw["embed_dim"],
        depths=tuple(kw["depths"]),
        num_heads=tuple(kw["num_heads"]),
        window_size=kw["window_size"],
        mlp_ratio=kw["mlp_ratio"],
        num_feat=kw["num_feat"],
        enlcn_feats=args["n_feats"],
        enlcn_resblocks=args["n_resblocks"],
        enlcn_res_scale=args["res_scale"],
    )
    return _loaded(net, "swinirProj_stage2_small")


@functools.lru_cache(maxsize=None)
def volumetric_net() -> VolumetricNet:
    return _loaded(VolumetricNet(in_chans=121, out_chans=61), "swinir2dto3d")


@functools.lru_cache(maxsize=None)
def unimodel_net() -> UniFMIR:
    cfg = load_fixture("unimodel_small")["config"]
    kw, args = cfg["UniModel_kwargs"], cfg["args_namespace"]
    net = UniFMIR(
        img_size=kw["img_size"],
        embed_dim=kw["embed_dim"],
        depths=tuple(kw["depths"]),
        num_heads=tuple(kw["num_heads"]),
        window_size=kw["window_size"],
        mlp_ratio=kw["mlp_ratio"],
        num_feat=kw["num_feat"],
        sr_scale=kw["srscale"],
        enlcn_feats=args["n_feats"],
        enlcn_resblocks=args["n_resblocks"],
        enlcn_res_scale=args["res_scale"],
    )
    return _loaded(net, "unimodel_small")


def _cases(fx: dict) -> list[dict]:
    main = {k: fx[k] for k in ("input", "output", "output_stage1") if k in fx}
    return [{"name": "main", **main}, *fx.get("extra_cases", [])]


@pytest.mark.parametrize("attention", ATTENTIONS)
@pytest.mark.parametrize("name", sorted(SWINIR))
def test_swinir(name: str, attention: str, threads: int) -> None:
    net = swinir_net(name)
    net.set_attention(attention)
    try:
        for case in _cases(load_fixture(name)):
            with torch.no_grad():
                out = net(case["input"].clone())
            assert max_diff(out, case["output"]) <= ATOL, (name, case["name"])
    finally:
        net.set_attention("sdpa")


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_projection_small(attention: str, threads: int) -> None:
    net = projection_net()
    net.set_attention(attention)
    try:
        cases = _cases(load_fixture("swinirProj_stage2_small"))
        assert [c["name"] for c in cases] == ["main", "pad", "img_size_32"]
        for case in cases:
            with torch.no_grad():
                stage1, out = net(case["input"].clone(), return_stages=True)
                final = net(case["input"].clone())
            assert max_diff(stage1, case["output_stage1"]) <= ATOL, case["name"]
            assert max_diff(out, case["output"]) <= ATOL, case["name"]
            assert torch.equal(final, out)
    finally:
        net.set_attention("sdpa")


def test_projection_matrix_is_stored_not_redrawn() -> None:
    net = projection_net()
    sd = fixture_state_dict("swinirProj_stage2_small")
    keys = [k for k in sd if k.endswith("projection_matrix")]
    assert len(keys) == 3
    x = load_fixture("swinirProj_stage2_small")["input"]
    with torch.no_grad():
        net(x.clone())
        net(x.clone())
    state = net.state_dict()
    for k in keys:
        assert torch.equal(state[k], sd[k]), k


def test_volumetric(threads: int) -> None:
    fx = load_fixture("swinir2dto3d")
    net = volumetric_net()
    with torch.no_grad():
        stage1, out = net.forward_stages(fx["input"].clone())
        final = net(fx["input"].clone())
    assert max_diff(stage1, fx["output_stage1"]) <= ATOL
    assert max_diff(out, fx["output"]) <= ATOL
    assert torch.equal(final, out)


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_unimodel_all_tasks(attention: str, threads: int) -> None:
    fx = load_fixture("unimodel_small")
    net = unimodel_net()
    net.set_attention(attention)
    names = {1: "sr", 2: "denoise", 3: "isotropic", 4: "projection", 5: "volumetric"}
    try:
        assert {c["task"] for c in fx["cases"].values()} == set(names)
        for case_name, case in fx["cases"].items():
            # alternate the two accepted task spellings: the reference index and the task name
            task = case["task"] if case_name.endswith("pad") else names[case["task"]]
            with torch.no_grad():
                y = net(case["input"].clone(), task=task, return_stages=True)
            if "output_stage1" in case:
                assert max_diff(y[0], case["output_stage1"]) <= ATOL, case_name
            final = y[-1] if isinstance(y, tuple) else y
            assert max_diff(final, case["output"]) <= ATOL, case_name
    finally:
        net.set_attention("sdpa")


def test_unimodel_projection_variant_matches_unimodel_task4() -> None:
    """ProjectionNet(variant="unimodel") with UniModel weights = UniModel task 4 (no skip, no crop)."""
    uni = fixture_state_dict("unimodel_small")
    body = ("patch_embed.", "layers.", "norm.", "conv_after_body.")
    rename = {"conv_firstproj.": "conv_first.", "conv_before_upsample0.": "conv_before_upsample.", "conv_last0.": "conv_last."}
    sd = {}
    for k, v in uni.items():
        if k.startswith("project."):
            sd[k] = v
        elif k.startswith(body):
            sd["denoise." + k] = v
        else:
            for old, new in rename.items():
                if k.startswith(old):
                    sd["denoise." + new + k[len(old):]] = v
    net = ProjectionNet(embed_dim=90, enlcn_feats=32, enlcn_resblocks=16, variant="unimodel")
    net.load_state_dict(sd, strict=True)
    net.eval()
    for name in ("task4_proj", "task4_proj_pad"):
        case = load_fixture("unimodel_small")["cases"][name]
        with torch.no_grad():
            stage1, out = net.forward_stages(case["input"].clone())
        assert max_diff(stage1, case["output_stage1"]) <= ATOL, name
        assert max_diff(out, case["output"]) <= ATOL, name
