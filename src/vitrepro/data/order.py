"""Which samples a rank sees, in which order, and from where a resumed run continues.

The training order of every data path is a function of (seed, epoch, rank) alone, and the
trainer's checkpoints record how far into its epoch a run got (``ResumableLoader``), so a run
killed at any step and resumed sees exactly the samples the uninterrupted run would have seen.
Each rank takes its own share of a sample order: no sample is duplicated on two ranks, in
training or in evaluation (which Lightning's padded distributed sampler would do), so the
trainer runs with ``use_distributed_sampler=False``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


def mixed_seed(*parts: int) -> int:
    """One 63-bit seed from several integers (seed, epoch, rank, worker, position): distinct
    tuples give unrelated streams, unlike ``seed + epoch``."""
    digest = hashlib.blake2b(repr(tuple(int(p) for p in parts)).encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "little") >> 1


def seed_cpu_generator(seed: int) -> None:
    """Seed the CPU generator the augmentations draw from, as ``torch.manual_seed`` does, but
    only that one: ``torch.manual_seed`` also queues a seeding of every uninitialised
    accelerator backend, formatting a stack trace each time (0.3-0.6 ms a sample, measured, and
    a queue that grows with every sample)."""
    torch.default_generator.manual_seed(seed)


def rank_and_world(trainer: Any) -> tuple[int, int]:
    """This process's rank and the number of ranks (0 and 1 without a trainer)."""
    if trainer is None:
        return 0, 1
    return int(trainer.global_rank), int(trainer.world_size)


class EpochShuffle(Sampler[int]):
    """A random order of ``size`` indices that is a function of (seed, epoch); rank ``r`` of
    ``world`` takes positions ``r, r + world, ...`` of it (equal shares, nothing padded).

    The epoch is read from the trainer when an epoch starts (``epoch_of``): Lightning's own
    ``set_epoch`` count is one ahead after a resume. ``resume_at`` makes the next pass over
    that epoch start after the samples its rank had already trained on."""

    def __init__(
        self,
        size: int,
        seed: int,
        epoch_of: Callable[[], int] = lambda: 0,
        rank: int = 0,
        world: int = 1,
        with_epoch: bool = False,
    ) -> None:
        self.size, self.seed, self.epoch_of = size, seed, epoch_of
        self.rank, self.world = rank, world
        self.with_epoch = with_epoch  # yield (index, epoch), for PositionSeeded
        self._resume: tuple[int, int] | None = None  # (epoch, samples of this rank done)

    def resume_at(self, epoch: int, samples_done: int) -> None:
        self._resume = (epoch, samples_done)

    def __iter__(self) -> Iterator[int]:
        epoch = self.epoch_of()
        # seed + epoch, as before ranks had shares: one process keeps its published orders
        generator = torch.Generator().manual_seed(self.seed + epoch)
        share = torch.randperm(self.size, generator=generator)[self.rank :: self.world]
        share = share[: len(self)]
        start = 0
        if self._resume is not None:
            if self._resume[0] == epoch:
                start = self._resume[1]
            self._resume = None  # later epochs start at their beginning
        indices = share[start:].tolist()
        return iter([(i, epoch) for i in indices] if self.with_epoch else indices)

    def __len__(self) -> int:
        return self.size // self.world


class PositionSeeded(Dataset):
    """Random augmentation (Inception crop, flip) as a function of (seed, epoch, index): an
    image gets the same crop in every run, with any number of workers and after a resume.
    Keys are ``(index, epoch)``, as ``EpochShuffle(with_epoch=True)`` yields them."""

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, epoch = key
        with torch.random.fork_rng(devices=[]):  # the caller's generator is left as it was
            seed_cpu_generator(mixed_seed(self.seed, epoch, index))
            return self.dataset[index]


class RankShare(Sampler[int]):
    """Evaluation indices of one rank: ``rank, rank + world, ...`` in order. Shares differ by
    at most one sample and together hold every sample exactly once."""

    def __init__(self, size: int, rank: int = 0, world: int = 1) -> None:
        self.indices = range(rank, size, world)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class ResumableLoader(DataLoader):
    """A DataLoader whose position is part of the trainer's checkpoints.

    Lightning saves ``state_dict()`` of every stateful training loader and hands it back on
    resume before the first batch is drawn. The position is read from the trainer (batches
    it has trained on in the current epoch), not counted here: workers and prefetching draw
    batches ahead of training. ``resume`` (set by the datamodule) moves the data stream past
    ``batches`` of that epoch: a sampler's ``resume_at`` or a stream's own.
    """

    def __init__(
        self,
        *args: Any,
        position: Callable[[], dict[str, int]],
        resume: Callable[[int, int], None],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._position, self._resume = position, resume

    def state_dict(self) -> dict[str, int]:
        return dict(self._position())

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume(int(state["epoch"]), int(state["batches"]))


def trainer_position(trainer: Any) -> dict[str, int]:
    """(epoch, batches trained on in it) of a fitting trainer, as a checkpoint records it."""
    if trainer is None:
        return {"epoch": 0, "batches": 0}
    progress = trainer.fit_loop.epoch_loop.batch_progress.current
    return {"epoch": int(trainer.current_epoch), "batches": int(progress.processed)}
