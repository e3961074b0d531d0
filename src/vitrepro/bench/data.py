"""Data-pipeline speed: shards -> decode -> Inception crop -> flip -> tensor, images/s
per worker against torchvision ImageFolder + PIL on the same JPEGs, and against the model's
consumption rate. The measurement is ``vitrepro.data.bench_decode``'s; this adds the
comparison with training images/s measured in the same run."""

from __future__ import annotations

import math
from typing import Any

from vitrepro.data.bench_decode import measure_decode


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
