"""ImageNet validation images with their ReaL labels (Beyer et al. 2020; the paper's Table 2)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from torch.utils.data import Dataset
from torchvision import datasets

from vitrepro.config.errors import ConfigError


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
