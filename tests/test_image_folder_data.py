"""The real-data path (class-per-folder JPEGs) on a small dataset the test writes itself."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torchvision.transforms import v2

from cifar_files import write_fake_cifar
from conftest import TINY_VIT, few_steps
from helpers import write_jpeg_tree
from vitrepro.data import ImageFolderDataModule


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
    batch = next(iter(dm.train_dataloader()))
    assert batch[0].dtype == torch.uint8  # crops stay uint8 until the batch is on the device
    images, labels = dm.on_after_batch_transfer(batch, 0)
    assert images.shape == (4, 3, 32, 32) and images.dtype == torch.float32
    assert images.abs().max() <= 1 + 2**-23  # [-1, 1] within a float32 rounding
    assert dm.on_after_batch_transfer([images, labels], 0)[0] is images  # floats pass through
    assert set(labels.tolist()) <= {0, 1, 2}
    (crop,) = [t for t in dm.train_transform.transforms if isinstance(t, v2.RandomResizedCrop)]
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
        *few_steps(4, 3),
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
    assert result.run_dirs() == []  # stopped before compute, nothing left behind


def write_real_labels(root: Path) -> Path:
    """Rename the val images as ImageNet's and write a ReaL file for them (one image unrated)."""
    val_files = sorted((root / "val").rglob("*.jpg"))
    for number, path in enumerate(val_files, start=1):
        path.rename(path.with_name(f"ILSVRC2012_val_{number:08d}.JPEG"))
    real = [[int(i % 3)] if i % 4 else [] for i in range(len(val_files))]
    real[1] = [0, 2]  # several correct classes
    (root / "real.json").write_text(json.dumps(real))
    return root / "real.json"


def test_real_labels_follow_the_validation_file_numbers(tmp_path):
    write_jpeg_tree(tmp_path / "imagenet")
    real = write_real_labels(tmp_path / "imagenet")
    dm = ImageFolderDataModule(
        name="imagenet",
        root=str(tmp_path / "imagenet"),
        num_classes=3,
        image_size=32,
        batch_size=4,
        num_workers=0,
        real_labels=str(real),
    )
    dm.setup("fit")
    for index in range(len(dm.val_set)):
        _, _, multi_hot = dm.val_set[index]
        number = int(Path(dm.val_set.base.samples[index][0]).stem.split("_")[-1])
        expected = json.loads(real.read_text())[number - 1]
        assert sorted(torch.nonzero(multi_hot).flatten().tolist()) == sorted(expected)


def test_train_reports_real_accuracy(train, tmp_path):
    data_root = tmp_path / "datasets"
    write_jpeg_tree(data_root / "imagenet")
    real = write_real_labels(data_root / "imagenet")
    result = train(
        "data=imagenet",
        f"paths.data_root={data_root}",
        "data.num_classes=3",
        "data.image_size=32",
        "data.num_workers=0",
        f"data.real_labels={real}",
        "model.patch_size=8",
        *TINY_VIT,
        *few_steps(4, 3),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert 0.0 <= result.summary()["final"]["val/real_top1"] <= 1.0


def test_cifar_from_disk_fine_tunes_end_to_end(train, tmp_path):
    data_root = tmp_path / "datasets"
    write_fake_cifar(data_root / "cifar10")
    result = train(
        "data=cifar10",
        f"paths.data_root={data_root}",
        "data.image_size=32",
        "data.num_workers=0",
        "model.patch_size=8",
        *TINY_VIT,
        "recipe=finetune",
        *few_steps(8, 3),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = result.summary()
    assert summary["data"] == "cifar10" and summary["global_steps"] == 3


def test_missing_cifar_files_are_one_clear_line(train, tmp_path):
    (tmp_path / "datasets" / "cifar10").mkdir(parents=True)
    result = train("data=cifar10", f"paths.data_root={tmp_path / 'datasets'}", "logger=none")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: data.root=")
