"""Lightning DataModules: each knows its number of classes, image size and training-set size.

A data config is a datamodule's arguments plus ``METADATA_KEYS``, facts about the dataset that
other parts of the config read (Table 4's fine-tuning steps, the few-shot downstream sets).

The run builds the datamodule first (DESIGN.md, "The path of one run") because the model and
the schedule depend on these three numbers.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets, transforms

from vitrepro.data.synthetic import MotifCompositions, MotifSpec
from vitrepro.errors import ConfigError

METADATA_KEYS = ("finetune_steps", "fewshot_datasets")


def build_datamodule(data_cfg: dict, batch_size: int) -> pl.LightningDataModule:
    """Instantiate a ``conf/data`` entry (its metadata keys are not datamodule arguments)."""
    arguments = {k: v for k, v in data_cfg.items() if k not in METADATA_KEYS}
    return instantiate(arguments, batch_size=batch_size)


# The official ViT checkpoints expect inputs in [-1, 1] (mean 0.5, std 0.5 per channel).
UNIT_RANGE_MEAN_STD = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


class _ImageDataModule(pl.LightningDataModule):
    """What every datamodule exposes to the run: classes, image size, training images, loaders."""

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

    @property
    def num_train_samples(self) -> int:
        raise NotImplementedError

    def _loader(self, dataset: Dataset, shuffle: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            drop_last=shuffle,  # a constant batch keeps the global batch size exact
        )

    def evaluation_sets(self) -> tuple[Dataset, Dataset]:
        """(support pool, test set) with evaluation pre-processing, for few-shot evaluation."""
        self.setup("fit")
        return self.train_set, self.val_set

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)


class SyntheticDataModule(_ImageDataModule):
    """The embedded motif-composition dataset (``data/synthetic.py``): no files, no network."""

    def __init__(
        self,
        name: str = "synthetic",
        num_classes: int = 10,
        image_size: int = 32,
        num_train: int = 50_000,
        num_val: int = 2_000,
        task: str = "pretrain",
        seed: int = 0,
        generator: dict | None = None,
        batch_size: int = 128,
        num_workers: int = 0,
    ) -> None:
        super().__init__(name, num_classes, image_size, batch_size, num_workers)
        self.num_train, self.num_val = int(num_train), int(num_val)
        self.spec = MotifSpec(
            num_classes=self.num_classes,
            image_size=self.image_size,
            task=task,
            seed=int(seed),
            **{k: tuple(v) if isinstance(v, list) else v for k, v in (generator or {}).items()},
        )

    @property
    def num_train_samples(self) -> int:
        return self.num_train

    def setup(self, stage: str | None = None) -> None:
        self.train_set = MotifCompositions(self.spec, "train", self.num_train)
        self.val_set = MotifCompositions(self.spec, "val", self.num_val)


class WithReaLLabels(Dataset):
    """ImageNet validation images with their ReaL labels (Beyer et al. 2020; the paper's Table 2).

    ``real.json`` lists, for validation image ``ILSVRC2012_val_<n>``, the re-assessed set of
    correct classes (possibly empty: those images are left out of ReaL accuracy). Samples
    become ``(image, label, multi-hot ReaL labels)``.
    """

    def __init__(self, base: datasets.ImageFolder, real_json: str | Path, num_classes: int) -> None:
        self.base, self.num_classes = base, num_classes
        self.real = json.loads(Path(real_json).read_text())
        numbers = [re.search(r"(\d+)\.\w+$", Path(p).name) for p, _ in base.samples]
        if not all(numbers):
            raise ConfigError(
                "data.real_labels", real_json, "validation files must be named ILSVRC2012_val_<n>.*"
            )
        self.positions = [int(m.group(1)) - 1 for m in numbers]

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, torch.Tensor]:
        image, label = self.base[index]
        multi_hot = torch.zeros(self.num_classes, dtype=torch.bool)
        multi_hot[self.real[self.positions[index]]] = True
        return image, label, multi_hot


class ImageFolderDataModule(_ImageDataModule):
    """A class-per-folder tree (``root/train/<class>/*.jpg``, ``root/val/<class>/*.jpg``).

    Pre-processing follows Section 4.1 / Appendix B.1: Inception crop (area 5-100%) and
    horizontal flip for training; resize (+ centre crop) for evaluation; inputs normalised with
    ``mean_std`` (default: to [-1, 1]).
    """

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
    ) -> None:
        super().__init__(name, num_classes, image_size, batch_size, num_workers)
        self.real_labels = real_labels
        self.root = Path(root)
        self.train_dir, self.val_dir = train_dir, val_dir
        self.crop_area = tuple(crop_area)
        mean, std = mean_std  # default [-1, 1], as the official checkpoints expect
        self.train_transform = transforms.Compose(
            [
                transforms.RandomResizedCrop(self.image_size, scale=tuple(crop_area)),
                transforms.RandomHorizontalFlip(),
                transforms.ToTensor(),
                transforms.Normalize(mean, std),
            ]
        )
        # Evaluation: resize the short side then centre-crop, or resize to the square directly.
        self.eval_transform = transforms.Compose(
            [
                transforms.Resize(self.image_size if center_crop else [self.image_size] * 2),
                transforms.CenterCrop(self.image_size),
                transforms.ToTensor(),
                transforms.Normalize(mean, std),
            ]
        )
        self._num_train: int | None = None

    def evaluation_sets(self) -> tuple[Dataset, Dataset]:
        self.setup("fit")
        pool = datasets.ImageFolder(self.root / self.train_dir, self.eval_transform)
        test = getattr(self.val_set, "base", self.val_set)  # few-shot uses the single labels
        return pool, test

    @property
    def num_train_samples(self) -> int:
        if self._num_train is None:
            self.setup("fit")
        return self._num_train

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        self.train_set = datasets.ImageFolder(self.root / self.train_dir, self.train_transform)
        self.val_set = datasets.ImageFolder(self.root / self.val_dir, self.eval_transform)
        if self.real_labels:
            self.val_set = WithReaLLabels(self.val_set, self.real_labels, self.num_classes)
        self._num_train = len(self.train_set)
        found = len(self.train_set.classes)
        if found != self.num_classes:
            raise ConfigError(
                "data.num_classes",
                self.num_classes,
                f"{self.root / self.train_dir} has {found} class folders; "
                f"set data.num_classes={found} or point data.root at the full dataset",
            )


class _CIFARFromDisk:
    """torchvision's CIFAR reader on its on-disk python format; never downloads.

    The archive's md5 check is replaced by a presence check, so re-packed copies (and the
    tests' small generated ones) load too.
    """

    def _check_integrity(self) -> bool:
        files = [*self.train_list, *self.test_list]
        return all((Path(self.root) / self.base_folder / name).is_file() for name, _ in files)

    def _load_meta(self) -> None:
        path = Path(self.root) / self.base_folder / self.meta["filename"]
        if not path.is_file():
            raise RuntimeError(f"{path} not found")
        with path.open("rb") as handle:
            self.classes = pickle.load(handle, encoding="latin1")[self.meta["key"]]
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

    def _read(self, train: bool, transform: transforms.Compose) -> Dataset:
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

    def evaluation_sets(self) -> tuple[Dataset, Dataset]:
        self.setup("fit")
        return self._read(True, self.eval_transform), self.val_set
