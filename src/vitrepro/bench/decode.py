"""Data-pipeline speed: ``python -m vitrepro.bench.decode`` (and the data section of the bench).

Writes ``--images`` JPEGs (500 x 375, ImageNet's typical size, by default) of the embedded
dataset upscaled, shards them, and measures, in this one process with the DataLoader's
``--workers``, images/s of Inception crop -> flip -> normalised 224-px tensor from (a) our
shards, (b) our image-folder datamodule, both decoding with ``data/preprocessing.py``, and
(c) the usual baseline: torchvision's ImageFolder with PIL decoding and the classic PIL
transforms, on the same JPEGs. Ours hand uint8 crops to the training process, whose datamodule
normalises each batch after the copy to the device; that normalisation is timed here too, on
the CPU, so both sides end with the same float batch. Repeats are interleaved and the median
is reported. Prints one JSON object; the ratios are the figures to quote (the machine's noise
cancels).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from vitrepro.data.datamodules import ImageFolderDataModule
from vitrepro.data.generators.motifs import MotifCompositions, MotifSpec
from vitrepro.data.shards.datamodule import ShardsDataModule
from vitrepro.data.shards.write import image_folder_samples, write_shards


def _write_jpegs(root: Path, count: int, size: tuple[int, int]) -> None:
    data = MotifCompositions(MotifSpec(num_classes=10, image_size=64), "train", count)
    images, labels = data.render(np.arange(count))
    pixels = ((images + 1) * 127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
    for i, (array, label) in enumerate(zip(pixels, labels.tolist(), strict=True)):
        folder = root / f"class_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).resize(size, Image.BICUBIC).save(folder / f"{i}.jpg", quality=90)


def _rate(
    loader: DataLoader, images: int, finish: Callable[[Any, int], Any] | None = None
) -> float:
    """Images/s of ``loader``; ``finish`` is a datamodule's ``on_after_batch_transfer``, timed
    too (here on the CPU, where a GPU run would do it on the device)."""
    start, seen = time.perf_counter(), 0
    for batch in loader:
        pixels = (finish(batch, 0) if finish else batch)[0]
        seen += len(pixels)
        if seen >= images:
            break
    return seen / (time.perf_counter() - start)


def measure_decode(
    images: int = 400,
    width: int = 500,
    height: int = 375,
    image_size: int = 224,
    workers: int = 0,
    repeats: int = 3,
) -> dict:
    """Median images/s of the three pipelines, interleaved over ``repeats``, and their ratios.

    Runs with one intra-op thread (one worker's view) and restores the thread count after.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rates = _measure(images, (width, height), image_size, workers, repeats)
    finally:
        torch.set_num_threads(threads)
    median = {name: statistics.median(values) for name, values in rates.items()}
    return {
        "images": images,
        "source_size": [width, height],
        "image_size": image_size,
        "workers": workers,
        "repeats": repeats,
        "shards_images_per_s": round(median["shards"], 1),
        "image_folder_images_per_s": round(median["image_folder"], 1),
        "baseline_pil_image_folder_images_per_s": round(median["baseline"], 1),
        "shards_vs_baseline": round(median["shards"] / median["baseline"], 3),
        "image_folder_vs_baseline": round(median["image_folder"] / median["baseline"], 3),
    }


def _measure(
    images: int, source_size: tuple[int, int], image_size: int, workers: int, repeats: int
) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _write_jpegs(root / "folder", images, source_size)
        samples, classes = image_folder_samples(root / "folder")
        write_shards(samples, classes, root / "shards" / "train", shard_size=100, progress=False)
        shards = ShardsDataModule(
            name="bench",
            root=str(root / "shards"),
            num_classes=len(classes),
            image_size=image_size,
            batch_size=32,
            num_workers=workers,
            shuffle_buffer=100,
        )
        folders = ImageFolderDataModule(
            name="bench",
            root=str(root),
            train_dir="folder",
            val_dir="folder",
            num_classes=len(classes),
            image_size=image_size,
            batch_size=32,
            num_workers=workers,
        )
        folders.setup()
        classic = transforms.Compose(
            [
                transforms.RandomResizedCrop(image_size, scale=(0.05, 1.0)),
                transforms.RandomHorizontalFlip(),
                transforms.ToTensor(),
                transforms.Normalize([0.5] * 3, [0.5] * 3),
            ]
        )
        folder = datasets.ImageFolder(root / "folder", classic)
        baseline = DataLoader(folder, batch_size=32, shuffle=True, num_workers=workers)
        rates: dict[str, list[float]] = {"shards": [], "image_folder": [], "baseline": []}
        for _ in range(repeats):  # interleaved, so drifts hit all alike
            rates["shards"].append(
                _rate(shards.train_dataloader(), images, shards.on_after_batch_transfer)
            )
            rates["image_folder"].append(
                _rate(folders.train_dataloader(), images, folders.on_after_batch_transfer)
            )
            rates["baseline"].append(_rate(baseline, images))
    return rates


# DataLoader switches (``data.num_workers``, ``performance.*``): the setting without and with.
LOADER_SWITCHES: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "workers": ("data.num_workers=0 -> 2", {"num_workers": 0}, {"num_workers": 2}),
    "persistent_workers": (
        "performance.persistent_workers=false -> true (2 workers)",
        {"num_workers": 2, "persistent_workers": False},
        {"num_workers": 2, "persistent_workers": True},
    ),
    "prefetch_factor": (
        "performance.prefetch_factor=2 -> 4 (2 workers)",
        {"num_workers": 2, "prefetch_factor": 2},
        {"num_workers": 2, "prefetch_factor": 4},
    ),
    "pin_memory": (
        "performance.pin_memory=false -> true (2 workers, then copied to the GPU)",
        {"num_workers": 2, "pin_memory": False},
        {"num_workers": 2, "pin_memory": True},
    ),
}


def _epochs_rate(datamodule: ImageFolderDataModule, epochs: int, device: torch.device) -> float:
    """Images/s over ``epochs`` passes of one DataLoader (worker start-up included, as a run
    sees it), each batch copied to ``device``."""
    start, seen = time.perf_counter(), 0
    loader = datamodule.train_dataloader()
    for _ in range(epochs):
        for batch, _ in loader:
            batch.to(device, non_blocking=True)
            seen += len(batch)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return seen / (time.perf_counter() - start)


def measure_loader(
    images: int = 400,
    width: int = 500,
    height: int = 375,
    image_size: int = 224,
    repeats: int = 3,
    epochs: int = 2,
) -> list[dict[str, Any]]:
    """Per DataLoader switch: images/s of our image-folder reader over ``epochs`` epochs without
    and with it (medians of interleaved repeats) and the speed-up. ``pin_memory`` only
    matters for copies to a GPU, so it is measured only where there is one."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _write_jpegs(root / "folder", images, (width, height))
        classes = len(list((root / "folder").iterdir()))

        def reader(settings: dict[str, Any]) -> ImageFolderDataModule:
            settings = dict(settings)
            datamodule = ImageFolderDataModule(
                name="bench", root=str(root), train_dir="folder", val_dir="folder",
                num_classes=classes, image_size=image_size, batch_size=32,
                num_workers=settings.pop("num_workers"),
            )  # fmt: skip
            datamodule.performance = settings
            datamodule.setup()
            return datamodule

        for name, (setting, off, on) in LOADER_SWITCHES.items():
            if name == "pin_memory" and device.type != "cuda":
                results.append({"switch": name, "setting": setting, "skipped": "no CUDA device"})
                continue
            rates: dict[str, list[float]] = {"off": [], "on": []}
            for repeat in range(repeats):
                for side in ("off", "on") if repeat % 2 == 0 else ("on", "off"):
                    settings = off if side == "off" else on
                    rates[side].append(_epochs_rate(reader(settings), epochs, device))
            ratios = [on / off for off, on in zip(rates["off"], rates["on"], strict=True)]
            results.append(
                {
                    "switch": name,
                    "setting": setting,
                    "epochs": epochs,
                    "images": images,
                    "off_images_per_s": round(statistics.median(rates["off"]), 1),
                    "on_images_per_s": round(statistics.median(rates["on"]), 1),
                    "speedup": round(statistics.median(ratios), 3),
                }
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--width", type=int, default=500)
    parser.add_argument("--height", type=int, default=375)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    result = measure_decode(
        args.images, args.width, args.height, args.image_size, args.workers, args.repeats
    )
    print(json.dumps(result, indent=2))


def measure_data(
    images: int = 600,
    width: int = 500,
    height: int = 375,
    image_size: int = 224,
    repeats: int = 3,
    training_images_per_s: float | None = None,
    training_case: str | None = None,
) -> dict[str, Any]:
    """One worker's images/s for our shards and image-folder readers and the PIL baseline
    (median of interleaved repeats), and how many such workers the training rate needs."""
    result = measure_decode(images, width, height, image_size, workers=0, repeats=repeats)
    if training_images_per_s:
        per_worker = result["shards_images_per_s"]
        result |= {
            "training_case": training_case,
            "training_images_per_s": round(training_images_per_s, 2),
            "shards_per_worker_vs_training": round(per_worker / training_images_per_s, 3),
            "workers_to_feed_training": math.ceil(training_images_per_s / per_worker),
        }
    return result


if __name__ == "__main__":
    main()
