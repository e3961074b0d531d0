"""Samples of one local WebDataset shard, read from its 512-byte tar headers directly.

The training stream's reader. WebDataset reads a shard through Python's ``tarfile`` in
streaming mode, about 0.13 ms a sample of two members on 2 cores (``python -m
vitrepro.bench.decode`` bench: some 6% of a worker's time on an ImageNet-sized JPEG); reading
the headers here takes about a tenth of that. A sample is what WebDataset's ``group_by_keys``
makes of consecutive members: ``{"__key__": name before the first dot, ext: bytes, ...}``.
The ustar headers that ``make_shards.py`` writes are read as they are, PAX extended headers
(the default of Python's writer) for their ``path`` and ``size``; any other member type, a bad
header checksum or a truncated file raises ``TarFormatError`` naming the shard.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

BLOCK = 512
REGULAR = (b"0", b"\0")  # regular file type flags (old tars write NUL)
PAX_LOCAL, PAX_GLOBAL = b"x", b"g"


class TarFormatError(ValueError):
    """A shard that is not a plain tar of regular files."""


def _number(field: bytes) -> int:
    digits = field.rstrip(b"\0 ").lstrip(b" ")
    return int(digits, 8) if digits else 0


def _pax_records(data: bytes) -> dict[str, str]:
    """``"<length> <key>=<value>\\n"`` records of a PAX extended header."""
    records, at = {}, 0
    while at < len(data):
        space = data.index(b" ", at)
        length = int(data[at:space])
        key, _, value = data[space + 1 : at + length - 1].partition(b"=")
        records[key.decode()] = value.decode("utf-8", "surrogateescape")
        at += length
    return records


def _members(stream: BinaryIO, where: str) -> Iterator[tuple[str, bytes]]:
    """(name, data) of each regular file in the tar ``stream``."""
    pending: dict[str, str] = {}
    while True:
        header = stream.read(BLOCK)
        if not header or header.count(0) == BLOCK:
            return  # end of archive (zero blocks), or a file that ends at a member boundary
        if len(header) < BLOCK:
            raise TarFormatError(f"{where}: truncated header")
        stored = _number(header[148:156])
        if stored != sum(header) - sum(header[148:156]) + 8 * ord(" "):
            raise TarFormatError(f"{where}: bad tar header checksum")
        size = _number(header[124:136])
        data = stream.read(size)
        if len(data) < size:
            raise TarFormatError(f"{where}: truncated member")
        stream.read(-size % BLOCK)
        kind = header[156:157]
        if kind == PAX_LOCAL:
            pending = _pax_records(data)
            continue
        if kind == PAX_GLOBAL:
            continue
        if kind not in REGULAR:
            raise TarFormatError(f"{where}: tar member of type {kind!r} is not supported")
        name = header[:100].rstrip(b"\0").decode("utf-8", "surrogateescape")
        prefix = header[345:500].rstrip(b"\0").decode("utf-8", "surrogateescape")
        name = pending.get("path", f"{prefix}/{name}" if prefix else name)
        if "size" in pending and int(pending["size"]) != size:
            raise TarFormatError(f"{where}: PAX sizes are not supported")
        pending = {}
        yield name, data


def _key_and_extension(name: str) -> tuple[str, str]:
    """WebDataset's split: the key is the path up to the first dot of the file name."""
    dot = name.find(".", name.rfind("/") + 1)
    return (name, "") if dot < 0 else (name[:dot], name[dot + 1 :].lower())


def shard_samples(path: str | Path) -> Iterator[dict]:
    """The samples of the shard at ``path``, in file order."""
    sample: dict = {}
    with open(path, "rb", buffering=1 << 20) as stream:
        members = _members(stream, str(path))
        while True:
            try:
                name, data = next(members)
            except StopIteration:
                break
            except TarFormatError:
                raise
            except ValueError as error:  # a number or a PAX record that does not parse
                raise TarFormatError(f"{path}: unreadable tar header ({error})") from error
            key, extension = _key_and_extension(name)
            if sample and sample["__key__"] != key:
                yield sample
                sample = {}
            sample.setdefault("__key__", key)
            sample["__url__"] = str(path)
            sample[extension] = data
    if sample:
        yield sample
