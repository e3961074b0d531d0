"""Lightning DataModules: each knows its number of classes, image size and training-set size.

``data/build.py`` picks one by ``data.format``. The run builds the datamodule first because the
model and the schedule depend on these three numbers.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets
from torchvision.transforms import v2

from vitrepro.compute.performance import DEFAULTS, loader_options
from vitrepro.config.errors import ConfigError
from vitrepro.data.generators.cache import rendered_once
from vitrepro.data.generators.glyph_pairs import GlyphPairs, GlyphPairSpec
from vitrepro.data.generators.motifs import MotifCompositions, MotifSpec
from vitrepro.data.order import (
    EpochShuffle,
    PositionSeeded,
    RankShare,
    ResumableLoader,
    rank_and_world,
    trainer_position,
)
from vitrepro.data.preprocessing import (
    UNIT_RANGE_MEAN_STD,
    eval_transform,
    min_decode_side,
    normalise_batch,
    read_image_file,
    train_transform,
)
from vitrepro.data.real_labels import WithReaLLabels
from vitrepro.data.subsets import per_class_subset, split_minival

# data.generator.version -> (spec, dataset) of the embedded generator
GENERATORS = {1: (MotifSpec, MotifCompositions), 2: (GlyphPairSpec, GlyphPairs)}


class _ImageDataModule(pl.LightningDataModule):
    """What every datamodule exposes to the run: classes, image size, training images, loaders."""

    random_augmentation = False  # training crops drawn per image (seeded by PositionSeeded)

    def __init__(
        self, name: str, num_classes: int, image_size: int, batch_size: int, num_workers: int
    ) -> None:
        super().__init__()
        self.name = name
        self.num_classes = int(num_classes)
        self.image_size = int(image_size)
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None  # held out from selection; only some data has one
        self.performance: dict[str, Any] = {}  # DataLoader switches, set by build_datamodule

    @property
    def num_train_samples(self) -> int:
        raise NotImplementedError

    def _loader(self, dataset: Dataset, shuffle: bool) -> DataLoader:
        # The run's seed (seed_everything sets torch's initial seed): the order of every epoch
        # is fixed, and the checkpoint's position lets a resumed run continue it mid-epoch.
        trainer = getattr(self, "trainer", None)
        rank, world = rank_and_world(trainer)
        # Worker seeds from the loader's own generator, not torch's: a loader that starts its
        # workers later in a resumed run must not shift the random draws of training.
        own_seeds = torch.Generator().manual_seed(torch.initial_seed())
        if not shuffle:
            sampler = RankShare(len(dataset), rank, world)
            return DataLoader(
                dataset,
                batch_size=self.batch_size,
                sampler=sampler,
                num_workers=self.num_workers,
                generator=own_seeds,
                **self._loader_options(),
            )
        seed = torch.initial_seed()
        order = EpochShuffle(
            len(dataset), seed, self._current_epoch, rank, world, self.random_augmentation
        )
        return ResumableLoader(
            PositionSeeded(dataset, seed) if self.random_augmentation else dataset,
            batch_size=self.batch_size,
            sampler=order,
            num_workers=self.num_workers,
            drop_last=True,  # a constant batch keeps the global batch size exact
            generator=own_seeds,
            position=lambda: trainer_position(trainer),
            resume=lambda epoch, batches: order.resume_at(epoch, batches * self.batch_size),
            **self._loader_options(),
        )

    def _loader_options(self) -> dict[str, Any]:
        trainer = getattr(self, "trainer", None)
        gpu = trainer is not None and type(trainer.accelerator).__name__ == "CUDAAccelerator"
        return loader_options(self.performance, self.num_workers, gpu)

    def _current_epoch(self) -> int:
        trainer = getattr(self, "trainer", None)
        return trainer.current_epoch if trainer is not None else 0

    def evaluation_sets(self, per_class: int | None = None) -> tuple[Dataset, Dataset]:
        """(support pool, test set) with evaluation pre-processing, for few-shot evaluation;
        the pool keeps at most ``per_class`` random examples of each class."""
        self.setup("fit")
        test = self.test_set if self.test_set is not None else self.val_set
        return per_class_subset(self.train_set, per_class), test

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)


class SyntheticDataModule(_ImageDataModule):
    """The embedded dataset: ``generator.version`` 2 is the glyph-pair generator
    (``data/generators/glyph_pairs.py``), 1 the motif compositions
    (``data/generators/motifs.py``); no files, no network. ``num_test`` images of an
    independent stream are the held-out test set."""

    def __init__(
        self,
        name: str = "synthetic",
        num_classes: int = 10,
        image_size: int = 32,
        num_train: int = 50_000,
        num_val: int = 2_000,
        num_test: int = 0,
        task: str = "pretrain",
        seed: int = 0,
        generator: dict | None = None,
        batch_size: int = 128,
        num_workers: int = 0,
    ) -> None:
        super().__init__(name, num_classes, image_size, batch_size, num_workers)
        self.num_train, self.num_val, self.num_test = int(num_train), int(num_val), int(num_test)
        knobs = {k: tuple(v) if isinstance(v, list) else v for k, v in (generator or {}).items()}
        version = knobs.pop("version", 1)
        spec_type, self.dataset_type = GENERATORS[version]
        self.spec = spec_type(
            num_classes=self.num_classes,
            image_size=self.image_size,
            task=task,
            seed=int(seed),
            **knobs,
        )

    @property
    def num_train_samples(self) -> int:
        return self.num_train

    def setup(self, stage: str | None = None) -> None:
        once = bool(self.performance.get("render_once", DEFAULTS["render_once"]))
        if self.train_set is None:  # set up once: the fit and the final test share the images
            train = self.dataset_type(self.spec, "train", self.num_train)
            self.train_set = rendered_once(train, once)
            self.val_set = rendered_once(self.dataset_type(self.spec, "val", self.num_val), once)
        if self.num_test:
            self.test_set = self.dataset_type(self.spec, "test", self.num_test)


class ImageFolderDataModule(_ImageDataModule):
    """A class-per-folder tree (``root/train/<class>/*.jpg``, ``root/val/<class>/*.jpg``).

    Pre-processing follows Section 4.1 / Appendix B.1: Inception crop (area 5-100%) and
    horizontal flip for training; resize (+ centre crop) for evaluation; inputs normalised with
    ``mean_std`` (default: to [-1, 1]).
    """

    random_augmentation = True

    def __init__(
        self,
        name: str,
        root: str,
        num_classes: int,
        image_size: int = 224,
        train_dir: str = "train",
        val_dir: str = "val",
        crop_area: tuple[float, float] = (0.05, 1.0),
        batch_size: int = 128,
        num_workers: int = 4,
        real_labels: str | None = None,
        mean_std: tuple[list[float], list[float]] = UNIT_RANGE_MEAN_STD,
        center_crop: bool = True,
        num_train: int | None = None,
        minival_fraction: float | None = None,
    ) -> None:
        super().__init__(name, num_classes, image_size, batch_size, num_workers)
        self.declared_num_train = num_train  # the dataset's published size, for planning
        # With a minival (Table 4's selection), validation is on it and the official
        # validation split becomes the test split, measured once at the end.
        self.minival_fraction = minival_fraction
        self.real_labels = real_labels
        self.root = Path(root)
        self.train_dir, self.val_dir = train_dir, val_dir
        self.crop_area = tuple(crop_area)
        self.mean_std = mean_std
        self.train_transform = train_transform(self.image_size, self.crop_area)
        self.eval_transform = eval_transform(self.image_size, center_crop, mean_std)
        # Decode no smaller than the smallest Inception crop needs (draft mode for big JPEGs).
        self.train_min_side = min_decode_side(self.image_size, self.crop_area)
        self._num_train: int | None = None

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Training batches arrive as uint8 crops: normalised here, on the device, per batch."""
        if batch[0].dtype != torch.uint8:
            return batch
        return [normalise_batch(batch[0], self.mean_std), *batch[1:]]

    def _folder(self, split_dir: str, transform: v2.Compose, min_side: int) -> Dataset:
        loader = functools.partial(read_image_file, min_side=min_side)
        return datasets.ImageFolder(self.root / split_dir, transform, loader=loader)

    def evaluation_sets(self, per_class: int | None = None) -> tuple[Dataset, Dataset]:
        self.setup("fit")
        pool = self._folder(self.train_dir, self.eval_transform, self.image_size)
        pool = per_class_subset(pool, per_class)
        held_out = self.test_set if self.test_set is not None else self.val_set
        return pool, getattr(held_out, "base", held_out)  # few-shot uses the single labels

    @property
    def num_train_samples(self) -> int:
        if self._num_train is None:
            self.setup("fit")
        return self._num_train

    def _hold_out_minival(self, train_for_evaluation: Callable[[], Dataset]) -> None:
        if not self.minival_fraction:
            return
        train, minival = split_minival(
            self.train_set, train_for_evaluation(), self.minival_fraction
        )
        self.test_set, self.val_set, self.train_set = self.val_set, minival, train
        self._num_train = len(train)

    def _check_declared_size(self, found: int) -> None:
        """A partial copy trains fine, but epochs then mean fewer images than the paper's."""
        if self.declared_num_train and found != self.declared_num_train:
            warnings.warn(
                f"{self.name}: found {found} training images, the dataset declares "
                f"{self.declared_num_train} (data.num_train); epochs count the images found",
                stacklevel=2,
            )

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        self.train_set = self._folder(self.train_dir, self.train_transform, self.train_min_side)
        self.val_set = self._folder(self.val_dir, self.eval_transform, self.image_size)
        if self.real_labels:
            self.val_set = WithReaLLabels(self.val_set, self.real_labels, self.num_classes)
        self._num_train = len(self.train_set)
        self._check_declared_size(self._num_train)
        found = len(self.train_set.classes)
        self._hold_out_minival(
            lambda: self._folder(self.train_dir, self.eval_transform, self.image_size)
        )
        if found != self.num_classes:
            raise ConfigError(
                "data.num_classes",
                self.num_classes,
                f"{self.root / self.train_dir} has {found} class folders; "
                f"set data.num_classes={found} or point data.root at the full dataset",
            )
