"""Fine-tuning: build the single-task network to train and initialise it.

``init`` (``TrainConfig.init``) is

* ``"scratch"``: a fresh network of the configured preset (plus overrides);
* one of our checkpoints (``save_checkpoint`` format, single- or multi-task), or
* any official UniFMIR checkpoint (the multi-task UniModel or a released single-task file),
  read with :func:`unifmir.model.checkpoints.load_any` / ``load_official``.

Weights are transferred by *meaning*, not by name: source and target state_dicts are both
mapped to the multi-task (UniModel) naming (:func:`~unifmir.model.checkpoints.single_to_multi`),
and every tensor whose mapped name and shape match is copied. So a multi-task checkpoint gives
the task's head, the shared body and the shared tail; a checkpoint of another task gives the
shared body (and the shared tail); and a *task variant* the pretrained model has no head for —
SR at scale 1 (``model.overrides: {upscale: 1}``), a new channel count (``{in_chans: 3}``) —
keeps every compatible tensor while the mismatched head/upsampler start fresh. The report says
which tensors were copied and which are new.

``freeze_body=True`` trains only the task head and tail (the shared SwinIR body is frozen).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from unifmir.model.unet import UNetA
from unifmir.tasks import get_task, other_task

from .config import TrainConfig

__all__ = ["InitReport", "prepare_finetune_model", "transfer_weights", "freeze_body", "body_parameter_names",
           "BODY_PREFIXES"]

BODY_PREFIXES = ("patch_embed.", "layers.", "norm.", "conv_after_body.")
"""State-dict prefixes of the shared SwinIR body (identical in every naming)."""


@dataclass
class InitReport:
    """How a network was initialised."""

    source: str
    """``scratch`` or the checkpoint path."""
    source_task: str | None = None
    copied: list[str] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)
    frozen: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.source == "scratch":
            return "initialised from scratch"
        s = (
            f"initialised from {self.source} (task {self.source_task or 'multi-task'}): "
            f"{len(self.copied)} tensors copied, {len(self.fresh)} new"
        )
        if self.fresh:
            s += f" ({', '.join(sorted({k.split('.')[0] for k in self.fresh}))})"
        if self.frozen:
            s += f"; {len(self.frozen)} body parameters frozen"
        return s

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "source_task": self.source_task, "copied": len(self.copied),
                "fresh": list(self.fresh), "frozen": len(self.frozen)}


def _strip_body_prefix(name: str) -> str:
    return name[len("denoise."):] if name.startswith("denoise.") else name


def body_parameter_names(model: nn.Module) -> list[str]:
    """Names of the parameters of the shared SwinIR body of a single- or multi-task network."""
    return [n for n, _ in model.named_parameters() if _strip_body_prefix(n).startswith(BODY_PREFIXES)]


def freeze_body(model: nn.Module) -> list[str]:
    """Set ``requires_grad=False`` on the body parameters; return their names."""
    names = set(body_parameter_names(model))
    for n, p in model.named_parameters():
        if n in names:
            p.requires_grad_(False)
    return sorted(names)


def _to_multi_names(sd: Mapping[str, torch.Tensor], task: str | None) -> dict[str, str]:
    """Map each key of a (single-task ``task`` or multi-task) state_dict to its UniModel name."""
    from unifmir.model.checkpoints import single_to_multi

    if task is None:
        return {k: k for k in sd}
    keys = list(sd)
    mapped = list(single_to_multi(sd, task).keys())
    if len(mapped) != len(keys):  # pragma: no cover - guarded by single_to_multi's own checks
        raise RuntimeError("key mapping is not one-to-one")
    return dict(zip(keys, mapped))


def transfer_weights(
    target: nn.Module, target_task: str | None, source_sd: Mapping[str, torch.Tensor], source_task: str | None
) -> tuple[list[str], list[str]]:
    """Copy every tensor of ``source_sd`` whose UniModel name and shape match into ``target``.

    A module (a stage network such as UNetA: all of it) whose tensors do not all fit is left
    entirely fresh. Returns ``(copied, fresh)``
    target key lists.
    """
    tgt_sd = target.state_dict()
    tgt_names = _to_multi_names(tgt_sd, target_task)
    src_by_multi = {m: source_sd[k] for k, m in _to_multi_names(source_sd, source_task).items()}
    def fits(key: str) -> bool:
        src = src_by_multi.get(tgt_names[key])
        value = tgt_sd[key]
        return src is not None and tuple(src.shape) == tuple(value.shape) and src.dtype == value.dtype

    # A module (e.g. a conv) is copied whole or not at all: a new head keeps no stale bias. A
    # whole stage network (UNetA) is one such unit: a narrower UNetA than the source's would
    # otherwise keep the few tensors whose widths happen to agree (its 61-slice output
    # BatchNorm), a mix of pretrained statistics and fresh convolutions.
    stages = tuple(f"{name}." for name, m in target.named_modules() if name and isinstance(m, UNetA))

    def module(key: str) -> str:
        return next((p for p in stages if key.startswith(p)), key.rsplit(".", 1)[0])

    bad_modules = {module(k) for k in tgt_sd if not fits(k)}
    new_sd = {}
    copied, fresh = [], []
    for key, value in tgt_sd.items():
        if module(key) not in bad_modules:
            new_sd[key] = src_by_multi[tgt_names[key]].detach().clone()
            copied.append(key)
        else:
            new_sd[key] = value
            fresh.append(key)
    target.load_state_dict(new_sd, strict=True)
    return copied, fresh


def _load_source(init: str) -> nn.Module:
    """Load ``init`` (ours or official) as recorded/recognised, without reinterpreting its task."""
    from unifmir.model.checkpoints import load_any

    path = Path(init)
    if not path.exists():
        raise FileNotFoundError(
            f"initial checkpoint {init} does not exist; pass a unifmir or official UniFMIR checkpoint, or 'scratch'"
        )
    src = load_any(path)
    from unifmir.predict.api import check_network

    check_network(src, None, source=init)  # NaN/Inf weights: named, before training starts
    return src


def prepare_finetune_model(config: TrainConfig) -> tuple[nn.Module, InitReport]:
    """Build and initialise the single-task network of ``config`` (in training mode, on CPU)."""
    from unifmir.model.checkpoints import single_task_config
    from unifmir.model.config import resolve_config
    from unifmir.model.factory import build_model
    from unifmir.model.network import network_config, network_task

    spec = get_task(config.task)
    task = spec.name
    overrides = dict(config.model.overrides)
    if config.init == "scratch":
        cfg = resolve_config({"preset": config.model.preset, **overrides})
        model = build_model(task, cfg)
        report = InitReport(source="scratch", fresh=list(model.state_dict()))
    else:
        src = _load_source(config.init)
        src_task = network_task(src)
        if src_task is None:  # the multi-task model: this task's part of it (the rule extract_task uses)
            base = single_task_config(network_config(src), task).model_dump()
        else:
            base = network_config(src).model_dump()
        if other_task(src_task, task):
            # another task's network: keep its sizes, take channels/scale from the registry
            base["in_chans"] = None
            base["upscale"] = None
        base.update(overrides)
        cfg = resolve_config(base)
        model = build_model(task, cfg)
        copied, fresh = transfer_weights(model, task, src.state_dict(), src_task)
        if not copied:
            raise ValueError(
                f"no weight of {config.init} fits the {task!r} network (different sizes?); "
                "use --from scratch or a checkpoint of the same model size"
            )
        report = InitReport(source=str(config.init), source_task=src_task, copied=copied, fresh=fresh)
    if config.freeze_body:
        report.frozen = freeze_body(model)
    model.train()
    return model, report
