"""``python -m vitrepro.data``: how fast the embedded dataset renders, and what it looks like."""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torchvision.utils import save_image

from vitrepro.data.generators.motifs import MotifCompositions, MotifSpec


def main() -> None:
    """``python -m vitrepro.data``: render speed on one core, and a preview grid."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--preview", help="write a PNG grid of the first 40 training images")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = MotifCompositions(MotifSpec(image_size=args.image_size), "train", 10**9)
    data.render(np.arange(args.batch))  # warm-up
    start = time.perf_counter()
    for b in range(args.batches):
        data.render(np.arange(b * args.batch, (b + 1) * args.batch))
    rate = args.batch * args.batches / (time.perf_counter() - start)
    print(f"{rate:.0f} images/s at {args.image_size} px on one core (batch {args.batch})")
    if args.preview:
        images, _ = data.render(np.arange(40))
        save_image((images + 1) / 2, args.preview, nrow=10, padding=1)
        print(f"preview written to {args.preview}")


if __name__ == "__main__":
    main()
