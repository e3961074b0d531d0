"""Test helper: CIFAR-10 / CIFAR-100 in torchvision's on-disk python layout, a few random
images per batch file, pickled at a chosen protocol (the official files are protocol 2)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

LAYOUTS = {  # folder, batch files, meta file, label key, class-name key, classes
    "cifar10": (
        "cifar-10-batches-py",
        [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"],
        "batches.meta",
        "labels",
        "label_names",
        10,
    ),
    "cifar100": (
        "cifar-100-python",
        ["train", "test"],
        "meta",
        "fine_labels",
        "fine_label_names",
        100,
    ),
}


def write_fake_cifar(
    root: Path, variant: str = "cifar10", per_file: int = 8, protocol: int | None = None
) -> Path:
    """The batch files under ``root``; returns the folder that holds them."""
    folder_name, batches, meta, label_key, names_key, classes = LAYOUTS[variant]
    folder = root / folder_name
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in batches:
        batch = {
            "batch_label": name,
            "data": rng.integers(0, 255, size=(per_file, 3072), dtype=np.uint8),
            label_key: rng.integers(0, classes, size=per_file).tolist(),
            "filenames": [f"{name}_{i}.png" for i in range(per_file)],
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=protocol))
    names = {names_key: [f"class_{i}" for i in range(classes)]}
    (folder / meta).write_bytes(pickle.dumps(names, protocol=protocol))
    return folder
