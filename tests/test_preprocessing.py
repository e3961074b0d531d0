"""Decoding and the paper's pre-processing (Section 4.1, Appendix B.1); the data.format switch;
the few-shot support pool of map-style datasets."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import TensorDataset
from torchvision.transforms import v2

from vitrepro.config.errors import ConfigError
from vitrepro.data import FORMATS, build_datamodule
from vitrepro.data.datamodules import ImageFolderDataModule
from vitrepro.data.preprocessing import (
    UNIT_RANGE_MEAN_STD,
    decode,
    eval_transform,
    jpeg_size,
    min_decode_side,
    normalise_batch,
    train_transform,
)
from vitrepro.data.shards.datamodule import ShardsDataModule
from vitrepro.data.subsets import per_class_subset

IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def encoded(width: int, height: int, fmt: str = "JPEG") -> tuple[bytes, np.ndarray]:
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // width, y * 255 // height, (x + y) % 256], -1).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buffer.getvalue(), pixels


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_decode_matches_pil_at_full_size(fmt):
    data, pixels = encoded(60, 40, fmt)
    tensor = decode(data)
    assert tensor.dtype == torch.uint8 and tensor.shape == (3, 40, 60)
    reference = torch.from_numpy(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
    difference = (tensor.permute(1, 2, 0).int() - reference.int()).abs().float().mean()
    assert difference < 2.0  # libjpeg-turbo vs PIL's libjpeg: rounding only; PNG exact
    if fmt == "PNG":
        assert torch.equal(tensor.permute(1, 2, 0), torch.from_numpy(pixels))


def test_draft_decoding_downscales_big_jpegs_but_never_below_the_needed_side():
    data, _ = encoded(800, 600)
    assert decode(data, min_side=100).shape[1:] == (150, 200)  # 1/4: 150 >= 100 > 75
    assert decode(data, min_side=400).shape[1:] == (600, 800)  # 1/2 would go below 400
    assert decode(data).shape[1:] == (600, 800)
    assert min_decode_side(224, (0.05, 1.0)) == 1002  # smallest crop keeps 5% of the area


@pytest.mark.parametrize("progressive", [False, True])
def test_jpeg_size_is_read_from_the_frame_header_as_pil_reads_it(progressive):
    for width, height in [(500, 375), (123, 2049)]:
        buffer = io.BytesIO()
        pixels = np.zeros((height, width, 3), np.uint8)
        exif = b"Exif\0\0" + b"x" * 300  # a segment before the frame header
        Image.fromarray(pixels).save(buffer, "JPEG", progressive=progressive, exif=exif)
        data = buffer.getvalue()
        assert jpeg_size(data) == Image.open(buffer).size == (width, height)
    assert jpeg_size(data[:20]) is None and jpeg_size(b"\xff\xd8 not a jpeg") is None


def test_transforms_give_tensors_of_the_model_size():
    image = decode(encoded(90, 70)[0])
    out = eval_transform(32)(image)
    assert type(out) is torch.Tensor and out.shape == (3, 32, 32) and out.dtype == torch.float32
    assert out.min() >= -1.0 and out.max() <= 1.0
    crop = train_transform(32, (0.05, 1.0))(image)  # uint8 until the batch is on the device
    assert type(crop) is torch.Tensor and crop.shape == (3, 32, 32) and crop.dtype == torch.uint8
    pil = Image.open(io.BytesIO(encoded(90, 70)[0]))
    assert train_transform(32)(pil).shape == (3, 32, 32)  # PIL inputs too (CIFAR)


@pytest.mark.parametrize("mean_std", [UNIT_RANGE_MEAN_STD, IMAGENET_MEAN_STD])
def test_batch_normalisation_is_the_per_image_one(mean_std):
    crops = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    per_image = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(*mean_std)])
    expected = torch.stack([per_image(crop) for crop in crops])
    batch = normalise_batch(crops, mean_std)
    assert batch.dtype == torch.float32 and batch.is_contiguous()
    torch.testing.assert_close(batch, expected, rtol=0, atol=1e-6)


def test_per_class_pool_keeps_at_most_n_random_examples_of_each_class():
    labels = torch.tensor([0] * 10 + [1] * 3 + [2] * 7)
    dataset = TensorDataset(torch.arange(20))
    dataset.targets = labels.tolist()
    pool = per_class_subset(dataset, 4)
    kept = torch.tensor(pool.indices)
    assert torch.bincount(labels[kept]).tolist() == [4, 3, 4]
    assert per_class_subset(dataset, 4).indices == pool.indices  # seeded
    assert per_class_subset(dataset, None) is dataset


def test_format_picks_the_reader_for_any_dataset(tmp_path):
    base = {"name": "pets", "root": str(tmp_path), "num_classes": 3, "image_size": 16}
    assert type(build_datamodule({**base, "format": "image_folder"}, 4)) is ImageFolderDataModule
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "dataset.json").write_text('{"num_classes": 3, "num_samples": 5}')
    shards = build_datamodule({**base, "format": "shards", "fewshot_datasets": {}}, 4)
    assert type(shards) is ShardsDataModule and shards.num_train_samples == 5
    with pytest.raises(ConfigError, match=r"data\.format"):
        build_datamodule({**base, "format": "lmdb"}, 4)
    assert set(FORMATS) == {"synthetic", "image_folder", "cifar", "shards"}


def test_a_partial_copy_warns_against_the_declared_size(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "dataset.json").write_text('{"num_classes": 3, "num_samples": 5}')
    dm = ShardsDataModule(name="x", root=str(tmp_path), num_classes=3, num_train=1000, batch_size=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert dm.num_train_samples == 5
    assert any("declares 1000" in str(w.message) for w in caught)
