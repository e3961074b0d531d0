"""CIFAR-10 / CIFAR-100 from their on-disk python format (the paper's transfer targets, Table 2
and Figure 5), with the image-folder module's transforms; never downloads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset
from torchvision import datasets
from torchvision.datasets import VisionDataset
from torchvision.transforms import v2

from vitrepro.config.errors import ConfigError
from vitrepro.data.cifar_batches import read_batch
from vitrepro.data.datamodules import ImageFolderDataModule
from vitrepro.data.subsets import per_class_subset


class _CIFARFromDisk:
    """torchvision's CIFAR dataset on its on-disk python format, with the batch files read by
    a restricted unpickler (``cifar_batches``): torchvision's own reader unpickles them in
    full, so its ``__init__`` is replaced here. Never downloads.

    The archive's md5 check is replaced by a presence check, so re-packed copies (and the
    tests' small generated ones) load too.
    """

    def __init__(self, root: str, train: bool = True, transform: Any = None, **_: Any) -> None:
        VisionDataset.__init__(self, root, transform=transform)
        self.train = train
        if not self._check_integrity():
            raise RuntimeError("batch files not found")
        folder = Path(self.root) / self.base_folder
        batches = [
            read_batch(folder / name) for name, _ in (self.train_list if train else self.test_list)
        ]
        labels = "labels" if "labels" in batches[0] else "fine_labels"  # CIFAR-10 / CIFAR-100
        self.data = np.vstack([batch["data"] for batch in batches])
        self.data = self.data.reshape(-1, 3, 32, 32).transpose((0, 2, 3, 1))  # HWC, as torchvision
        self.targets = [label for batch in batches for label in batch[labels]]
        self._load_meta()

    def _check_integrity(self) -> bool:
        files = [*self.train_list, *self.test_list]
        return all((Path(self.root) / self.base_folder / name).is_file() for name, _ in files)

    def _load_meta(self) -> None:
        path = Path(self.root) / self.base_folder / self.meta["filename"]
        if not path.is_file():
            raise RuntimeError(f"{path} not found")
        self.classes = read_batch(path)[self.meta["key"]]
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}


class CIFAR10FromDisk(_CIFARFromDisk, datasets.CIFAR10):
    pass


class CIFAR100FromDisk(_CIFARFromDisk, datasets.CIFAR100):
    pass


CIFAR_READERS = {"cifar10": CIFAR10FromDisk, "cifar100": CIFAR100FromDisk}


class CIFARDataModule(ImageFolderDataModule):
    """CIFAR-10 / CIFAR-100 (the paper's transfer targets, Table 2 and Figure 5) from ``root``
    holding ``cifar-10-batches-py`` or ``cifar-100-python``; the official train/test split,
    upsampled to the fine-tuning resolution with the image-folder module's transforms."""

    def __init__(self, *args, variant: str = "cifar10", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if variant not in CIFAR_READERS:
            raise ConfigError("data.variant", variant, f"choose one of {sorted(CIFAR_READERS)}")
        self.reader = CIFAR_READERS[variant]

    def _read(self, train: bool, transform: v2.Compose) -> Dataset:
        try:
            return self.reader(str(self.root), train=train, transform=transform, download=False)
        except RuntimeError as error:
            raise ConfigError(
                "data.root", self.root, f"no CIFAR files there ({error}); set paths.data_root"
            ) from error

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set = self._read(True, self.train_transform)
            self.val_set = self._read(False, self.eval_transform)
            self._num_train = len(self.train_set)
            self._check_declared_size(self._num_train)
            self._hold_out_minival(lambda: self._read(True, self.eval_transform))

    def evaluation_sets(self, per_class: int | None = None) -> tuple[Dataset, Dataset]:
        self.setup("fit")
        return per_class_subset(self._read(True, self.eval_transform), per_class), self.val_set
