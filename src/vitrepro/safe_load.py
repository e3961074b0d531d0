"""Reading weight files without running code they carry.

Torch files are read by torch's weights-only unpickler (tensors, numbers, strings, lists,
tuples, dicts); ``.npz`` arrays are checked from their headers to hold no Python objects, so
NumPy never unpickles; ``.safetensors`` files are a JSON header and raw bytes. A file that
would need more is a ``ConfigError`` naming the key, the file and what it holds, with the way
to convert a trusted file (``vitrepro.export``).
"""

from __future__ import annotations

import contextlib
import pickle
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vitrepro.config.errors import ConfigError, RefusedFileError

HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


def convert_hint(path: str | Path) -> str:
    """What to do with a refused torch file the user trusts."""
    return (
        f"if you trust the file, convert it with `python -m vitrepro.export {path} "
        "--trust-pickle` and give the folder it writes"
    )


def refusal(error: Exception) -> str:
    """What torch's weights-only unpickler refused, in a few words."""
    found = re.search(r"GLOBAL ([\w.]+)", str(error))
    if found:
        return f"holds a Python object of type {found.group(1)}"
    return "holds pickle data that is not tensors, numbers, strings, lists or dicts"


def load_torch(path: str | Path, key: str, mmap: bool = False) -> Any:
    """``torch.load`` with only the weights-only unpickler, on the CPU. ``mmap``: tensors
    stay on disk until used (a check or a probe reads no weights); legacy (non-zip) files
    cannot be mapped and are read whole."""
    mmap = mmap and zipfile.is_zipfile(path)
    try:
        # weights_only passed explicitly: TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD cannot override it
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as error:
        message = f"{refusal(error)}: not loaded; {convert_hint(path)}"
        raise RefusedFileError(key, path, message) from None
    except (RuntimeError, EOFError, OSError) as error:  # truncated or not a torch file at all
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ConfigError(key, path, f"not a readable torch file ({reason})") from None


def check_npz(path: str | Path, key: str) -> None:
    """Every array of an ``.npz`` is numeric: its header read, no data, nothing unpickled."""
    try:
        with zipfile.ZipFile(path) as archive:
            objects = [name for name in archive.namelist() if _holds_objects(archive, name)]
    except (zipfile.BadZipFile, ValueError, OSError) as error:
        raise ConfigError(key, path, f"not a readable .npz file ({error})") from None
    if objects:
        raise ConfigError(
            key,
            path,
            f"array {objects[0].removesuffix('.npy')!r} holds Python objects: not loaded "
            "(.npz weights are read without pickle; save them as numeric arrays)",
        )


def _holds_objects(archive: zipfile.ZipFile, name: str) -> bool:
    with archive.open(name) as member:
        version = np.lib.format.read_magic(member)
        if version not in HEADER_READERS:
            raise ValueError(f"array {name!r}: .npy format {version}")
        _, _, dtype = HEADER_READERS[version](member)
    return dtype.hasobject


def load_safetensors(path: str | Path, key: str) -> dict[str, torch.Tensor]:
    """A ``.safetensors`` file's tensors on the CPU (a JSON header and raw bytes: no pickle)."""
    from safetensors.torch import load_file

    with _safetensors_errors(path, key):
        return load_file(str(path))


def check_safetensors(path: str | Path, key: str) -> None:
    """A ``.safetensors`` file's header parses (no tensor read)."""
    from safetensors import safe_open

    with _safetensors_errors(path, key), safe_open(str(path), framework="pt"):
        pass


@contextlib.contextmanager
def _safetensors_errors(path: str | Path, key: str) -> Iterator[None]:
    from safetensors import SafetensorError

    try:
        yield
    except (SafetensorError, OSError) as error:
        raise ConfigError(key, path, f"not a readable .safetensors file ({error})") from None
