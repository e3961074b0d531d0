"""The training stream of a sharded dataset: reproducible and resumable at any step.

Each DataLoader worker of each rank draws shards with replacement (WebDataset's resampling:
every rank runs the same number of steps on any device count) from its own part of the shards
(each rank's and worker's a disjoint one, as each host reads its own split in big_vision; with
fewer shards than ranks x workers, each rank its own part; with fewer than ranks, all of them),
so ranks train on disjoint samples. It shuffles samples through a buffer; both draws come from
one generator seeded by (seed, epoch, rank, stream), one stream per worker, and each sample's
augmentation from a generator seeded by its position in that stream. So the order and the
crops are a function of those numbers alone (WebDataset's default seeding uses the process id
and the clock), and a resumed run skips the samples it had trained on without decoding them.
Samples past ``limit`` (a nested subset, Figure 4) are dropped before decoding. Shards are
read by ``data/tar_reader.py`` (a tenth of ``tarfile``'s cost per sample) and shuffled by
WebDataset's buffer.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch
import webdataset as wds
from torch.utils.data import IterableDataset, default_collate, get_worker_info

from vitrepro.data.order import ResumableLoader, mixed_seed, seed_cpu_generator
from vitrepro.data.shards.tar_headers import TarFormatError, shard_samples


def _position(sample: dict) -> int:
    return int(sample["__key__"])


class ShardStream(IterableDataset):
    """Batches of ``(images, labels)`` for one rank: ``batches_per_worker`` from each worker an
    epoch. ``decode`` turns a raw sample into ``(image, label)`` or raises (the caller's error
    handler decides to skip or to stop)."""

    def __init__(
        self,
        urls: list[str],
        limit: int,
        seed: int,
        rank: int,
        world: int,
        batch_size: int,
        batches_per_worker: int,
        num_workers: int,
        shuffle_buffer: int,
        decode: Callable[[dict], tuple[torch.Tensor, int]],
        handler: Callable[[Exception], bool],
    ) -> None:
        self.urls, self.limit, self.seed, self.rank, self.world = urls, limit, seed, rank, world
        self.batch_size, self.batches_per_worker = batch_size, batches_per_worker
        self.num_workers = max(1, num_workers)
        self.shuffle_buffer = shuffle_buffer
        self.decode, self.handler = decode, handler
        self.epoch = 0  # set in the main process before each epoch's workers start
        self.resume: tuple[int, int] | None = None  # (epoch, batches this rank trained on)

    def __len__(self) -> int:
        return self.batches_per_worker * self.num_workers

    def shards_of(self, stream: int) -> list[str]:
        """The part of the shards that this rank's stream ``stream`` draws from."""
        parts = self.world * self.num_workers
        if len(self.urls) >= parts:
            return self.urls[self.rank * self.num_workers + stream :: parts]
        return self.urls[self.rank :: self.world] if len(self.urls) >= self.world else self.urls

    def ordered_samples(self, stream: int, epoch: int) -> Iterator[dict]:
        """One stream's raw samples (``__key__`` is the position in the shards' seeded order)."""
        rng = random.Random(mixed_seed(self.seed, epoch, self.rank, stream))
        urls = self.shards_of(stream)

        def shards() -> Iterator[dict]:
            while True:  # a shard that cannot be read is skipped with a warning, as WebDataset does
                url = rng.choice(urls)
                try:
                    yield from shard_samples(url)
                except (OSError, TarFormatError) as error:
                    warnings.warn(f"skipped the rest of shard {url}: {error}", stacklevel=1)

        samples = (s for s in shards() if _position(s) < self.limit)
        initial = min(100, self.shuffle_buffer)
        return wds.shuffle(self.shuffle_buffer, initial, rng=rng)(samples)

    def _stream_and_skip(self, worker: int) -> tuple[int, int]:
        """(stream, batches of it already trained on) for this DataLoader worker. Stream ``s``
        makes global batches ``s, s + W, ...`` of the epoch (a DataLoader takes its workers in
        turn, starting at worker 0), so a loader resumed after ``done`` batches gives worker
        ``w`` stream ``(w + done) mod W``: the batches then come in the uninterrupted order."""
        done = 0
        if self.resume is not None and self.resume[0] == self.epoch:
            done = self.resume[1]
        stream = (worker + done) % self.num_workers
        return stream, max(0, -(-(done - stream) // self.num_workers))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        info = get_worker_info()
        stream, skipped = self._stream_and_skip(info.id if info is not None else 0)
        skip = skipped * self.batch_size
        wanted = self.batches_per_worker * self.batch_size
        batch: list[tuple[torch.Tensor, int]] = []
        # A batch is B consecutive positions, so a resumed stream restarts at a batch boundary
        # even where corrupt samples were dropped (such a batch is one sample short).
        for position, sample in enumerate(self.ordered_samples(stream, self.epoch)):
            if position >= wanted:
                break
            if position < skip:
                continue
            with torch.random.fork_rng(devices=[]):  # the crop of this position, every time
                seed_cpu_generator(mixed_seed(self.seed, self.epoch, self.rank, stream, position))
                try:
                    batch.append(self.decode(sample))
                except Exception as error:  # the handler skips the sample or raises
                    if not self.handler(error):
                        raise
            if (position + 1) % self.batch_size == 0 and batch:
                yield default_collate(batch)
                batch = []


class ShardLoader(ResumableLoader):
    """Hands the trainer's epoch to the stream before each epoch's workers start (they are
    started anew each epoch so that they see it)."""

    def __init__(self, stream: ShardStream, epoch_of: Callable[[], int], **kwargs: Any) -> None:
        kwargs["persistent_workers"] = False
        super().__init__(stream, batch_size=None, resume=self._resume_stream, **kwargs)
        self.stream, self._epoch_of = stream, epoch_of

    def _resume_stream(self, epoch: int, batches: int) -> None:
        self.stream.resume = (epoch, batches)

    def __iter__(self) -> Iterator:
        self.stream.epoch = self._epoch_of()
        return super().__iter__()
