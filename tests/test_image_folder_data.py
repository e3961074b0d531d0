"""The real-data path (class-per-folder JPEGs) on a small dataset the test writes itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from conftest import TINY_VIT
from vitrepro.data import ImageFolderDataModule


def write_jpeg_tree(root: Path, classes: int = 3, per_class: int = 4) -> None:
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in range(classes):
            folder = root / split / f"class_{c}"
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 255, size=(40, 48, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.jpg", quality=90)


def test_image_folder_module_applies_paper_preprocessing(tmp_path):
    write_jpeg_tree(tmp_path / "imagenet")
    dm = ImageFolderDataModule(
        name="imagenet",
        root=str(tmp_path / "imagenet"),
        num_classes=3,
        image_size=32,
        batch_size=4,
        num_workers=0,
    )
    assert dm.num_train_samples == 12
    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape == (4, 3, 32, 32) and images.min() >= -1 and images.max() <= 1
    assert set(labels.tolist()) <= {0, 1, 2}
    crop = dm.train_transform.transforms[0]
    assert crop.scale == (0.05, 1.0)  # Inception crop, area 5-100% (Appendix B.1)


def test_train_on_image_folders_end_to_end(train, tmp_path):
    data_root = tmp_path / "datasets"
    write_jpeg_tree(data_root / "imagenet")
    result = train(
        "data=imagenet",
        f"paths.data_root={data_root}",
        "data.num_classes=3",
        "data.image_size=32",
        "data.num_workers=0",
        "model.patch_size=8",
        *TINY_VIT,
        "recipe.global_batch_size=4",
        "recipe.steps=3",
        "recipe.schedule.warmup_steps=1",
        "logger=none",
        "trainer.enable_progress_bar=false",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = result.summary()
    assert summary["data"] == "imagenet" and summary["global_steps"] == 3


def test_wrong_class_count_is_a_clear_error(train, tmp_path):
    data_root = tmp_path / "datasets"
    write_jpeg_tree(data_root / "imagenet")
    result = train(
        "data=imagenet", f"paths.data_root={data_root}", "data.num_workers=0", "logger=none"
    )
    assert result.returncode == 2
    assert "data.num_classes=1000" in result.stderr and "has 3 class folders" in result.stderr
