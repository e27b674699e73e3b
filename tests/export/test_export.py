"""bioimage.io export: every task end to end (gates, shell `bioimageio test`/`predict`, libtorch 2.0.0,
round trip against `unifmir.predict`), plus the pieces (size rules, percentiles, architecture file).

Each task is exported once per session (small preset, seeded random weights); the end-to-end
checks share that bundle. Export timings are printed (``-s -n 0``) for the README benchmark.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from ..bundle_checks import assert_libtorch_reproduces_test_output, assert_shell_test_passes, shell_predict

from unifmir.export import describe as D
from unifmir.export import gates, tensors, weights
from unifmir.export.bundle import ExportReport, export_model
from unifmir.export.gates import GateError, GateResult
from unifmir.tasks import TASK_NAMES


def _small(task: str) -> torch.nn.Module:
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


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """task -> (net, ExportReport); exports lazily, once per session."""
    cache: dict[str, tuple[torch.nn.Module, ExportReport]] = {}
    root = tmp_path_factory.mktemp("bundles")

    def get(task: str) -> tuple[torch.nn.Module, ExportReport]:
        if task not in cache:
            from unifmir.export.libtorch_check import is_available

            net = _small(task)
            t0 = time.perf_counter()
            rep = export_model(net, task, root / f"{task}.zip", check_libtorch=True if is_available() else None)
            print(f"\nexport {task} (small): {time.perf_counter() - t0:.1f} s {rep.timings}")
            cache[task] = (net, rep)
        return cache[task]

    return get


# --------------------------------------------------------------------------------------------
# end to end, per task



@pytest.mark.slow
@pytest.mark.parametrize("task", TASK_NAMES)
def test_export_end_to_end(task: str, exported: Any, tmp_path: Path) -> None:
    net, rep = exported(task)
    assert rep.path.is_file()
    assert all(g.ok for g in rep.gates), rep.summary()
    names = {g.name for g in rep.gates}
    assert {"ilastik", "deepimagej", "tiled_vs_whole", "libtorch-2.0.0", "jdll-fields", "input-sensitivity"} <= names
    assert {f"test_model[{f}]" for f in rep.weight_formats} <= names
    assert rep.weight_formats[0] == "torchscript"
    with zipfile.ZipFile(rep.path) as z:
        rdf = z.read("rdf.yaml").decode()
        assert "README.md" in z.namelist() and "cover.png" in z.namelist()
        readme = z.read("README.md").decode()
    import yaml

    data = yaml.safe_load(rdf)
    assert list(data["weights"])[0] == "torchscript"  # deepImageJ takes the first usable format
    # what deepImageJ (JDLL 0.6.1) and ilastik's spec 0.5.9.1 read: plain paths, format 0.5.10
    assert data["format_version"] == "0.5.10"
    assert data["documentation"] == "README.md" and data["covers"] == ["cover.png"]
    assert all(w.get("parent") == "pytorch_state_dict" for k, w in data["weights"].items() if k != "pytorch_state_dict")
    assert data["config"]["unifmir"]["task"] == task and data["timestamp"]
    assert ("ilastik" in data["tags"]) == (task == "denoise")  # ilastik needs the input's spatial shape
    assert data["config"]["deepimagej"]["allow_tiling"] is True
    assert "github_user" not in rdf
    assert "# Validation" in readme and "10.1038/s41592-024-02244-3" in rdf

    assert_shell_test_passes(rep.path, tmp_path)

    # `bioimageio predict` on a TIFF (user axes, fresh image) gives the right shape
    layout = rep.layout
    shape = tensors.default_test_shape(layout)
    img = tensors.synthetic_input(task, shape, seed=7)
    tensors.write_sample_tiff(tmp_path / "in.tif", layout, img)
    got = shell_predict(rep.path, tmp_path / "in.tif", tmp_path)
    in_sizes = dict(zip(layout.user_in_axes.lower(), shape))
    assert got.shape == tuple(layout.out_size(a, in_sizes) for a in layout.user_out_axes.lower())

    # the TorchScript file loads and reproduces the test output in libtorch 2.0.0 (deepImageJ)
    with zipfile.ZipFile(rep.path) as z:
        z.extractall(tmp_path / "bundle")
    assert_libtorch_reproduces_test_output(tmp_path / "bundle")


@pytest.mark.slow
@pytest.mark.parametrize("task", TASK_NAMES)
def test_round_trip_matches_unifmir_predict(task: str, exported: Any) -> None:
    """bioimageio.core on the bundle == unifmir.predict on the same network (fresh image).

    Two bioimageio.core paths: the prediction pipeline on the image as is (what ``test_model``
    runs) must match everywhere; ``bioimageio.core.predict`` pads the image by the halo first
    (its whole-image mode) and normalises the padded image, which changes a border and shifts the
    percentiles slightly, so it is compared inside the halo with the block-artifact tolerance.
    """
    from bioimageio.core import Tensor, create_prediction_pipeline, load_model_description
    from bioimageio.core import predict as core_predict
    from bioimageio.core.digest_spec import create_sample_for_model

    from unifmir.data.normalize import denormalize, normalize_for_task
    from unifmir.predict.api import predict

    net, rep = exported(task)
    layout = rep.layout
    shape = tensors.default_test_shape(layout)
    img = tensors.synthetic_input(task, shape, seed=11)
    bio = D.user_to_bioimage(layout, img)
    descr = load_model_description(rep.path)
    _, stats = normalize_for_task(img.astype(np.float32), task)  # bundle output is in normalised units
    ref = predict(net, img, task=task)
    scale = float(np.abs(ref).max()) or 1.0

    pp = create_prediction_pipeline(descr, devices=["cpu"], weight_format="torchscript")
    dims = tuple(str(a.id) for a in descr.inputs[0].axes)
    sample = create_sample_for_model(descr, inputs={"input": Tensor(bio, dims=dims)}, sample_id="rt")
    out = pp.predict_sample_without_blocking(sample, skip_input_padding=True, skip_output_cropping=True)
    got = np.asarray(denormalize(D.bioimage_to_user(layout, np.asarray(out.members["output"].data)), stats))
    assert got.shape == ref.shape
    assert float(np.abs(got - ref).max()) <= 1e-3 * scale + 1e-4

    out = core_predict(model=descr, inputs={"input": bio})
    got = np.asarray(denormalize(D.bioimage_to_user(layout, np.asarray(out.members["output"].data)), stats))
    assert got.shape == ref.shape
    inner = tuple(
        slice(layout.halo.get(a, 0), n - layout.halo.get(a, 0)) for a, n in zip(layout.user_out_axes.lower(), ref.shape)
    )
    # core.predict normalises the halo-padded image (percentiles shift a little: ~0.7 % measured for
    # denoise) and the global stages (projection, volumetric) see the padding. Volumetric: the UNetA's
    # receptive field spans the whole small light-field test image, so the padding reaches every
    # output pixel (5.4 % of the output's scale measured with the He-initialised test network). The
    # exact check is the pipeline comparison above (1e-3).
    tol = {"projection": 0.05, "volumetric": 0.1}.get(task, 0.02)
    assert float(np.abs(got[inner] - ref[inner]).max()) <= tol * scale + 1e-4


# --------------------------------------------------------------------------------------------
# official-format, full-size checkpoints (SR, denoise)


@pytest.mark.slow
@pytest.mark.parametrize("name,task", [("swinir_x2_in1.pt", "sr"), ("swinir_x1_in5.pt", "denoise")])
def test_official_full_size_checkpoint(name: str, task: str, reference_dir: Path, tmp_path: Path) -> None:
    from unifmir.export.libtorch_check import is_available

    src = reference_dir / name
    out = tmp_path / f"{task}_full.zip"
    from unifmir.cli import main

    args = ["export", "--model", str(src), "--task", task, "--out", str(out), "--authors", "Test Author"]
    if is_available():
        args.append("--check-libtorch")
    t0 = time.perf_counter()
    assert main(args) == 0
    print(f"\nexport {task} (full, official {name}): {time.perf_counter() - t0:.1f} s")
    assert_shell_test_passes(out, tmp_path)


# --------------------------------------------------------------------------------------------
# pieces (fast)


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


@pytest.mark.parametrize("pct", [(2.0, 99.8), (0.0, 100.0), (1.0, 99.0)])
@pytest.mark.parametrize("shape", [(37, 41), (5, 23, 29), (64, 64)])
def test_percentile_preparation_makes_both_definitions_agree(pct: tuple[float, float], shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(sum(shape))
    x = rng.gamma(1.5, 30.0, size=shape).astype(np.float32)
    prepared = tensors.prepare_for_percentiles(x, pct)
    chk = tensors.check_percentile_agreement(prepared, pct)
    assert chk.ok, chk.describe()
    changed = np.count_nonzero(prepared != x)
    assert changed <= x.size * (pct[0] + 100 - pct[1]) / 100 + 6
    raw = tensors.check_percentile_agreement(x, (2.0, 99.8))
    assert not raw.ok or x.size < 100  # unprepared data generally disagree


def test_architecture_file_is_self_contained(tmp_path: Path) -> None:
    """The pytorch_state_dict architecture loads with `unifmir` not importable, same numbers."""
    task = "denoise"
    net = _small(task)
    layout = D.layout_for(task, window=8, halo=16)
    module = weights.build_export_module(net, task, layout)
    kwargs = weights.architecture_kwargs(net, task, layout)
    weights.write_architecture(tmp_path / weights.ARCHITECTURE_FILE, kwargs)
    weights.write_state_dict(tmp_path / "w.pt", module)
    x = torch.rand(1, 1, 6, 40, 40)
    with torch.no_grad():
        np.save(tmp_path / "x.npy", x.numpy())
        np.save(tmp_path / "y.npy", module(x).numpy())
    import yaml

    (tmp_path / "kw.yaml").write_text(yaml.safe_dump(kwargs))
    script = textwrap.dedent(f"""
        import sys, importlib.util
        sys.modules["unifmir"] = None  # any `import unifmir` now fails
        import numpy as np, torch, yaml
        spec = importlib.util.spec_from_file_location("arch", {str(tmp_path / weights.ARCHITECTURE_FILE)!r})
        mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
        kw = yaml.safe_load(open({str(tmp_path / "kw.yaml")!r}))
        m = mod.{weights.ARCHITECTURE_CALLABLE}(**kw)
        m.load_state_dict(torch.load({str(tmp_path / "w.pt")!r}, weights_only=True))
        with torch.no_grad():
            y = m.eval()(torch.from_numpy(np.load({str(tmp_path / "x.npy")!r})))
        d = float((y - torch.from_numpy(np.load({str(tmp_path / "y.npy")!r}))).abs().max())
        assert d < 1e-5, d
        assert not any(k == "unifmir" or k.startswith("unifmir.") for k, v in sys.modules.items() if v is not None)
        print("OK", d)
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    res = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0 and "OK" in res.stdout, res.stderr[-3000:]


def test_export_never_overwrites_without_force(tmp_path: Path) -> None:
    out = tmp_path / "m.zip"
    out.write_bytes(b"keep")
    with pytest.raises(FileExistsError):
        export_model(_small("sr"), "sr", out)
    assert out.read_bytes() == b"keep"


def test_failing_gate_leaves_no_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gates, "gate_ilastik", lambda descr: GateResult("ilastik", False, "forced failure"))
    out = tmp_path / "m.zip"
    with pytest.raises(GateError, match="forced failure"):
        export_model(_small("sr"), "sr", out, onnx=False, check_libtorch=False)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_cli_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from unifmir.cli import main

    assert main(["export", "--model", str(tmp_path / "nope.pt"), "--task", "sr", "--out", str(tmp_path / "a.zip")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err
    ck = tmp_path / "c.pt"
    ck.write_bytes(b"x")
    assert main(["export", "--model", str(ck), "--task", "sr", "--out", str(tmp_path / "a.txt")]) == 2
    assert "must end in .zip" in capsys.readouterr().err


def test_export_code_never_imports_training() -> None:
    code = "import sys, unifmir.export.bundle, unifmir.cli.export; " \
           "bad=[m for m in sys.modules if m.startswith('unifmir.training')]; assert not bad, bad"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr


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
