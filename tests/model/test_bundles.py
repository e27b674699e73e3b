"""unifmir reads its own bioimage.io bundles (:mod:`unifmir.model.bundles`, through ``load_any``).

* every committed suite bundle loads from its zip, its folder and its rdf.yaml (same weights), and
  the loaded network reproduces the bundle's own test output;
* a freshly exported bundle gives back exactly the exported network, whose output equals what
  bioimageio.core computes with the bundle's ``pytorch_state_dict`` weights;
* each description form (``config.unifmir``, the older architecture kwargs, network kwargs) is read;
* round trip: bundle -> ``unifmir finetune --from BUNDLE.zip`` -> ``unifmir export`` -> bundle, and
  ``unifmir export --model BUNDLE``;
* bad inputs (a zip that is no bundle, another tool's bundle, tampered weights ...) give clear errors.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
import torch
import yaml
from ..bundle_checks import committed_bundle

import unifmir
from unifmir.model.bundles import BundleError, is_bundle_path, load_bundle, read_bundle_info
from unifmir.model.checkpoints import CheckpointError, load_any, read_checkpoint, save_checkpoint
from unifmir.model.factory import single_task_kwargs
from unifmir.predict.api import predict

ZOO = Path(__file__).resolve().parents[2] / "zoo_models"
COMMITTED = sorted({p.stem for p in ZOO.glob("*.zip")} | {p.parent.name for p in ZOO.glob("*/rdf.yaml")})


def _sd_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _rdf(folder: Path) -> dict[str, Any]:
    return yaml.safe_load((folder / "rdf.yaml").read_text(encoding="utf-8"))


def _write_rdf(folder: Path, rdf: dict[str, Any]) -> Path:
    (folder / "rdf.yaml").write_text(yaml.safe_dump(rdf, sort_keys=False), encoding="utf-8")
    return folder / "rdf.yaml"


# --------------------------------------------------------------------------------------------
# the committed suite


def test_suite_is_there() -> None:
    assert len(COMMITTED) >= 5, f"expected the committed suite in {ZOO}, found {COMMITTED}"


@pytest.mark.parametrize("rid", COMMITTED)
def test_committed_bundle_loads_from_zip_folder_and_rdf(rid: str, tmp_path: Path) -> None:
    """zip, folder and rdf.yaml give the same network, and it reproduces the bundle's test output
    (``predict(..., output_units="normalized")`` on the test input, within the bundle's declared
    absolute tolerance; unpadded, as bioimageio.core's ``test_model`` runs the test tensor)."""
    zp, folder = committed_bundle(rid, tmp_path)
    nets = [load_any(zp), load_any(folder), load_any(folder / "rdf.yaml"), unifmir.load_any(str(zp))]
    rdf = _rdf(folder)
    for net in nets:
        assert not net.training and net.task == read_bundle_info(zp).task
        assert _sd_equal(net, nets[0])
    x = np.squeeze(np.load(folder / rdf["inputs"][0]["test_tensor"]["source"]))
    want = np.squeeze(np.load(folder / rdf["outputs"][0]["test_tensor"]["source"]))
    tol = rdf["config"]["bioimageio"]["reproducibility_tolerance"][0]["absolute_tolerance"]
    got = predict(nets[0], x, output_units="normalized", padding="none")  # as `bioimageio test` runs it
    assert got.shape == want.shape
    assert float(np.abs(got - want).max()) <= tol, f"{rid}: differs from its test output by {np.abs(got - want).max():.3g}"


# --------------------------------------------------------------------------------------------
# a freshly exported bundle


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[torch.nn.Module, Path, Path]]:
    """``(network, bundle zip, unpacked folder)`` of a small SR network exported once (~10-40 s)."""
    from unifmir.export import export_model

    torch.manual_seed(5)
    net = unifmir.build_model("sr", "small").eval()
    root = tmp_path_factory.mktemp("fresh-bundle")
    export_model(net, "sr", root / "b.zip", onnx=False, check_libtorch=False)
    with zipfile.ZipFile(root / "b.zip") as z:
        z.extractall(root / "b")
    yield net, root / "b.zip", root / "b"


def test_fresh_bundle_gives_back_the_exported_network(fresh: Any) -> None:
    net, zp, folder = fresh
    assert read_bundle_info(zp).source == "config.unifmir"  # what `unifmir export` writes
    for src in (zp, folder, folder / "rdf.yaml"):
        got = load_any(src)
        assert got.task == "sr" and got.config == net.config
        assert _sd_equal(got, net)
    with pytest.raises(CheckpointError, match="holds a 'sr' network, not 'denoise'"):
        load_any(zp, task="denoise")
    assert load_any(zp, task="sr").task == "sr"


def test_loaded_network_equals_the_bundles_pytorch_state_dict_weights(fresh: Any) -> None:
    """bioimageio.core running the bundle's pytorch_state_dict weights (its architecture file) on
    normalised input == the loaded network in its task module, within 1e-5."""
    from bioimageio.core import Tensor, create_prediction_pipeline, load_model_description
    from bioimageio.core.digest_spec import create_sample_for_model

    from unifmir.data.normalize import normalize_for_task
    from unifmir.predict.modules import build_task_module

    _, zp, folder = fresh
    net = load_any(zp)
    descr = load_model_description(zp)
    inp = descr.inputs[0]
    x = np.load(folder / "test_input.npy")
    xn = normalize_for_task(x, "sr")[0].astype(np.float32)
    pp = create_prediction_pipeline(descr, devices=["cpu"], weight_format="pytorch_state_dict")
    sample = create_sample_for_model(
        descr, inputs={inp.id: Tensor(xn, dims=tuple(str(a.id) for a in inp.axes))}, sample_id="t")
    out = pp.predict_sample_without_blocking(
        sample, skip_preprocessing=True, skip_input_padding=True, skip_output_cropping=True)
    bundle_out = np.asarray(out.members[descr.outputs[0].id].data, dtype=np.float32)
    with torch.no_grad():
        ours = build_task_module(net, "sr")(torch.from_numpy(xn)).numpy()
    assert ours.shape == bundle_out.shape
    assert float(np.abs(ours - bundle_out).max()) <= 1e-5


def _variant(folder: Path, tmp: Path, name: str, edit: Any) -> Path:
    dst = tmp / name
    shutil.copytree(folder, dst)
    rdf = _rdf(dst)
    edit(rdf)
    return _write_rdf(dst, rdf)


def test_every_description_form_is_read(fresh: Any, tmp_path: Path) -> None:
    """``config.unifmir``, the older ``kwargs(task, config)`` and ``kwargs(network_kwargs)`` all
    rebuild the same network; ``config.unifmir`` wins over the kwargs."""
    net, _, folder = fresh
    cfg = json.loads(net.config.model_dump_json())
    network_kwargs = json.loads(json.dumps(single_task_kwargs("sr", net.config)[1]))

    def set_kwargs(rdf: dict[str, Any], kwargs: dict[str, Any], section: dict[str, Any] | None) -> None:
        rdf["weights"]["pytorch_state_dict"]["architecture"]["kwargs"] = kwargs
        rdf.setdefault("config", {}).pop("unifmir", None)
        if section is not None:
            rdf["config"]["unifmir"] = section

    forms = {
        "config.unifmir": ({"foreign": 1}, {"task": "sr", "model_config": cfg, "two_d": False, "version": 1}),
        "kwargs(task, config)": ({"task": "sr", "config": cfg, "wrapper": "predict.modules.SuperRes2D"}, None),
        "kwargs(network_kwargs)": ({"network": "SwinIRNet", "network_kwargs": network_kwargs,
                                    "task_module": "SuperRes2D", "task_module_kwargs": {"task": "sr", "scale": 2}},
                                   None),
    }
    for i, (source, (kwargs, section)) in enumerate(forms.items()):
        rdf_path = _variant(folder, tmp_path, f"v{i}", lambda r: set_kwargs(r, kwargs, section))
        info = read_bundle_info(rdf_path)
        assert info.source == source and info.task == "sr" and info.config == net.config and not info.two_d
        assert _sd_equal(load_bundle(rdf_path.parent), net)
    # a 2D-variant flag is passed through
    two_d = _variant(folder, tmp_path, "2d", lambda r: set_kwargs(
        r, {}, {"task": "denoise", "model_config": dict(cfg, in_chans=1, upscale=1), "two_d": True}))
    assert read_bundle_info(two_d).two_d
    # network kwargs that no ModelConfig produces are refused, naming the keys
    bad = dict(network_kwargs, out_chans=3)
    path = _variant(folder, tmp_path, "bad", lambda r: set_kwargs(r, {"network": "SwinIRNet", "network_kwargs": bad}, None))
    with pytest.raises(BundleError, match="cannot be mapped back.*out_chans"):
        read_bundle_info(path)


def test_finetune_starts_from_the_bundle_weights(fresh: Any, tmp_path: Path) -> None:
    from unifmir.training.config import finetune_config
    from unifmir.training.finetune_model import prepare_finetune_model

    net, zp, _ = fresh
    cfg = finetune_config("sr", tmp_path, str(zp), "small", 1, device="cpu")
    model, report = prepare_finetune_model(cfg)
    assert report.fresh == [] and report.source == str(zp)
    assert _sd_equal(model, net)


@pytest.mark.slow
def test_round_trip_bundle_finetune_export(fresh: Any, tmp_path: Path) -> None:
    """bundle -> `unifmir finetune --from BUNDLE.zip` -> `unifmir export` -> bundle, then
    `unifmir export --model BUNDLE/rdf.yaml --folder` (a bundle re-exported from a bundle)."""
    from unifmir.cli import main

    net, zp, _ = fresh
    data, run, b2, b3 = tmp_path / "data", tmp_path / "run", tmp_path / "b2.zip", tmp_path / "b3"
    assert main(["synth", "--task", "sr", "--n", "4", "--size", "48", "--out", str(data), "--quiet"]) == 0
    assert main(["finetune", "--task", "sr", "--data", str(data), "--from", str(zp), "--steps", "2",
                 "--batch-size", "2", "--patch-size", "16", "--device", "cpu", "--quiet", "--out", str(run)]) == 0
    ckpt = read_checkpoint(run / "last.pt")
    assert ckpt["task"] == "sr" and ckpt["config"] == json.loads(net.config.model_dump_json())
    tuned = load_any(run / "last.pt")
    assert not _sd_equal(tuned, net)  # it trained
    assert main(["export", "--model", str(run / "last.pt"), "--out", str(b2), "--no-onnx", "--skip-libtorch"]) == 0
    assert _sd_equal(load_any(b2), tuned)
    with zipfile.ZipFile(b2) as z:
        z.extractall(tmp_path / "b2")
    assert main(["export", "--model", str(tmp_path / "b2" / "rdf.yaml"), "--folder", "--out", str(b3),
                 "--no-onnx", "--skip-libtorch"]) == 0
    assert _sd_equal(load_any(b3), tuned)


# --------------------------------------------------------------------------------------------
# what is not a (unifmir) bundle


def test_a_zip_that_is_not_a_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from unifmir.cli import main

    zp = tmp_path / "notes.zip"
    with zipfile.ZipFile(zp, "w") as z:
        z.writestr("notes.txt", "hello")
    with pytest.raises(BundleError, match=r"notes\.zip is a zip without rdf\.yaml.*notes\.txt.*unifmir export"):
        load_any(zp)
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(BundleError, match="broken.zip is not a valid zip file"):
        load_any(broken)
    (tmp_path / "folder").mkdir()
    with pytest.raises(BundleError, match="is a folder without rdf.yaml"):
        load_any(tmp_path / "folder")
    img = tmp_path / "img.npy"
    np.save(img, np.zeros((16, 16), np.float32))
    assert main(["predict", "--model", str(zp), "--input", str(img), "--output", str(tmp_path / "out"), "--quiet"]) == 2
    assert "zip without rdf.yaml" in capsys.readouterr().err


def test_checkpoints_are_not_mistaken_for_bundles(tmp_path: Path) -> None:
    """torch.save writes zip archives too: a checkpoint named .zip still loads as a checkpoint."""
    net = unifmir.build_model("denoise", "small")
    for name in ("own.pt", "own.zip"):
        save_checkpoint(tmp_path / name, net)
        assert _sd_equal(load_any(tmp_path / name), net)
    assert not is_bundle_path(tmp_path / "own.zip") and not is_bundle_path(tmp_path / "own.pt")
    assert not is_bundle_path(tmp_path / "missing.zip")


def test_another_tools_bundle(fresh: Any, tmp_path: Path) -> None:
    """An rdf without config.unifmir and without unifmir's architecture kwargs is refused by name."""
    _, _, folder = fresh

    def foreign(rdf: dict[str, Any]) -> None:
        rdf.get("config", {}).pop("unifmir", None)
        rdf["name"] = "StarDist-like"
        a = rdf["weights"]["pytorch_state_dict"]["architecture"]
        a["callable"], a["kwargs"] = "UNet2d", {"in_channels": 1, "depth": 4}

    path = _variant(folder, tmp_path, "foreign", foreign)
    with pytest.raises(BundleError, match=r"\('StarDist-like'\) that unifmir did not make.*'UNet2d'.*no config\.unifmir"):
        load_any(path.parent)
    not_model = _variant(folder, tmp_path, "dataset", lambda r: r.update(type="dataset"))
    with pytest.raises(BundleError, match="describes a 'dataset', not a model"):
        load_any(not_model)
    no_sd = _variant(folder, tmp_path, "nosd", lambda r: r["weights"].pop("pytorch_state_dict"))
    with pytest.raises(BundleError, match="has no pytorch_state_dict weights"):
        load_any(no_sd)


def test_tampered_weights(fresh: Any, tmp_path: Path) -> None:
    """Weights changed after export: the sha256 in the rdf no longer matches; without a sha256 the
    strict load still refuses weights of another network."""
    _, _, folder = fresh
    dst = tmp_path / "tampered"
    shutil.copytree(folder, dst)
    wfile = dst / "weights_state_dict.pt"
    sd = torch.load(wfile, weights_only=True)
    first = next(iter(sd))
    sd[first] = torch.zeros_like(sd[first])
    torch.save(sd, wfile)
    with pytest.raises(BundleError, match=r"weights_state_dict\.pt: sha256 [0-9a-f]{64} does not match"):
        load_any(dst)
    zp = tmp_path / "tampered.zip"
    with zipfile.ZipFile(zp, "w") as z:
        for f in sorted(dst.iterdir()):
            z.write(f, f.name)
    with pytest.raises(BundleError, match=r"tampered\.zip:weights_state_dict\.pt: sha256"):
        load_any(zp)
    # another network's weights, no sha256 to catch it: the strict load does
    other = unifmir.build_model("denoise", "small")
    torch.save({f"inner.net.{k}": v for k, v in other.state_dict().items()}, wfile)
    rdf = _rdf(dst)
    rdf["weights"]["pytorch_state_dict"].pop("sha256")
    _write_rdf(dst, rdf)
    with pytest.raises(BundleError, match="does not match the network"):
        load_any(dst)
    # the sha256 check is on the bytes the rdf names
    assert read_bundle_info(folder).sha256 == hashlib.sha256((folder / "weights_state_dict.pt").read_bytes()).hexdigest()
