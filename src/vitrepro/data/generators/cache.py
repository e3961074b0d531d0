"""An embedded dataset rendered once per run, not every epoch (``performance.render_once``).

Rendering costs some 70-90 us an image on one CPU thread; a tiny study revisits its set 26 to 244
times, so most of that work repeats. Every image is a function of its index alone (its random
draws are hashed from the index), so the images rendered here in chunks are bitwise the ones a
batch would render, in any order and batch size (tested): a speed switch, never a result.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from vitrepro.data.generators.motifs import RenderedImages

# Chunk size of the one-off rendering: very large batches render slower per image.
CHUNK = 256
# Larger sets are rendered per batch as before (float32 images: 3 x 32 x 32 x 4 B = 12 KiB each).
MAX_BYTES = 1 << 30


class RenderedOnce(Dataset):
    """``dataset``'s images and labels, rendered at construction and served by index."""

    def __init__(self, dataset: RenderedImages) -> None:
        parts = [dataset.render(np.arange(i, min(i + CHUNK, len(dataset)))) for i in
                 range(0, len(dataset), CHUNK)]  # fmt: skip
        self.images = torch.cat([images for images, _ in parts])
        self.labels = torch.cat([torch.as_tensor(labels) for _, labels in parts])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, int]]:
        return list(zip(self.images[indices], self.labels[indices].tolist(), strict=True))


def rendered_once(dataset: RenderedImages, enabled: bool) -> Dataset:
    """The dataset rendered once when ``enabled`` and it fits in ``MAX_BYTES``, else as it is."""
    image_bytes = 4 * 3 * dataset.spec.image_size**2
    return RenderedOnce(dataset) if enabled and len(dataset) * image_bytes <= MAX_BYTES else dataset
