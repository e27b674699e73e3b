"""The training loop: learning, exact resume, NaN detection, checkpoints, logs, early stopping."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from .train_testlib import state_equal, tiny_config
from unifmir.training.checkpointing import load_train_state
from unifmir.training.config import load_config
from unifmir.training.loop import StepInfo, TrainingDiverged, train


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


def test_loss_decreases_and_run_dir_is_complete(data_root, tmp_path: Path) -> None:
    cfg = tiny_config("sr", data_root("sr"), steps=24, lr=2e-3,
                      checkpoint={"val_every": 12, "validate_at_start": True},
                      logging={"log_every": 4, "plot": True}, schedule={"milestones": [100]})
    res = train(cfg, tmp_path / "run", progress=False)
    losses = [r["loss"] for r in res.history if r["kind"] == "train"]
    assert len(losses) == 6
    assert losses[-1] < 0.7 * losses[0], losses
    vals = res.val_history
    assert [v["step"] for v in vals] == [0, 12, 24]
    assert vals[-1]["val_loss"] < vals[0]["val_loss"]
    assert all(v["val_psnr"] == v["val_psnr"] for v in vals)  # finite PSNR under the care protocol
    run = tmp_path / "run"
    for name in ("config.yaml", "best.pt", "last.pt", "train_state.pt", "log.csv", "curves.png"):
        assert (run / name).is_file(), name
    assert res.final_step == 24 and res.stopped == "completed"
    assert load_config(run / "config.yaml") == cfg
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert len(rows) == len(res.history)
    assert (run / "curves.png").read_bytes()[:4] == b"\x89PNG"
    from unifmir.model.checkpoints import load_checkpoint, read_checkpoint

    model = load_checkpoint(res.best_checkpoint)
    assert model.task == "sr"
    meta = read_checkpoint(res.last_checkpoint)
    assert meta["extra"]["step"] == 24 and meta["provenance"]["training_run"] == str(run.resolve())
    # a finished run refuses a second start in the same folder
    with pytest.raises(FileExistsError, match="--resume"):
        train(cfg, run, progress=False)


class _Kill(Exception):
    pass


def _kill_at(step: int):
    def cb(info: StepInfo) -> None:
        if info.step == step:
            raise _Kill(f"simulated kill after step {step}")
    return cb


def test_resume_after_kill_is_exact(data_root, tmp_path: Path) -> None:
    cfg = tiny_config("sr", data_root("sr"), steps=7, lr=1e-3,
                      checkpoint={"val_every": 3, "save_every": 2}, schedule={"milestones": [4]})
    ref = train(cfg, tmp_path / "ref", progress=False)

    with pytest.raises(_Kill):
        train(cfg, tmp_path / "cut", progress=False, callbacks=[_kill_at(5)])
    state = load_train_state(tmp_path / "cut" / "train_state.pt")
    assert state["step"] == 4  # the last resume point before the kill
    res = train(None, tmp_path / "cut", resume=True, progress=False)
    assert res.final_step == 7
    assert state_equal(_weights(ref.last_checkpoint), _weights(res.last_checkpoint))
    assert state_equal(_weights(ref.best_checkpoint), _weights(res.best_checkpoint))
    strip = lambda h: [{k: v for k, v in r.items() if k != "time_s"} for r in h]  # noqa: E731
    assert strip(res.history) == strip(ref.history)
    s_ref = load_train_state(tmp_path / "ref" / "train_state.pt")
    s_res = load_train_state(tmp_path / "cut" / "train_state.pt")
    assert s_ref["optimizer"]["state"].keys() == s_res["optimizer"]["state"].keys()
    for k, v in s_ref["optimizer"]["state"].items():
        assert torch.equal(v["exp_avg_sq"], s_res["optimizer"]["state"][k]["exp_avg_sq"])
    assert s_ref["scheduler"] == s_res["scheduler"] and s_ref["streams"] == s_res["streams"]


def test_nan_loss_stops_and_keeps_last_good_checkpoint(data_root, tmp_path: Path) -> None:
    cfg = tiny_config("sr", data_root("sr"), steps=10, checkpoint={"save_every": 2})

    def poison(info: StepInfo) -> None:  # inject a NaN into the weights after step 3
        if info.step == 3:
            with torch.no_grad():
                next(iter(poison.model.parameters())).fill_(float("nan"))

    import unifmir.training.loop as loop

    orig = loop._Run.build

    def build(self: loop._Run) -> None:
        orig(self)
        poison.model = self.bare  # type: ignore[attr-defined]

    loop._Run.build = build  # type: ignore[method-assign]
    try:
        with pytest.raises(TrainingDiverged) as err:
            train(cfg, tmp_path / "run", progress=False, callbacks=[poison])
    finally:
        loop._Run.build = orig  # type: ignore[method-assign]
    msg = str(err.value)
    assert "loss is nan at step 4" in msg and "last good checkpoint" in msg and "learning rate" in msg
    assert err.value.last_good == tmp_path / "run" / "last.pt"
    from unifmir.model.checkpoints import read_checkpoint

    last = read_checkpoint(tmp_path / "run" / "last.pt")
    assert last["extra"]["step"] == 2
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())
    assert load_train_state(tmp_path / "run" / "train_state.pt")["step"] == 2


def test_huge_learning_rate_is_caught(data_root, tmp_path: Path) -> None:
    cfg = tiny_config("sr", data_root("sr"), steps=30, lr=1e12)
    with pytest.raises(TrainingDiverged, match="Try a lower learning rate"):
        train(cfg, tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "last.pt").is_file()  # the step-0 checkpoint survives


def test_early_stopping(data_root, tmp_path: Path) -> None:
    cfg = tiny_config("sr", data_root("sr"), steps=50, lr=1e-12,
                      checkpoint={"val_every": 2, "validate_at_start": True, "monitor": "val_loss"},
                      early_stopping={"enabled": True, "patience": 2, "min_delta": 1e-3})
    res = train(cfg, tmp_path / "run", progress=False)
    assert res.stopped == "early_stopping"
    assert res.final_step == 4
    assert [v["step"] for v in res.val_history] == [0, 2, 4]
    again = train(None, tmp_path / "run", resume=True, progress=False)  # nothing left to do
    assert again.stopped == "early_stopping" and again.final_step == 4


def test_data_workers_do_not_change_the_run(data_root, tmp_path: Path) -> None:
    """Samples are pure functions of (seed, position): worker processes give the same weights."""
    runs = []
    for workers in (0, 2):
        cfg = tiny_config("sr", data_root("sr"), steps=3, lr=1e-3, data={"workers": workers})
        runs.append(train(cfg, tmp_path / f"w{workers}", progress=False))
    assert state_equal(_weights(runs[0].last_checkpoint), _weights(runs[1].last_checkpoint))


def test_resume_with_relative_data_path_from_another_folder(data_root, tmp_path: Path, monkeypatch) -> None:
    """A run configured with cwd-relative dataset paths resumes from anywhere (config.yaml stores
    absolute paths; load_config would otherwise resolve them against the run folder)."""
    import os

    monkeypatch.chdir(data_root("sr").parent)
    rel = Path(os.path.relpath(data_root("sr")))
    assert not rel.is_absolute()
    cfg = tiny_config("sr", rel, steps=5, checkpoint={"save_every": 2})
    with pytest.raises(_Kill):
        train(cfg, tmp_path / "cut", progress=False, callbacks=[_kill_at(3)])
    saved = load_config(tmp_path / "cut" / "config.yaml")
    assert saved.data.roots["sr"] == data_root("sr").absolute()
    monkeypatch.chdir(tmp_path)
    res = train(None, tmp_path / "cut", resume=True, progress=False)
    assert res.final_step == 5
    # the original config object (relative path, from its own folder) counts as the same configuration
    monkeypatch.chdir(data_root("sr").parent)
    assert train(cfg, tmp_path / "cut", resume=True, progress=False).final_step == 5
