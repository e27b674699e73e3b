"""Resumable, distributed, reproducible sampling of training batches.

The training stream of one task is indexed by a *global sample position* ``p = 0, 1, 2, ...``:
position ``p`` is item ``perm_e[p mod n]`` of the dataset, where ``perm_e`` is a seeded random
permutation for pass ``e = p // n``, and every random choice the dataset makes for that item
(crop, flips, noise) is drawn with Python/NumPy/torch generators seeded from ``(seed, p)``.
The batch ``k`` of global size ``B`` holds positions ``k*B ... k*B + B - 1``; with ``W``
processes, rank ``r`` takes the contiguous slice ``r*B/W ... (r+1)*B/W - 1`` (the role of
``torch.utils.data.DistributedSampler``, but resumable mid-epoch).

Because a sample depends only on ``(seed, p)``, a run resumed at batch ``k`` sees exactly the
samples the uninterrupted run saw, whatever the number of data-loader workers, and ``W``
processes together see exactly the samples a single process sees with the same global batch.
"""

from __future__ import annotations

import random
from typing import Any, Iterator, Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

__all__ = ["PositionDataset", "PositionBatchSampler", "TaskStream", "seeded_item", "derive_seed"]

_MASK = (1 << 63) - 1


def derive_seed(*parts: int) -> int:
    """A 63-bit seed derived deterministically from integers (NumPy SeedSequence)."""
    ss = np.random.SeedSequence([int(p) & 0xFFFFFFFFFFFF for p in parts])
    return int(ss.generate_state(2, dtype=np.uint64).astype(object)[0]) & _MASK


def seeded_item(dataset: SizedDataset, index: int, seed: int) -> Any:
    """``dataset[index]`` with the global Python/NumPy/torch RNGs seeded from ``seed``.

    The caller's RNG states are restored afterwards, so training randomness (drop-path) is not
    disturbed. (Datasets that are pure functions of ``(seed, epoch, index)``, like
    :class:`unifmir.data.datasets.PatchDataset`, do not need the seeding; it makes any other
    dataset reproducible too.)
    """
    py_state = random.getstate()
    np_state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        random.seed(seed)
        np.random.seed(seed % (2**32))
        torch.manual_seed(seed)
        try:
            return dataset[index]
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


class SizedDataset(Protocol):
    """A map-style dataset with a length (``torch.utils.data.Dataset`` does not declare ``__len__``)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Any: ...


class PositionDataset(Dataset):
    """Map a global sample position to a (seeded) item of ``inner``; see the module docstring."""

    def __init__(self, inner: SizedDataset, seed: int, shuffle: bool = True) -> None:
        self.inner = inner
        self.seed = int(seed)
        self.shuffle = shuffle
        self.n = len(inner)
        if self.n == 0:
            raise ValueError("the training dataset is empty; check the dataset folder")
        self._perm_epoch = -1
        self._perm: list[int] = []

    def __len__(self) -> int:  # positions are unbounded; report one pass
        return self.n

    def index_of(self, position: int) -> int:
        """The dataset index used at ``position``."""
        epoch, offset = divmod(int(position), self.n)
        if not self.shuffle:
            return offset
        if epoch != self._perm_epoch:
            g = torch.Generator().manual_seed(derive_seed(self.seed, 1, epoch))
            self._perm = torch.randperm(self.n, generator=g).tolist()
            self._perm_epoch = epoch
        return self._perm[offset]

    def __getitem__(self, position: int) -> Any:
        index = self.index_of(position)
        set_epoch = getattr(self.inner, "set_epoch", None)
        if callable(set_epoch):  # new random patches on every pass over the data
            set_epoch(int(position) // self.n)
        return seeded_item(self.inner, index, derive_seed(self.seed, 2, position))


class PositionBatchSampler(Sampler[list[int]]):
    """Infinite batches of positions for one rank, starting at global batch ``start``."""

    def __init__(self, global_batch: int, start: int = 0, rank: int = 0, world_size: int = 1) -> None:
        if global_batch % world_size:
            raise ValueError(
                f"the global batch size {global_batch} is not divisible by the {world_size} "
                "processes; choose a batch size that is a multiple of the process count"
            )
        self.global_batch = global_batch
        self.local = global_batch // world_size
        self.start = start
        self.rank = rank

    def __iter__(self) -> Iterator[list[int]]:
        k = self.start
        while True:
            base = k * self.global_batch + self.rank * self.local
            yield list(range(base, base + self.local))
            k += 1

    def __len__(self) -> int:  # pragma: no cover - infinite
        raise TypeError("PositionBatchSampler is infinite")


class TaskStream:
    """Infinite, resumable stream of training batches of one task.

    ``batches`` counts the global batches consumed; it is all the state needed to resume.
    """

    def __init__(
        self,
        dataset: SizedDataset,
        global_batch: int,
        seed: int,
        *,
        rank: int = 0,
        world_size: int = 1,
        workers: int = 0,
        pin_memory: bool = False,
        start: int = 0,
    ) -> None:
        self.positions = PositionDataset(dataset, seed)
        self.global_batch = global_batch
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.workers = workers
        self.pin_memory = pin_memory
        self.batches = start
        self._iter: Iterator[Any] | None = None

    def _make_iter(self) -> Iterator[Any]:
        sampler = PositionBatchSampler(self.global_batch, self.batches, self.rank, self.world_size)
        loader = DataLoader(
            self.positions,
            batch_sampler=sampler,
            num_workers=self.workers,
            pin_memory=self.pin_memory,
            # A private generator: creating the iterator must not consume the global torch RNG.
            generator=torch.Generator().manual_seed(derive_seed(self.seed, 3, self.batches)),
            persistent_workers=False,
        )
        return iter(loader)

    def next(self) -> Any:
        """The next batch (a collated dict of tensors)."""
        if self._iter is None:
            self._iter = self._make_iter()
        batch = next(self._iter)
        self.batches += 1
        return batch

    def state_dict(self) -> dict[str, int]:
        return {"batches": self.batches}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.batches = int(state["batches"])
        self._iter = None
