"""Training losses: the (staged) L1 recipes of the task registry (or the same stages with L2).

Each task's :attr:`unifmir.tasks.TaskSpec.loss` is a sequence of :class:`~unifmir.tasks.LossPhase`
records (weights per network output, ``until_epoch``). :class:`StagedL1` turns it into a loss
whose weights depend on the optimiser step: phase ``i`` is active while ``step < end_i`` with
``end_i = until_epoch_i * steps_per_epoch`` (or an explicit list of step numbers).
Nothing here re-encodes a task: the phases are read from the registry.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F

from unifmir.tasks import TaskSpec, get_task

__all__ = ["StagedL1", "match_size"]

_DISTANCES = {"l1": F.l1_loss, "l2": F.mse_loss}


def match_size(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Crop ``pred`` bottom/right to ``target``'s spatial size (multi-task paths do not crop)."""
    h, w = target.shape[-2:]
    if pred.shape[-2] < h or pred.shape[-1] < w:
        raise ValueError(
            f"network output {tuple(pred.shape)} is smaller than the target {tuple(target.shape)}; "
            "check the patch size and the task's scale"
        )
    return pred[..., :h, :w]


class StagedL1:
    """L1 loss summed over network outputs with step-dependent weights.

    Parameters
    ----------
    task:
        Task name or spec; its ``loss`` phases are used.
    steps_per_epoch:
        Converts ``LossPhase.until_epoch`` into a step number.
    phase_steps:
        Explicit phase ends in steps (one per phase with an ``until_epoch``), overriding the above.
    fixed_weights:
        One weighting used for the whole run instead of the registry's phases.
    kind:
        ``"l1"`` (the reference's, default) or ``"l2"`` (mean squared error). L1's gradient has
        the same size at every voxel, so on sparse targets (light-field volumes: a few % signal)
        a network that cannot yet tell where the signal is settles at the per-voxel median, the
        background; L2 weights each voxel by its error and keeps the signal in the gradient.
    total_steps:
        Length of the run. Epoch-based phase ends that would reach past it are compressed
        proportionally so that the last phase starts at half the run: otherwise a short run never
        leaves its first phase (the registry's volumetric recipe trains only the UNetA stage for
        30 epochs; a 300-step small-preset run has 10, so its final output, the one a bundle
        returns, never received a gradient and stayed the mean volume). Explicit
        ``phase_steps`` are kept as given.
    """

    def __init__(
        self,
        task: str | TaskSpec,
        steps_per_epoch: int = 100,
        phase_steps: Sequence[int] | None = None,
        fixed_weights: Mapping[str, float] | None = None,
        total_steps: int | None = None,
        kind: str = "l1",
    ) -> None:
        self.spec = get_task(task)
        if kind not in _DISTANCES:
            raise ValueError(f"loss kind must be one of {', '.join(_DISTANCES)}, got {kind!r}")
        self.kind = kind
        if fixed_weights is not None:
            self.phases: list[tuple[int | None, dict[str, float]]] = [(None, dict(fixed_weights))]
        else:
            ends = iter(phase_steps) if phase_steps is not None else None
            self.phases = []
            for phase in self.spec.loss:
                if phase.until_epoch is None:
                    end = None
                elif ends is not None:
                    end = int(next(ends))
                else:
                    end = int(phase.until_epoch) * int(steps_per_epoch)
                self.phases.append((end, dict(phase.weights)))
            if phase_steps is None and total_steps is not None:
                self.phases = _fit_phases(self.phases, int(total_steps))
        for _, weights in self.phases:
            bad = set(weights) - set(self.spec.stages)
            if bad:
                raise ValueError(f"loss weights name outputs {sorted(bad)} that task {self.spec.name!r} lacks")

    def weights_at(self, step: int) -> dict[str, float]:
        """The output weights in force at optimiser step ``step`` (0-based)."""
        for end, weights in self.phases:
            if end is None or step < end:
                return weights
        return self.phases[-1][1]

    def needs_stages(self) -> bool:
        """Whether any phase weights an output other than ``final`` (network must return stages)."""
        return any(k != "final" for _, w in self.phases for k in w)

    def __call__(
        self, outputs: Mapping[str, torch.Tensor], target: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Return the weighted loss and the unweighted loss (L1 or L2) of each output used (as floats)."""
        weights = self.weights_at(step)
        total: torch.Tensor | None = None
        parts: dict[str, float] = {}
        for name, w in weights.items():
            if w == 0:
                continue
            pred = match_size(outputs[name], target).float()
            d = _DISTANCES[self.kind](pred, target.float())
            parts[name] = float(d.detach())
            total = w * d if total is None else total + w * d
        if total is None:
            raise ValueError(f"all loss weights are zero at step {step} for task {self.spec.name!r}")
        return total, parts


def _fit_phases(phases: list[tuple[int | None, dict[str, float]]],
                total_steps: int) -> list[tuple[int | None, dict[str, float]]]:
    """Compress phase ends that reach the end of a ``total_steps`` run so the last phase gets
    the second half of it (ends in proportion, each at least one step after the previous)."""
    ends = [e for e, _ in phases if e is not None]
    if not ends or max(ends) < total_steps:
        return phases
    factor = (total_steps // 2) / max(ends)
    out: list[tuple[int | None, dict[str, float]]] = []
    last = 0
    for end, weights in phases:
        if end is not None:
            end = max(last + 1, int(round(end * factor)))
            last = end
        out.append((end, weights))
    return out
