"""Training patches drawn on the fly from a task's randomised domain (:mod:`unifmir.data.domain`).

:class:`StreamDataset` is the ``train`` split of a *stream* dataset folder (``dataset.yaml`` has a
``stream`` entry, written by ``unifmir synth --randomized``): no fixed training set, every item
renders a new acquisition, so a long training run never sees an image twice. Items are shaped,
normalised and augmented exactly as :class:`~unifmir.data.datasets.PatchDataset` does for a file
pair (its `__getitem__`; only `_source`, the pair an item is cut from, differs): each rendered image is normalised as a whole with the task's
percentiles, as prediction normalises a user's image, and then cropped. Rendering costs more than
a crop, so ``reuse`` consecutive items share one rendered image (different crops and
augmentations). Item ``i`` of epoch ``e`` is a pure function of ``(seed, e, i)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unifmir.data.datasets import PatchDataset
from unifmir.data.domain import draw_pair, get_domain
from unifmir.data.normalize import NormStats
from unifmir.tasks import TaskSpec, get_task

__all__ = ["StreamDataset", "DEFAULT_EPOCH_SIZE"]

DEFAULT_EPOCH_SIZE = 512
"""Items per epoch (epochs only pace loss phases and logging: the stream never repeats)."""


class StreamDataset(PatchDataset):
    """Randomised training pairs of ``task`` rendered on the fly (see the module docstring).

    ``image_size``: Y/X of each rendered input image (default: twice the patch, at least the
    generator's 96); ``length``: items per epoch; ``reuse``: items per rendered image (default:
    the domain's :attr:`~unifmir.data.domain.Domain.reuse`).
    """

    def __init__(
        self,
        task: str | TaskSpec,
        patch_size: int | None = None,
        seed: int = 0,
        length: int | None = None,
        augment: bool = True,
        image_size: int | None = None,
        reuse: int | None = None,
        normalize: bool = True,
    ) -> None:
        # deliberately not PatchDataset.__init__: there is no folder to read
        self.spec = get_task(task)
        self.domain = get_domain(self.spec.name)  # raises for a task without a domain
        self.patch_size = int(patch_size or self.spec.patch_size)
        if self.patch_size < 1:
            raise ValueError(f"patch_size must be positive, got {patch_size}")
        self.image_size = int(image_size or max(96, self.patch_size + self.patch_size // 2))
        if self.image_size < self.patch_size:
            raise ValueError(f"image_size {self.image_size} is smaller than the patch {self.patch_size}")
        reuse = self.domain.reuse if reuse is None else reuse
        if int(reuse) < 1:
            raise ValueError(f"reuse must be >= 1, got {reuse}")
        self.seed = int(seed)
        self.length = int(length) if length is not None else DEFAULT_EPOCH_SIZE
        self.augment = augment
        self.normalize = normalize
        self.reuse = int(reuse)
        self.z_factor = self.spec.z_factor
        self.epoch = 0
        self._last: tuple[tuple[int, int], np.ndarray, np.ndarray, NormStats | None, NormStats | None] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_last"] = None
        return state

    def render(self, key: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """The ``key``-th rendered pair of the current epoch (raw photo-electrons / unit-peak target)."""
        rng = np.random.default_rng([self.seed, self.epoch, int(key), 7])
        return draw_pair(self.spec.name, rng, self.image_size)

    def _source(self, index: int) -> tuple[np.ndarray, np.ndarray, NormStats | None, NormStats | None]:
        """The rendered pair item ``index`` is cropped from (shared by ``reuse`` items) and its stats."""
        key = (self.epoch, index // self.reuse)
        if self._last is None or self._last[0] != key:
            a, b, _ = self.render(key[1])
            stats = (self._stats_of(a), self._stats_of(b)) if self.normalize else (None, None)
            self._last = (key, a, b, *stats)
        return self._last[1:]
