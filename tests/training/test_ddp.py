"""DistributedDataParallel: 2 CPU processes (gloo) train the same model as one process."""

from __future__ import annotations

import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp

from .train_testlib import ddp_worker, tiny_config
from unifmir.training.finetune_model import prepare_finetune_model
from unifmir.training.loop import _seed_everything, train


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_gloo_processes_match_one_process(data_root, tmp_path: Path) -> None:
    # drop-path off: its random masks are drawn per process and would differ by design
    cfg = tiny_config("sr", data_root("sr"), steps=3, lr=1e-3, model_overrides={"drop_path_rate": 0.0},
                      data={"batch_size": 4, "val_samples": 3}, checkpoint={"val_every": 3})
    single = train(cfg, tmp_path / "single", device="cpu", progress=False)
    # fork: the children reuse the imported modules (spawn would re-import torch twice, ~20 s here)
    mp.start_processes(ddp_worker, args=(2, _free_port(), cfg.to_dict(), str(tmp_path / "ddp")), nprocs=2,
                       join=True, start_method="fork")
    a = torch.load(single.last_checkpoint, weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "ddp" / "last.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    worst = max(float((a[k] - b[k]).abs().max()) for k in a if a[k].is_floating_point())
    _seed_everything(cfg.seed)
    init = prepare_finetune_model(cfg)[0].state_dict()
    changed = max(float((a[k] - init[k]).abs().max()) for k in a if a[k].is_floating_point())
    assert worst < 1e-5, worst
    assert changed > 1e-4  # the model did train
    # validation metrics are reduced across ranks: same numbers as one process (3 samples, 2 ranks)
    import csv

    rows = [r for r in csv.DictReader(open(tmp_path / "ddp" / "log.csv")) if r["kind"] == "val"]
    assert abs(float(rows[-1]["val_loss"]) - single.val_history[-1]["val_loss"]) < 1e-5
    assert abs(float(rows[-1]["val_psnr"]) - single.val_history[-1]["val_psnr"]) < 1e-3
