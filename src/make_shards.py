"""Write a dataset as WebDataset shards: ``python src/make_shards.py SRC OUT``.

SRC is a class-per-folder image tree, a list file of ``<path> <class>`` lines, or
``synthetic`` (the embedded dataset: ``--synthetic-size N --split train|val``). Shards are
written in one seeded order with a manifest (OUT/dataset.json); rerunning completes a partial
output. See src/vitrepro/data/shards/write.py.
"""

import argparse
import sys
from pathlib import Path

from vitrepro.config.cli import OneLineErrors, positive_int
from vitrepro.data.shards.write import (
    image_folder_samples,
    list_file_samples,
    synthetic_samples,
    write_shards,
)


def main() -> int:
    parser = OneLineErrors(description=__doc__.splitlines()[0])
    parser.add_argument("src", help="image folder, list file, or 'synthetic'")
    parser.add_argument("out", help="output folder for shard-*.tar and dataset.json")
    parser.add_argument("--shard-size", type=positive_int, default=1000, help="samples per shard")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample order")
    parser.add_argument(
        "--max-side", type=positive_int, default=None, help="downscale larger images"
    )
    parser.add_argument("--synthetic-size", type=positive_int, default=10_000)
    parser.add_argument("--split", default="train", choices=["train", "val", "test"])
    parser.add_argument("--image-size", type=positive_int, default=32, help="synthetic image size")
    parser.add_argument("--num-classes", type=positive_int, default=10, help="synthetic classes")
    args = parser.parse_args()
    try:
        return write(args)
    except (OSError, ValueError) as error:  # an unwritable OUT, a malformed list file
        print(f"error: {error}", file=sys.stderr)
        return 2


def write(args: argparse.Namespace) -> int:

    src = Path(args.src)
    if args.src == "synthetic":
        samples, classes = synthetic_samples(
            args.synthetic_size, args.split, args.image_size, args.num_classes
        )
    elif src.is_dir():
        samples, classes = image_folder_samples(src)
    elif src.is_file():
        samples, classes = list_file_samples(src)
    else:
        print(f"error: SRC={src}: no such folder or list file", file=sys.stderr)
        return 2
    if not samples:
        print(f"error: SRC={src}: no images found", file=sys.stderr)
        return 2
    manifest = write_shards(
        samples, classes, args.out, args.shard_size, args.seed, args.max_side, progress=True
    )
    print(
        f"{manifest['num_samples']} samples, {manifest['num_classes']} classes in "
        f"{len(manifest['shards'])} shards at {args.out}; {len(manifest['skipped'])} skipped"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
