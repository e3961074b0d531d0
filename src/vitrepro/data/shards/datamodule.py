"""Training and evaluation from WebDataset shards written by ``make_shards.py``.

Training streams resampled shards in a seeded, resumable order (``data/shard_stream.py``) with an
explicit epoch length, so every rank runs the same number of steps on any device count.
Evaluation reads every shard once, split over ranks and workers, so each validation sample is
seen exactly once. A nested subset (Figure 4) trains on the first ``subset`` samples of the
shards' seeded order: shards past it are never opened, samples past it in the last shard are
dropped before decoding.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import webdataset as wds
from torch.utils.data import DataLoader, IterableDataset

from vitrepro.config.errors import ConfigError
from vitrepro.data.datamodules import ImageFolderDataModule
from vitrepro.data.order import rank_and_world, trainer_position
from vitrepro.data.preprocessing import decode
from vitrepro.data.shards.train_stream import ShardLoader, ShardStream
from vitrepro.data.shards.write import read_manifest


def _manifest_classes(root: str, train_dir: str | None) -> int:
    folder = Path(root) / (train_dir or "train")
    if not (folder / "dataset.json").is_file():
        raise ConfigError("data.root", root, f"no dataset.json in {folder}; write shards first")
    return read_manifest(folder)["num_classes"]


def parse_count(value: int | str | None) -> int | None:
    """``9M``, ``300M``, ``50k`` or a plain number (Figure 4's subset sizes)."""
    if value is None or isinstance(value, int):
        return value
    text = str(value).strip().upper()
    scale = {"K": 10**3, "M": 10**6, "B": 10**9}.get(text[-1:], 1)
    number = text[:-1] if scale > 1 else text
    try:
        return round(float(number) * scale)
    except ValueError:
        raise ConfigError("data.subset", value, "use a number, or one like 9M or 300M") from None


def _first_per_class(per_class: int, num_classes: int):
    """A pipeline stage keeping the first ``per_class`` (image, label) samples of each class,
    ending the stream once every class has them."""

    def take(samples):
        counts, full = [0] * num_classes, 0
        for image, label in samples:
            if counts[label] < per_class:
                counts[label] += 1
                full += counts[label] == per_class
                yield image, label
                if full == num_classes:
                    return

    return take


class CorruptSampleGuard:
    """Counts samples that fail to decode; warns for each, stops the run above a fraction."""

    def __init__(self, max_fraction: float, min_samples: int = 100) -> None:
        self.max_fraction, self.min_samples = max_fraction, min_samples
        self.seen = self.corrupt = 0

    def count(self, sample: dict) -> dict:
        self.seen += 1
        return sample

    def __call__(self, error: Exception) -> bool:
        self.corrupt += 1
        warnings.warn(f"skipped a corrupt sample ({type(error).__name__}: {error})", stacklevel=1)
        if self.corrupt > self.max_fraction * max(self.seen, self.min_samples):
            raise RuntimeError(
                f"{self.corrupt} of {self.seen} samples failed to decode, more than "
                f"data.max_corrupt_fraction={self.max_fraction}; check the shards"
            ) from error
        return True  # continue with the next sample


class ShardsDataModule(ImageFolderDataModule):
    """``root/<train_dir>`` and ``root/<val_dir>``: shards plus ``dataset.json`` each.

    Pre-processing is the image-folder module's (Inception crop + flip for training, resize +
    centre crop for evaluation, inputs in [-1, 1]).
    """

    def __init__(
        self,
        *args,
        subset: int | str | None = None,
        shuffle_buffer: int = 2000,
        max_corrupt_fraction: float = 0.01,
        **kwargs,
    ) -> None:
        if kwargs.get("num_classes") is None:  # not given: the training shards' manifest says
            kwargs["num_classes"] = _manifest_classes(kwargs["root"], kwargs.get("train_dir"))
        super().__init__(*args, **kwargs)
        self.subset = parse_count(subset)
        self.shuffle_buffer = shuffle_buffer
        self.max_corrupt_fraction = max_corrupt_fraction
        self.manifests: dict[str, dict] = {}

    def _manifest(self, split_dir: str) -> dict:
        if split_dir not in self.manifests:
            folder = self.root / split_dir
            if not (folder / "dataset.json").is_file():
                raise ConfigError(
                    f"data.{'train' if split_dir == self.train_dir else 'val'}_dir",
                    split_dir,
                    f"no dataset.json in {folder}; write shards with src/make_shards.py",
                )
            self.manifests[split_dir] = read_manifest(folder)
        return self.manifests[split_dir]

    @property
    def num_train_samples(self) -> int:
        available = self._manifest(self.train_dir)["num_samples"]
        if self._num_train is None:
            self._num_train = available
            self._check_declared_size(available)
        if self.subset and self.subset > available:
            raise ConfigError(
                "data.subset", self.subset, f"the shards hold only {available} training samples"
            )
        return self.subset or available

    def setup(self, stage: str | None = None) -> None:
        found = self._manifest(self.train_dir)["num_classes"]
        if found != self.num_classes:
            raise ConfigError(
                "data.num_classes",
                self.num_classes,
                f"the shards in {self.root / self.train_dir} have {found} classes",
            )

    def _urls(self, split_dir: str, limit: int | None = None) -> list[str]:
        shards = self._manifest(split_dir)["shards"]
        return [
            str(self.root / split_dir / s["name"])
            for s in shards
            if limit is None or s["first"] < limit
        ]

    def _decoded(
        self, pipeline: wds.WebDataset, transform, min_side: int, per_class: int | None = None
    ) -> IterableDataset:
        guard = CorruptSampleGuard(self.max_corrupt_fraction)
        samples = (
            pipeline.map(guard.count)
            .to_tuple("jpg;png", "cls", handler=guard)
            .map_tuple(None, int, handler=guard)
        )
        if per_class:  # choose on labels first: skipped samples are never decoded
            samples = samples.compose(_first_per_class(per_class, self.num_classes))
        return samples.map_tuple(lambda data: transform(decode(data, min_side)), handler=guard)

    def _decode_training_sample(self, guard: CorruptSampleGuard):
        def decode_one(sample: dict) -> tuple[torch.Tensor, int]:
            guard.count(sample)
            data = sample.get("jpg", sample.get("png"))
            if data is None or "cls" not in sample:
                raise ValueError(f"sample {sample.get('__key__')} has no jpg/png image or cls")
            image = self.train_transform(decode(data, self.train_min_side))
            return image, int(sample["cls"])

        return decode_one

    def train_dataloader(self) -> DataLoader:
        """The seeded, resumable stream of ``data/shard_stream.py``; an epoch is the subset once
        over all ranks."""
        limit = self.num_train_samples
        trainer = getattr(self, "trainer", None)
        rank, world = rank_and_world(trainer)
        workers = max(1, self.num_workers)
        guard = CorruptSampleGuard(self.max_corrupt_fraction)
        stream = ShardStream(
            self._urls(self.train_dir, limit),
            limit=limit,
            seed=torch.initial_seed(),  # the run's seed (seed_everything)
            rank=rank,
            world=world,
            batch_size=self.batch_size,
            batches_per_worker=max(1, limit // (self.batch_size * world * workers)),
            num_workers=self.num_workers,
            shuffle_buffer=self.shuffle_buffer,
            decode=self._decode_training_sample(guard),
            handler=guard,
        )
        return ShardLoader(
            stream,
            epoch_of=self._current_epoch,
            num_workers=self.num_workers,
            generator=torch.Generator().manual_seed(torch.initial_seed()),  # not torch's own
            position=lambda: trainer_position(trainer),
            **self._loader_options(),
        )

    def val_dataloader(self) -> DataLoader:
        pipeline = wds.WebDataset(
            self._urls(self.val_dir),
            shardshuffle=False,
            handler=wds.warn_and_continue,
            nodesplitter=wds.split_by_node,
            workersplitter=wds.split_by_worker,
            empty_check=False,
        )
        pipeline = self._decoded(pipeline, self.eval_transform, self.image_size)
        pipeline = pipeline.batched(self.batch_size)
        return wds.WebLoader(
            pipeline,
            batch_size=None,
            num_workers=self.num_workers,
            generator=torch.Generator().manual_seed(torch.initial_seed()),  # not torch's own
            **self._loader_options(),
        )

    def evaluation_sets(self, per_class: int | None = None) -> tuple[IterableDataset, ...]:
        """Few-shot (support pool, test set): the pool is the first ``per_class`` examples of
        each class in the training shards' seeded order (a uniform random choice), read until
        every class has them; the test set is the whole validation split, read once."""
        self.setup("fit")

        def read(split_dir: str) -> wds.WebDataset:
            return wds.WebDataset(
                self._urls(split_dir),
                shardshuffle=False,
                handler=wds.warn_and_continue,
                nodesplitter=None,  # each rank evaluates the whole set on its own
                empty_check=False,
            )

        pool = self._decoded(read(self.train_dir), self.eval_transform, self.image_size, per_class)
        return pool, self._decoded(read(self.val_dir), self.eval_transform, self.image_size)
