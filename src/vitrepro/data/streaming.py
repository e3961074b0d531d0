"""Training and evaluation from WebDataset shards written by ``make_shards.py``.

Training streams resampled shards (each rank and worker draws shards at random) with an
explicit epoch length, so every rank runs the same number of steps on any device count.
Evaluation reads every shard once, split over ranks and workers, so each validation sample is
seen exactly once. A nested subset (Figure 4) trains on the first ``subset`` samples of the
shards' seeded order: shards past it are never opened, samples past it in the last shard are
dropped before decoding.
"""

from __future__ import annotations

import webdataset as wds
from torch.utils.data import DataLoader, IterableDataset

from vitrepro.data.datamodules import ImageFolderDataModule
from vitrepro.data.shards import read_manifest
from vitrepro.errors import ConfigError


def _position(sample: dict) -> int:
    return int(sample["__key__"])


class ShardsDataModule(ImageFolderDataModule):
    """``root/<train_dir>`` and ``root/<val_dir>``: shards plus ``dataset.json`` each.

    Pre-processing is the image-folder module's (Inception crop + flip for training, resize +
    centre crop for evaluation, inputs in [-1, 1]).
    """

    def __init__(self, *args, subset: int | None = None, shuffle_buffer: int = 2000, **kwargs):
        super().__init__(*args, **kwargs)
        self.subset = int(subset) if subset else None
        self.shuffle_buffer = shuffle_buffer
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

    def _world(self) -> int:
        trainer = getattr(self, "trainer", None)
        return trainer.world_size if trainer is not None else 1

    def _decoded(self, pipeline: wds.WebDataset, transform) -> IterableDataset:
        return (
            pipeline.decode("pil", handler=wds.warn_and_continue)
            .to_tuple("jpg;png", "cls", handler=wds.warn_and_continue)
            .map_tuple(transform, int)
        )

    def train_dataloader(self) -> DataLoader:
        limit = self.num_train_samples
        pipeline = wds.WebDataset(
            self._urls(self.train_dir, limit),
            resampled=True,
            shardshuffle=False,
            handler=wds.warn_and_continue,
            nodesplitter=None,
        ).select(lambda sample: _position(sample) < limit)
        pipeline = self._decoded(pipeline.shuffle(self.shuffle_buffer), self.train_transform)
        # An epoch is the subset once over all ranks; with_epoch counts batches per worker.
        batches = max(1, limit // (self.batch_size * self._world() * max(1, self.num_workers)))
        pipeline = pipeline.batched(self.batch_size, partial=False).with_epoch(batches)
        return wds.WebLoader(pipeline, batch_size=None, num_workers=self.num_workers)

    def val_dataloader(self) -> DataLoader:
        pipeline = wds.WebDataset(
            self._urls(self.val_dir),
            shardshuffle=False,
            handler=wds.warn_and_continue,
            nodesplitter=wds.split_by_node,
            workersplitter=wds.split_by_worker,
            empty_check=False,
        )
        pipeline = self._decoded(pipeline, self.eval_transform).batched(self.batch_size)
        return wds.WebLoader(pipeline, batch_size=None, num_workers=self.num_workers)

    def evaluation_sets(self):
        raise ConfigError(
            "data.fewshot_datasets", self.name, "few-shot sets from shards are not supported yet"
        )
