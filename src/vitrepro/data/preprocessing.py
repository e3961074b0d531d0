"""The paper's pre-processing (Section 4.1, Appendix B.1) on uint8 tensors, and fast decoding.

Training: Inception crop (random area ``crop_area`` of the image, aspect 3/4-4/3) resized to the
model's resolution, then a horizontal flip. Evaluation: resize the short side and centre-crop
(or resize straight to the square). Both end with normalisation (default [-1, 1], as the
official checkpoints expect).

Speed: images are decoded by libjpeg-turbo through ``torchvision.io`` straight into uint8
tensors and cropped and resized as uint8 (torchvision's vectorised kernels). Training crops stay
uint8 through the DataLoader: the datamodule normalises each whole batch after it reaches the
device (``normalise_batch``), as timm's prefetching loader does, so a worker neither converts
to float nor sends four times the bytes to the training process (``python -m
vitrepro.bench.decode`` measures it against the usual PIL decode + PIL crop + ``ToTensor``).
A JPEG at least twice as large as needed is decoded by PIL in draft mode instead, which lets
the decoder downscale by 1/2, 1/4 or 1/8 in the DCT domain.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image
from torchvision.io import ImageReadMode, decode_image
from torchvision.transforms import v2

# The official ViT checkpoints expect inputs in [-1, 1] (mean 0.5, std 0.5 per channel).
UNIT_RANGE_MEAN_STD = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


def _normalise(mean_std: Sequence[Sequence[float]]) -> list[v2.Transform]:
    mean, std = mean_std
    return [
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(list(mean), list(std)),
        v2.ToPureTensor(),
    ]


def train_transform(image_size: int, crop_area: Sequence[float] = (0.05, 1.0)) -> v2.Compose:
    """Inception crop + flip (Appendix B.1) on a PIL image or a uint8 CHW tensor, to a uint8
    CHW tensor: ``normalise_batch`` finishes the batch on the device."""
    return v2.Compose(
        [
            v2.ToImage(),
            v2.RandomResizedCrop(image_size, scale=tuple(crop_area), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.ToPureTensor(),
        ]
    )


def normalise_batch(
    images: torch.Tensor, mean_std: Sequence[Sequence[float]] = UNIT_RANGE_MEAN_STD
) -> torch.Tensor:
    """A uint8 NCHW batch -> float32 ``(x / 255 - mean) / std``, as ``eval_transform`` gives
    one image (within a float32 rounding: 255 maps to 1 + 2^-23 with the default mean and std):
    one pass per channel that reads uint8 and writes float (0.1 ms an image on one core at
    224 px, half of a conversion followed by a broadcast affine or a division)."""
    out = torch.empty(images.shape, dtype=torch.float32, device=images.device)
    for channel, (mean, std) in enumerate(zip(*mean_std, strict=True)):
        shift = torch.tensor(-mean / std, dtype=torch.float32, device=images.device)
        torch.add(shift, images[:, channel], alpha=1.0 / (255.0 * std), out=out[:, channel])
    return out


def eval_transform(
    image_size: int,
    center_crop: bool = True,
    mean_std: Sequence[Sequence[float]] = UNIT_RANGE_MEAN_STD,
) -> v2.Compose:
    """Resize the short side and centre-crop, or (``center_crop=False``) resize to the square."""
    return v2.Compose(
        [
            v2.ToImage(),
            v2.Resize(image_size if center_crop else [image_size] * 2, antialias=True),
            v2.CenterCrop(image_size),
            *_normalise(mean_std),
        ]
    )


JPEG_MAGIC, PNG_MAGIC = b"\xff\xd8", b"\x89PNG\r\n\x1a\n"
# Start-of-frame markers, which carry the image size (0xC4, 0xC8, 0xCC are not frames).
_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header, walking the segments before it; None where
    it is not found. A tenth of the time of PIL's header parse, which reads every table."""
    at = 2
    while at + 9 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        if marker == 0xFF:  # a fill byte before the marker
            at += 1
            continue
        if marker in _FRAME_MARKERS:
            width, height = data[at + 7 : at + 9], data[at + 5 : at + 7]
            return int.from_bytes(width, "big"), int.from_bytes(height, "big")
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
    return None


def decode(data: bytes, min_side: int | None = None) -> torch.Tensor:
    """Encoded image bytes -> RGB uint8 CHW tensor. With ``min_side``, a JPEG twice that size or
    more on its short side is decoded downscaled, keeping it at least ``min_side``."""
    jpeg = data.startswith(JPEG_MAGIC)
    size = jpeg_size(data) if jpeg and min_side else None
    if size is not None and min(size) >= 2 * min_side:
        header = Image.open(io.BytesIO(data))
        header.draft("RGB", (min_side, min_side))
        return v2.functional.pil_to_tensor(header.convert("RGB"))
    if jpeg or data.startswith(PNG_MAGIC):
        buffer = torch.frombuffer(bytearray(data), dtype=torch.uint8)
        return decode_image(buffer, mode=ImageReadMode.RGB)
    return v2.functional.pil_to_tensor(Image.open(io.BytesIO(data)).convert("RGB"))


def read_image_file(path: str | Path, min_side: int | None = None) -> torch.Tensor:
    """``torchvision.datasets.ImageFolder`` loader using the same decoder as the shards."""
    return decode(Path(path).read_bytes(), min_side)


def min_decode_side(image_size: int, crop_area: Sequence[float]) -> int:
    """The smallest short side an image may be decoded at without upsampling the smallest
    Inception crop (``crop_area[0]`` of the image) to ``image_size``."""
    return math.ceil(image_size / math.sqrt(crop_area[0]))
