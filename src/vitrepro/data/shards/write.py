"""Write image datasets as WebDataset tar shards in one seeded order, with a manifest.

Samples are written in a single seeded random order and cut into consecutive shards, so the
first n samples of that order form a uniformly random subset and every smaller subset is
contained in every larger one: the nested JFT subsets of Figure 4 (9M in 30M in 90M in 300M)
are prefixes. Each sample's key is its position in the order.

A shard is written to a temporary file and renamed when complete, so a killed writer leaves
only whole shards; running the writer again skips them and writes the rest. Unreadable images
are skipped and listed in the manifest (``dataset.json``).
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import webdataset as wds
from PIL import Image
from tqdm import tqdm

from vitrepro.files import write_json_atomic

MANIFEST = "dataset.json"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".JPEG"}


@dataclass(frozen=True)
class Sample:
    """One source image: a file to read, or a callable producing encoded bytes (synthetic)."""

    source: str | Callable[[], bytes]
    label: int


def image_folder_samples(root: str | Path) -> tuple[list[Sample], list[str]]:
    """A class-per-folder tree: classes sorted by name, as torchvision's ImageFolder."""
    root = Path(root)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    samples = [
        Sample(str(path), label)
        for label, name in enumerate(classes)
        for path in sorted((root / name).rglob("*"))
        if path.suffix in IMAGE_SUFFIXES or path.suffix.lower() in IMAGE_SUFFIXES
    ]
    return samples, classes


def list_file_samples(list_file: str | Path) -> tuple[list[Sample], list[str]]:
    """Lines ``<image path> <class name>``; relative paths are relative to the list file."""
    list_file = Path(list_file)
    entries = []
    for line in list_file.read_text().splitlines():
        if line.strip():
            path, name = line.rsplit(maxsplit=1)
            entries.append((str((list_file.parent / path).resolve()), name))
    classes = sorted({name for _, name in entries})
    index = {name: i for i, name in enumerate(classes)}
    return [Sample(path, index[name]) for path, name in entries], classes


def _encoded_image(sample: Sample, max_side: int | None) -> tuple[bytes, str]:
    """The image's bytes (re-encoded when downscaled) and their extension; raises if unreadable."""
    data = sample.source() if callable(sample.source) else Path(sample.source).read_bytes()
    with Image.open(io.BytesIO(data)) as image:
        image.load()  # decode fully: truncated or corrupt files fail here, not in training
        extension = "png" if image.format == "PNG" else "jpg"
        if max_side and max(image.size) > max_side:
            scale = max_side / max(image.size)
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            buffer = io.BytesIO()
            image.convert("RGB").resize(size, Image.BICUBIC).save(buffer, "JPEG", quality=95)
            return buffer.getvalue(), "jpg"
    return data, extension


def write_shards(
    samples: list[Sample],
    classes: list[str],
    out_dir: str | Path,
    shard_size: int = 1000,
    seed: int = 0,
    max_side: int | None = None,
    progress: bool = True,
) -> dict:
    """Write ``samples`` as shards of ``shard_size`` in a seeded order; returns the manifest."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    order = np.random.default_rng(seed).permutation(len(samples))
    num_shards = max(1, -(-len(samples) // shard_size))
    shards, skipped = [], []
    bar = tqdm(total=len(samples), disable=not progress, unit="img", desc="shards")
    for s in range(num_shards):
        positions = order[s * shard_size : (s + 1) * shard_size]
        name = f"shard-{s:06d}.tar"
        path, record = out_dir / name, out_dir / f"{name}.json"
        if path.exists():  # written completely by an earlier run (shards are renamed when done)
            done = json.loads(record.read_text())
            shards.append({"name": name, "count": done["count"], "first": s * shard_size})
            skipped.extend(done["skipped"])
            bar.update(len(positions))
            continue
        count, shard_skipped = 0, []
        tmp = out_dir / f".{name}.tmp"
        # Plain ustar headers: the default PAX format adds an extended header to every member
        # (for its fractional mtime), which doubles the reader's header parsing per sample.
        # TarWriter accepts a format but does not hand it to tarfile, so it is set here.
        with wds.TarWriter(str(tmp)) as sink:
            sink.tarstream.format = tarfile.USTAR_FORMAT
            for position, index in zip(range(s * shard_size, len(order)), positions, strict=False):
                sample = samples[index]
                try:
                    data, extension = _encoded_image(sample, max_side)
                except Exception as error:
                    where = sample.source if isinstance(sample.source, str) else str(index)
                    shard_skipped.append({"source": where, "reason": type(error).__name__})
                    bar.update(1)
                    continue
                sink.write({"__key__": f"{position:010d}", extension: data, "cls": sample.label})
                count += 1
                bar.update(1)
        # The record first, then the shard: an existing shard always has its record.
        write_json_atomic(record, {"count": count, "skipped": shard_skipped})
        os.replace(tmp, path)
        shards.append({"name": name, "count": count, "first": s * shard_size})
        skipped.extend(shard_skipped)
    bar.close()
    manifest = {
        "num_samples": sum(shard["count"] for shard in shards),
        "num_classes": len(classes),
        "classes": classes,
        "seed": seed,
        "shard_size": shard_size,
        "shards": shards,
        "skipped": skipped,
    }
    write_json_atomic(out_dir / MANIFEST, manifest)
    return manifest


def read_manifest(root: str | Path) -> dict:
    return json.loads((Path(root) / MANIFEST).read_text())


def synthetic_samples(
    size: int, split: str, image_size: int = 32, num_classes: int = 10
) -> tuple[list[Sample], list[str]]:
    """The embedded dataset as lossless PNG samples, so the shard pipeline runs on it too."""
    from vitrepro.data.generators.motifs import MotifCompositions, MotifSpec

    dataset = MotifCompositions(
        MotifSpec(num_classes=num_classes, image_size=image_size), split, size
    )

    def encode(index: int) -> bytes:
        image, _ = dataset[index]
        pixels = ((image + 1) * 127.5).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "PNG")
        return buffer.getvalue()

    labels = dataset.labels(np.arange(size))
    samples = [Sample(partial(encode, i), int(labels[i])) for i in range(size)]
    return samples, [f"glyph_set_{c}" for c in range(num_classes)]
