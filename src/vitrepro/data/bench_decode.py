"""Data-pipeline speed: ``python -m vitrepro.data.bench_decode``.

Writes ``--images`` JPEGs (500 x 375, ImageNet's typical size, by default) of the embedded
dataset upscaled, shards them, and measures, in this one process with the DataLoader's
``--workers``, images/s of (a) our shards -> draft decode -> Inception crop -> flip -> tensor at
224 px and (b) torchvision's ImageFolder + PIL with the same transforms on the same JPEGs.
Prints one JSON object; the ratio is the figure to quote (the machine's noise cancels).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import datasets

from vitrepro.data.shards import image_folder_samples, write_shards
from vitrepro.data.streaming import ShardsDataModule
from vitrepro.data.synthetic import MotifCompositions, MotifSpec


def _write_jpegs(root: Path, count: int, size: tuple[int, int]) -> None:
    data = MotifCompositions(MotifSpec(num_classes=10, image_size=64), "train", count)
    images, labels = data.render(np.arange(count))
    pixels = ((images + 1) * 127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
    for i, (array, label) in enumerate(zip(pixels, labels.tolist(), strict=True)):
        folder = root / f"class_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).resize(size, Image.BICUBIC).save(folder / f"{i}.jpg", quality=90)


def _rate(loader: DataLoader, images: int) -> float:
    start, seen = time.perf_counter(), 0
    for batch, _ in loader:
        seen += len(batch)
        if seen >= images:
            break
    return seen / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--width", type=int, default=500)
    parser.add_argument("--height", type=int, default=375)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _write_jpegs(root / "folder", args.images, (args.width, args.height))
        samples, classes = image_folder_samples(root / "folder")
        write_shards(samples, classes, root / "shards" / "train", shard_size=100, progress=False)
        shards = ShardsDataModule(
            name="bench",
            root=str(root / "shards"),
            num_classes=len(classes),
            image_size=args.image_size,
            batch_size=32,
            num_workers=args.workers,
            shuffle_buffer=100,
        )
        folder = datasets.ImageFolder(root / "folder", shards.train_transform)
        baseline = DataLoader(folder, batch_size=32, shuffle=True, num_workers=args.workers)
        ours, theirs = [], []
        for _ in range(args.repeats):  # interleaved, so drifts hit both alike
            ours.append(_rate(shards.train_dataloader(), args.images))
            theirs.append(_rate(baseline, args.images))
    result = {
        "images": args.images,
        "source_size": [args.width, args.height],
        "image_size": args.image_size,
        "workers": args.workers,
        "shards_images_per_s": round(statistics.median(ours), 1),
        "imagefolder_images_per_s": round(statistics.median(theirs), 1),
        "ratio": round(statistics.median(ours) / statistics.median(theirs), 3),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
