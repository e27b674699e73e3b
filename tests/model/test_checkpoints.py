"""Checkpoint I/O: official formats (every fixture through ``load_official``), our own format,
conversion between the multi-task and single-task namings, and the error paths.

The fixtures are described in ``tests/fixtures/unifmir-reference/README.txt`` (sections 4-6).
"""

from __future__ import annotations

import collections
import csv
import os
from pathlib import Path
from typing import Any, Iterator

import pytest
import torch
from compact import rebuild_state_dict

from unifmir.model.checkpoints import (
    CheckpointError,
    detect_variant,
    extract_task,
    infer_config,
    key_mapping,
    load_any,
    load_checkpoint,
    load_official,
    multi_to_single,
    read_checkpoint,
    read_state_dict,
    save_checkpoint,
    single_task_config,
    single_to_multi,
)
from unifmir.model.config import ModelConfig
from unifmir.model.factory import build_model

REF = Path(__file__).resolve().parents[1] / "fixtures" / "unifmir-reference"
ATOL = 1e-5
TASK_OF_INDEX = {1: "sr", 2: "denoise", 3: "isotropic", 4: "projection", 5: "volumetric"}

# fixture file -> task that load_official must report (None = multi-task)
FIXTURE_TASKS: dict[str, str | None] = {
    "swinir_x2_in1": "sr",
    "swinir_x1_in1": "isotropic",
    "swinir_x1_in5": "denoise",
    "swinirProj_stage2_small": "projection",
    "swinir2dto3d": "volumetric",
    "unimodel_small": None,
}
SINGLE_FULL = {"swinir_x2_in1": "sr", "swinir_x1_in1": "isotropic", "swinir_x1_in5": "denoise", "swinir2dto3d": "volumetric"}


# ---------------------------------------------------------------------------------------------
# helpers and shared fixtures
# ---------------------------------------------------------------------------------------------


def _fixture(name: str) -> dict[str, Any]:
    return torch.load(REF / f"{name}.pt")


def _reference_state_dict(name: str) -> "collections.OrderedDict[str, torch.Tensor]":
    """Exact state_dict of a fixture (README section 4), rebuilt key by key without load_official's
    unwrapping, external-file lookup and ordering (the int8 rule itself is the package's one
    ``compact_tensors``; that it is right is what the stored reference outputs check)."""
    fx = _fixture(name)
    if "stored_keys" in fx:  # unimodel_small: conv_first0.* live in swinir2dto3d.pt
        stored = dict(fx, key_order=fx["stored_keys"])
        sd = dict(rebuild_state_dict(stored))
        other = rebuild_state_dict(_fixture(fx["external_keys"]["file"].removesuffix(".pt")))
        sd.update({k: other[k] for k in fx["external_keys"]["keys"]})
        return collections.OrderedDict((k, sd[k]) for k in fx["key_order"])
    return rebuild_state_dict(fx)


def _cases(name: str) -> list[tuple[str, torch.Tensor, str | None, torch.Tensor | None, torch.Tensor]]:
    """(case name, input, task for the multi-task call, stored stage 1 or None, stored output)."""
    fx = _fixture(name)
    if "cases" in fx:
        return [
            (n, c["input"], TASK_OF_INDEX[c["task"]], c.get("output_stage1"), c["output"]) for n, c in fx["cases"].items()
        ]
    out = [("main", fx["input"], None, fx.get("output_stage1"), fx["output"])]
    out += [(c["name"], c["input"], None, c.get("output_stage1"), c["output"]) for c in fx.get("extra_cases", [])]
    return out


def _run(model: torch.nn.Module, x: torch.Tensor, task: str | None) -> tuple[torch.Tensor | None, torch.Tensor]:
    with torch.no_grad():
        if model.task is None:
            y = model(x.clone(), task=task, return_stages=task in ("projection", "volumetric"))
        elif model.task in ("projection", "volumetric"):
            y = model(x.clone(), return_stages=True)
        else:
            y = model(x.clone())
    return (y[0], y[1]) if isinstance(y, tuple) else (None, y)


def _check_cases(model: torch.nn.Module, name: str, only: str | None = None) -> None:
    for case, x, task, stage1, expected in _cases(name):
        if only is not None and case != only:
            continue
        s1, y = _run(model, x, task)
        assert y.shape == expected.shape, (name, case)
        err = (y - expected).abs().max().item()
        assert err <= ATOL, f"{name}/{case}: max |diff| {err:.3g} > {ATOL}"
        if stage1 is not None:
            assert s1 is not None and s1.shape == stage1.shape
            err1 = (s1 - stage1).abs().max().item()
            assert err1 <= ATOL, f"{name}/{case} stage 1: max |diff| {err1:.3g} > {ATOL}"


class _LoadedOnce(dict):
    """name -> ``load_official(REF / name.pt)``, loaded on first use."""

    def __missing__(self, name: str) -> torch.nn.Module:
        self[name] = model = load_official(REF / f"{name}.pt")
        return model


@pytest.fixture(scope="module")
def official() -> Iterator[dict[str, torch.nn.Module]]:
    """Models loaded once per module through ``load_official(path)`` (the UNetA ones are large)."""
    models = _LoadedOnce()
    yield models
    models.clear()


@pytest.fixture(scope="module")
def unimodel_sd() -> "collections.OrderedDict[str, torch.Tensor]":
    return _reference_state_dict("unimodel_small")


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Run on one thread unless a test asks for ``threads`` (CPU cores are shared on CI machines)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------------------------------------
# official formats
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(FIXTURE_TASKS))
def test_fixture_file_loads_and_reproduces_every_case(name: str, official: dict, threads: int) -> None:
    model = official[name]
    assert model.task == FIXTURE_TASKS[name]
    assert not model.training
    _check_cases(model, name)


@pytest.mark.parametrize("name", list(FIXTURE_TASKS))
@pytest.mark.parametrize("prefix", ["", "module."], ids=["plain", "dataparallel"])
def test_released_plain_state_dict_file(name: str, prefix: str, tmp_path: Path, official: dict) -> None:
    """The genuine released format: torch.save(model.state_dict()), optionally DataParallel-prefixed.

    Same class, config and weights as the fixture model checked numerically above => same function.
    """
    sd = _reference_state_dict(name)
    path = tmp_path / "model.pt"
    torch.save(collections.OrderedDict((prefix + k, v) for k, v in sd.items()), path)
    model = load_official(path)
    assert model.task == FIXTURE_TASKS[name] and not model.training
    assert type(model) is type(official[name]) and model.config == official[name].config
    loaded = model.state_dict()
    assert list(loaded) == list(sd)
    assert all(torch.equal(loaded[k], sd[k]) for k in sd)


@pytest.mark.parametrize("wrapper", ["state_dict", "model"])
def test_wrapped_state_dict_in_memory(wrapper: str) -> None:
    sd = _reference_state_dict("swinirProj_stage2_small")
    model = load_official({wrapper: sd, "epoch": 7})
    assert model.task == "projection"
    _check_cases(model, "swinirProj_stage2_small", only="main")


def test_inferred_configs_equal_fixture_configs() -> None:
    full = ModelConfig()
    for name, task in SINGLE_FULL.items():
        assert infer_config(_reference_state_dict(name)) == (task, full), name

    fx = _fixture("swinirProj_stage2_small")
    kw, args = fx["config"]["swinirProj_stage2_kwargs"], fx["config"]["args_namespace"]
    task, cfg = infer_config(_reference_state_dict("swinirProj_stage2_small"))
    assert task == "projection"
    assert cfg == ModelConfig(
        img_size=kw["img_size"], embed_dim=kw["embed_dim"], depths=tuple(kw["depths"]),
        num_heads=tuple(kw["num_heads"]), window_size=kw["window_size"], mlp_ratio=kw["mlp_ratio"],
        num_feat=kw["num_feat"], enlcn_feats=args["n_feats"], enlcn_resblocks=args["n_resblocks"],
        enlcn_res_scale=args["res_scale"], projection_variant="released",
    )
    assert kw["upscale"] == 1 and args["inch"] == 50  # = task defaults -> None in the config

    fx = _fixture("unimodel_small")
    kw, args = fx["config"]["UniModel_kwargs"], fx["config"]["args_namespace"]
    task, cfg = infer_config(_reference_state_dict("unimodel_small"))
    assert task is None
    assert cfg == ModelConfig(
        img_size=kw["img_size"], embed_dim=kw["embed_dim"], depths=tuple(kw["depths"]),
        num_heads=tuple(kw["num_heads"]), window_size=kw["window_size"], mlp_ratio=kw["mlp_ratio"],
        qkv_bias=kw["qkv_bias"], num_feat=kw["num_feat"], enlcn_feats=args["n_feats"],
        enlcn_resblocks=args["n_resblocks"], enlcn_res_scale=args["res_scale"],
    )
    assert kw["srscale"] == 2  # = sr default -> upscale None


def test_inference_of_non_default_sizes() -> None:
    """Hyper-parameters that the fixtures keep at their defaults are read back too."""
    cfg = ModelConfig(img_size=48, embed_dim=16, depths=(1, 3), num_heads=(2, 4), window_size=4, mlp_ratio=1.5,
                      num_feat=8, qkv_bias=False)
    for task, extra in [("sr", {"upscale": 4, "in_chans": 3}), ("denoise", {"in_chans": 3}), ("isotropic", {})]:
        want = cfg.model_copy(update=extra)
        sd = build_model(task, want).state_dict()
        assert infer_config(sd, task=task) == (task, want)
    want = cfg.model_copy(update={"enlcn_feats": 16, "enlcn_resblocks": 9, "in_chans": 20})
    assert infer_config(build_model("projection", want).state_dict()) == ("projection", want)


def test_task_choice_and_override(official: dict) -> None:
    sd = _reference_state_dict("swinir_x1_in1")
    model = load_official(sd, task="denoise")  # released Planaria denoiser: 1 slice in
    assert model.task == "denoise" and model.config.in_chans == 1
    iso = official["swinir_x1_in1"]
    x = _cases("swinir_x1_in1")[0][1]
    assert torch.equal(_run(model, x, None)[1], _run(iso, x, None)[1])
    with pytest.raises(CheckpointError, match="cannot be loaded as task 'projection'"):
        load_official(sd, task="projection")
    with pytest.raises(ValueError, match="unknown task"):
        load_official(sd, task="deblur")
    assert detect_variant(sd) == "swinir"


# ---------------------------------------------------------------------------------------------
# conversion
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SINGLE_FULL))
def test_multi_to_single_reproduces_released_state_dicts(name: str, unimodel_sd: dict) -> None:
    ref = _reference_state_dict(name)
    out = multi_to_single(unimodel_sd, SINGLE_FULL[name])
    assert list(out) == list(ref)  # names and released order
    for k in ref:
        assert out[k].dtype == ref[k].dtype and torch.equal(out[k], ref[k]), k


@pytest.mark.parametrize("name", list(SINGLE_FULL))
def test_single_to_multi_reproduces_unimodel_tensors(name: str, unimodel_sd: dict) -> None:
    ref = _reference_state_dict(name)
    back = single_to_multi(ref, SINGLE_FULL[name])
    assert len(back) == len(ref)
    for k, v in back.items():
        assert torch.equal(v, unimodel_sd[k]), k
    assert multi_to_single(back, SINGLE_FULL[name]).keys() == ref.keys()


def test_projection_conversion_shares_the_enlcn_head(unimodel_sd: dict) -> None:
    ref = _reference_state_dict("swinirProj_stage2_small")  # its own swinir, the unimodel project.*
    out = multi_to_single(unimodel_sd, "projection")
    proj = [k for k in ref if k.startswith("project.")]
    assert [k for k in out if k.startswith("project.")] == proj
    assert all(torch.equal(out[k], ref[k]) for k in proj)
    assert out["denoise.conv_first.weight"] is unimodel_sd["conv_firstproj.weight"]
    back = single_to_multi(ref, "projection")
    assert all(torch.equal(back[k], unimodel_sd[k]) for k in proj)
    assert "conv_firstproj.weight" in back and "conv_last0.bias" in back


def test_key_mapping_equals_manifest_column() -> None:
    """Full-size names: the data-driven mapping reproduces mapped_from_unimodel_key for every variant."""
    with open(REF / "unifmir_state_dict_manifest.tsv", newline="") as fh:
        uni_keys = [row["key"] for row in csv.DictReader(fh, delimiter="\t")]
    fake = collections.OrderedDict((k, torch.tensor([i])) for i, k in enumerate(uni_keys))
    index = {k: i for i, k in enumerate(uni_keys)}
    with open(REF / "released_finetuned_models_state_dict_manifest.tsv", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    variants = {"swinir_x2_in1": "sr", "swinir_x1_in1": "isotropic", "swinir_x1_in5": "denoise",
                "swinirProj_stage2": "projection", "swinir2dto3d": "volumetric"}
    for variant, task in variants.items():
        mine = [r for r in rows if r["model_variant"] == variant]
        out = multi_to_single(fake, task)
        assert list(out) == [r["key"] for r in mine], variant
        for r in mine:
            assert out[r["key"]].item() == index[r["mapped_from_unimodel_key"]], (variant, r["key"])
        assert key_mapping(task)[0][0] in ("conv_first.", "project.", "conv_first0.")


def test_extract_task_matches_the_multi_task_model(official: dict) -> None:
    uni = official["unimodel_small"]
    cases = {n: (x, t, s1, y) for n, x, t, s1, y in _cases("unimodel_small")}
    sr = extract_task(uni, "sr")
    assert sr.task == "sr" and not sr.training
    x, _, _, y = cases["task1_sr"]
    assert (_run(sr, x, None)[1] - y).abs().max() <= ATOL
    x, _, _, y = cases["task1_sr_pad"]  # single-task models crop: compare with the cropped output
    out = _run(sr, x, None)[1]
    assert out.shape[-2:] == (2 * x.shape[-2], 2 * x.shape[-1])
    assert (out - y[..., : out.shape[-2], : out.shape[-1]]).abs().max() <= ATOL

    proj = extract_task(uni, "projection")  # UniModel task 4: no long skip, no crop
    assert proj.config.projection_variant == "unimodel"
    x, _, s1, y = cases["task4_proj"]
    got_s1, got = _run(proj, x, None)
    assert (got_s1 - s1).abs().max() <= ATOL and (got - y).abs().max() <= ATOL

    again = load_official(REF / "unimodel_small.pt", task="denoise")  # task= extracts from a multi-task file
    x, _, _, y = cases["task2_denoise"]
    assert again.task == "denoise" and (_run(again, x, None)[1] - y).abs().max() <= ATOL


def test_single_task_config_fits_the_converted_multi_task_weights() -> None:
    """The one multi-task -> one-task config rule: for every task its network takes exactly the keys
    and shapes multi_to_single gives; a non-default SR factor stays with SR only; projection takes
    UniModel's task-4 path."""
    multi = build_model(None, {"preset": "small", "upscale": 4})
    for task in TASK_OF_INDEX.values():
        config = single_task_config(multi.config, task)
        expected = build_model(task, config).state_dict()
        converted = multi_to_single(multi, task)
        assert list(converted) == list(expected), task
        assert all(converted[k].shape == expected[k].shape for k in expected), task
        assert config.in_chans is None and config.upscale == (4 if task == "sr" else None)
        assert config.projection_variant == ("unimodel" if task == "projection" else multi.config.projection_variant)


# ---------------------------------------------------------------------------------------------
# our own format
# ---------------------------------------------------------------------------------------------


def test_own_format_round_trip(tmp_path: Path, official: dict) -> None:
    model = official["swinirProj_stage2_small"]
    path = save_checkpoint(tmp_path / "proj.pt", model, provenance={"source": "swinirProj_stage2_small.pt"},
                           extra={"epoch": 3, "metrics": {"psnr": 30.5}})
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "unifmir-checkpoint" and raw["version"] == 1 and raw["task"] == "projection"
    assert raw["config"] == model.config.model_dump(mode="json")
    info = read_checkpoint(path)
    assert info["provenance"]["source"] == "swinirProj_stage2_small.pt"
    assert info["provenance"]["torch_version"] == torch.__version__ and "date" in info["provenance"]
    assert info["extra"] == {"epoch": 3, "metrics": {"psnr": 30.5}}

    for loaded in (load_checkpoint(path), load_any(path), load_official(path)):
        assert loaded.task == "projection" and loaded.config == model.config and not loaded.training
        _check_cases(loaded, "swinirProj_stage2_small", only="main")

    with pytest.raises(FileExistsError):
        save_checkpoint(path, model)
    save_checkpoint(path, model, overwrite=True)
    assert not [p for p in tmp_path.iterdir() if p.name != "proj.pt"]  # no temporary files left
    with pytest.raises(CheckpointError, match="not 'sr'"):
        load_any(path, task="sr")
    with pytest.raises(CheckpointError, match="load_official"):
        load_checkpoint(REF / "swinir_x1_in5.pt")


def test_own_format_multi_task_and_small_preset(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = build_model("sr", "small").eval()
    path = save_checkpoint(tmp_path / "sr.pt", net)
    back = load_any(path)
    x = torch.rand(1, 1, 20, 28)
    with torch.no_grad():
        assert torch.equal(back(x), net(x))
    assert back.config == net.config


def test_load_any_official(official: dict) -> None:
    model = load_any(REF / "swinir_x1_in5.pt")
    assert model.task == "denoise"
    _check_cases(model, "swinir_x1_in5", only="main")


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------


def test_truncated_file(tmp_path: Path) -> None:
    data = (REF / "swinir_x1_in1.pt").read_bytes()
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_official(bad)


def test_random_bytes_and_empty_file(tmp_path: Path) -> None:
    bad = tmp_path / "random.pt"
    bad.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError, match=str(bad).replace("\\", "\\\\") + ".*(not a PyTorch checkpoint|corrupted)"):
        load_official(bad)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_any(empty)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_official(tmp_path / "missing.pt")


def test_foreign_state_dict(tmp_path: Path) -> None:
    resnet_like = torch.nn.Sequential(
        collections.OrderedDict(
            conv1=torch.nn.Conv2d(3, 8, 7), bn1=torch.nn.BatchNorm2d(8), fc=torch.nn.Linear(8, 10)
        )
    ).state_dict()
    path = tmp_path / "resnet.pth"
    torch.save(resnet_like, path)
    with pytest.raises(CheckpointError, match="not a UniFMIR checkpoint") as err:
        load_official(path)
    assert "conv1.weight" in str(err.value)
    with pytest.raises(CheckpointError, match="without a state_dict"):
        load_official({"optimizer": {"lr": 1.0}, "epoch": 3})


def _expect_mismatch(sd: dict, *needles: str) -> str:
    with pytest.raises(CheckpointError) as err:
        load_official(sd)
    msg = str(err.value)
    for needle in needles:
        assert needle in msg, (needle, msg)
    return msg


def test_shape_mismatch_lists_key_and_both_shapes() -> None:
    sd = _reference_state_dict("swinir_x1_in5")
    key = "layers.1.residual_group.blocks.2.attn.proj.weight"
    sd[key] = torch.zeros(90, 91)
    _expect_mismatch(sd, "1 mis-shaped key", key, "[90, 91]", "[90, 90]", "Nothing was loaded")


def test_missing_and_unexpected_keys_are_listed_with_counts() -> None:
    sd = _reference_state_dict("swinir_x2_in1")
    gone = [k for k in sd if k.startswith("layers.2.residual_group.blocks.0.")]
    for k in gone:
        del sd[k]
    sd["extra.weight"] = torch.zeros(1)
    msg = _expect_mismatch(sd, f"{len(gone)} missing keys", gone[0], "1 unexpected key: extra.weight", "more")
    assert gone[-1] not in msg  # only the first few are listed
    partial = {k: v for k, v in _reference_state_dict("swinir_x1_in1").items() if not k.startswith("conv_last.")}
    _expect_mismatch(partial, "lacks conv_last.weight")


def test_pickle_with_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self) -> tuple:
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "hook": Payload()}, path)
    for loader in (load_official, load_checkpoint, load_any):
        with pytest.raises(CheckpointError, match="refusing to load.*code") as err:
            loader(path)
        assert "weights_only" in str(err.value) and "system" in str(err.value)
    assert not marker.exists()


def test_compact_external_keys_need_the_file(tmp_path: Path) -> None:
    fx = _fixture("unimodel_small")
    with pytest.raises(CheckpointError, match="pass the checkpoint's path"):
        load_official(fx)
    lonely = tmp_path / "unimodel_small.pt"
    lonely.write_bytes((REF / "unimodel_small.pt").read_bytes())
    with pytest.raises(CheckpointError, match="swinir2dto3d.pt"):
        read_state_dict(lonely)


def test_non_tensor_entries_and_bad_own_checkpoints(tmp_path: Path) -> None:
    sd = dict(_reference_state_dict("swinir_x1_in1"))
    sd["note"] = "hello"
    with pytest.raises(CheckpointError, match="not tensors"):
        load_official(sd)
    path = tmp_path / "future.pt"
    torch.save({"format": "unifmir-checkpoint", "version": 99, "task": "sr", "config": {}, "state_dict": {}}, path)
    with pytest.raises(CheckpointError, match="newer unifmir"):
        load_checkpoint(path)
