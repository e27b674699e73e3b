"""`unifmir.export.describe`: the tensor layout's sizes obey both size rules (bioimage.io 0.5 and JDLL).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from unifmir.export import describe as D
from unifmir.export import gates
from unifmir.tasks import TASK_NAMES


@pytest.mark.parametrize("task", TASK_NAMES)
def test_layout_sizes_follow_both_size_rules(task: str) -> None:
    """0.5 formula and JDLL's TileMaker rule give the same output sizes for each task."""
    from bioimageio.spec.model import v0_5

    layout = D.layout_for(task, window=8, halo=16)
    in_axes = [D._in_axis(layout, a) for a in layout.in_axes]
    out_axes = [D._out_axis(layout, a) for a in layout.out_axes]
    descr = SimpleNamespace(
        inputs=[SimpleNamespace(id="input", axes=[v0_5.BatchAxis(), v0_5.ChannelAxis(channel_names=["raw"]), *in_axes])],
        outputs=[SimpleNamespace(id="output", axes=[v0_5.BatchAxis(), v0_5.ChannelAxis(channel_names=["r"]), *out_axes])],
    )
    for n in range(3):
        sizes = gates._valid_input_sizes(descr, n)
        jd = gates.jdll_output_shape(descr, sizes)
        for ax in out_axes:
            a = str(ax.id)
            if isinstance(ax.size, int):
                core = ax.size
            else:
                ref = next(x for x in in_axes if str(x.id) == str(ax.size.axis_id))
                core = sizes[a] * ref.scale / ax.scale + ax.size.offset
            assert jd[a] == core == layout.out_size(a, sizes)
            halo = getattr(ax, "halo", 0)
            assert float(halo * ax.scale / next(x for x in in_axes if str(x.id) == a).scale).is_integer() if halo else True
    if task == "sr":
        assert [x.scale for x in in_axes] == [4.0, 4.0] and [x.scale for x in out_axes] == [2.0, 2.0]
    if task == "volumetric":
        assert layout.singleton_in == ("z",) and layout.fixed_out == {"z": 61}
    if task == "isotropic":
        # blocks start on even input slices, i.e. on the window grid of the 4x upsampled stack
        f = layout.up["z"]
        assert (layout.step["z"] * f) % 8 == 0 and (layout.halo["z"] // f) % layout.step["z"] == 0
        assert layout.min_size["z"] % layout.step["z"] == 0 and layout.halo["z"] >= 16
