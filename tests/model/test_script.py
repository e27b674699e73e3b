"""Every single-task network scripts with ``torch.jit.script`` and matches eager at two sizes.

Also checks that the scripted code avoids ops libtorch 2.0.0 lacks (no ``F.interpolate``
machinery, no ``scale=`` keyword of scaled_dot_product_attention).
"""

from __future__ import annotations

import io
import re
import zipfile

import pytest
import torch

from .model_testlib import ATOL, fixture_state_dict, load_fixture, max_diff
from unifmir.model import build_model
from unifmir.model.single import ProjectionNet, SwinIRNet
from unifmir.tasks import TASKS

pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.jit.save` is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning"),
]

# input sizes (H, W): two per task, one a multiple of the window (8), one needing padding
SIZES = {"volumetric": [(8, 8), (5, 7)]}
DEFAULT_SIZES = [(16, 24), (20, 13)]


def _check_scripted(model: torch.nn.Module, in_chans: int, sizes: list[tuple[int, int]], stages: bool) -> torch.jit.ScriptModule:
    model.eval()
    scripted = torch.jit.script(model)
    gen = torch.Generator().manual_seed(0)
    for h, w in sizes:
        x = torch.rand(1, in_chans, h, w, generator=gen)
        with torch.no_grad():
            assert max_diff(scripted(x), model(x)) <= ATOL, (h, w)
            if stages:
                for a, b in zip(scripted(x, True), model.forward_stages(x)):
                    assert max_diff(a, b) <= ATOL, (h, w)
    return scripted


def _scripted_source(scripted: torch.jit.ScriptModule) -> str:
    buf = io.BytesIO()
    torch.jit.save(scripted, buf)
    with zipfile.ZipFile(buf) as z:
        return "\n".join(z.read(n).decode() for n in z.namelist() if n.endswith(".py"))


@pytest.mark.parametrize("attention", ["sdpa", "matmul"])
@pytest.mark.parametrize("task", list(TASKS))
def test_small_preset_scripts(task: str, attention: str) -> None:
    torch.manual_seed(0)
    model = build_model(task, {"preset": "small", "attention": attention})
    spec = TASKS[task]
    scripted = _check_scripted(model, spec.net_in_channels, SIZES.get(task, DEFAULT_SIZES), spec.two_stage)
    source = _scripted_source(scripted)
    assert "interpolate" not in source
    assert "_upsample_" not in source  # e.g. aten::_upsample_bilinear2d_aa / lanczos, not in libtorch 2.0
    for call in re.findall(r"scaled_dot_product_attention\([^\n]*", source):
        assert "scale=" not in call


def test_unimodel_projection_variant_scripts() -> None:
    torch.manual_seed(0)
    model = build_model("projection", {"preset": "small", "projection_variant": "unimodel"})
    _check_scripted(model, 50, DEFAULT_SIZES, stages=True)


def test_fixture_configs_script_and_reproduce() -> None:
    """The small projection fixture and the full-size SR fixture, scripted, reproduce the reference
    at all their input sizes (stored-mask size, window multiple, padded)."""
    fx = load_fixture("swinirProj_stage2_small")
    kw, args = fx["config"]["swinirProj_stage2_kwargs"], fx["config"]["args_namespace"]
    proj = ProjectionNet(
        img_size=kw["img_size"], embed_dim=kw["embed_dim"], depths=tuple(kw["depths"]), num_heads=tuple(kw["num_heads"]),
        enlcn_feats=args["n_feats"], enlcn_resblocks=args["n_resblocks"],
    )
    proj.load_state_dict(fixture_state_dict("swinirProj_stage2_small"))
    scripted = torch.jit.script(proj.eval())
    for case in [fx, *fx["extra_cases"]]:
        with torch.no_grad():
            stage1, out = scripted(case["input"].clone(), True)
        assert max_diff(stage1, case["output_stage1"]) <= ATOL
        assert max_diff(out, case["output"]) <= ATOL

    sr = SwinIRNet(upscale=2, in_chans=1)
    sr.load_state_dict(fixture_state_dict("swinir_x2_in1"))
    scripted = torch.jit.script(sr.eval())
    fx = load_fixture("swinir_x2_in1")
    for case in [fx, *fx["extra_cases"]]:
        with torch.no_grad():
            assert max_diff(scripted(case["input"].clone()), case["output"]) <= ATOL
