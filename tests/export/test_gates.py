"""`unifmir.export.gates`: JDLL's output-size rule, the tiling plan and the input-sensitivity gate
(the per-axis tiling gate on a real bundle: ``test_tiling_plans.py``).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from unifmir.export import gates


def test_jdll_rule_refuses_added_axis_without_singleton_input() -> None:
    """Why volumetric has a singleton z input: JDLL needs the fixed output axis in the input."""
    from bioimageio.spec.model import v0_5

    descr = SimpleNamespace(
        inputs=[SimpleNamespace(axes=[v0_5.BatchAxis(), v0_5.ChannelAxis(channel_names=["raw"]),
                                      v0_5.SpaceInputAxis(id="y", size=v0_5.ParameterizedSize(min=11, step=11)),
                                      v0_5.SpaceInputAxis(id="x", size=v0_5.ParameterizedSize(min=11, step=11))])],
        outputs=[SimpleNamespace(axes=[v0_5.BatchAxis(), v0_5.ChannelAxis(channel_names=["r"]),
                                       v0_5.SpaceOutputAxis(id="z", size=61)])],
    )
    with pytest.raises(ValueError, match="too complex for JDLL"):
        gates.jdll_output_shape(descr, {"b": 1, "c": 1, "y": 22, "x": 22})


@pytest.mark.parametrize("mn,st,h", [(56, 8, 24), (14, 2, 6), (33, 11, 11), (17, 1, 8), (16, 8, 0)])
def test_tiling_plan_gives_two_overlapping_blocks_per_axis(mn: int, st: int, h: int) -> None:
    """The gate's plan: bioimageio.core cuts each axis into two blocks, the second one shifted back
    (every edge kind occurs), with block starts on the step grid."""
    from bioimageio.core.block_meta import split_shape_into_blocks
    from bioimageio.spec.model import v0_5

    axis = v0_5.SpaceInputAxis(id=v0_5.AxisId("x"), size=v0_5.ParameterizedSize(min=mn, step=st))
    descr = SimpleNamespace(inputs=[SimpleNamespace(axes=[v0_5.BatchAxis(), axis])])
    ns, image = gates.tiling_plan(descr, {"x": h})
    block = mn + ns["x"] * st
    assert block < image["x"] and (block - mn) % st == 0
    ax = v0_5.AxisId("x")
    n, blocks = split_shape_into_blocks({ax: image["x"]}, {ax: block}, {ax: (h, h)})
    starts = [b.inner_slice[ax].start for b in blocks]
    assert n == 2 and starts[0] == 0 and 0 < starts[1] < block - 2 * h
    assert all((s - h) % st == 0 for s in starts[1:])  # padded block starts stay on the grid


def test_input_sensitivity_gate_fails_for_an_output_that_ignores_the_input() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((1, 1, 32, 32)).astype(np.float32)
    mean_volume = rng.random((1, 1, 32, 32))  # structured output, the same for every input

    def collapsed(a: np.ndarray) -> np.ndarray:
        return mean_volume + 1e-5 * a

    res = gates.gate_input_sensitivity(collapsed, x, collapsed(x))
    assert not res.ok and "ignores its input" in res.detail
    res = gates.gate_input_sensitivity(lambda a: a * 2.0, x, x * 2.0)
    assert res.ok, res.detail
