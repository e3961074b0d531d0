"""CIFAR's python batch files read with a restricted unpickler.

The batches are pickles by design (a dict of a uint8 array, labels, names); pickle can name
any callable to run while loading, so here it may name only the NumPy functions and types
that rebuild an array, and ``_codecs.encode`` (how Python 3 pickles bytes at protocol 2).
Anything else is a ``ConfigError`` naming the file; nothing it names is imported or run.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from vitrepro.config.errors import ConfigError

# (module, name) pairs a CIFAR batch may reference: arrays (protocols 2-4 and 5), their
# dtypes, NumPy scalars (re-packed label lists) and bytes at protocol 2. Both NumPy 1's
# numpy.core and NumPy 2's numpy._core names, as files written by either.
ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name}")
        return super().find_class(module, name)


def read_batch(path: str | Path, key: str = "data.root") -> dict[str, Any]:
    """One CIFAR batch or meta file as a dict (latin-1 strings, as the original Python 2
    pickles need); a file naming anything but an array's parts, or that is not a dict
    holding no object arrays, is a ``ConfigError`` under ``key``."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            content = _BatchUnpickler(handle, encoding="latin1").load()
    except pickle.UnpicklingError as error:
        raise ConfigError(
            key, path, f"holds a Python object of type {error}: not loaded (CIFAR batches "
            "hold only arrays, lists, strings and numbers; replace it with the official file)",
        ) from None  # fmt: skip
    except (EOFError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise ConfigError(key, path, f"not a CIFAR batch file ({error})") from None
    objects = [k for k, v in _items(content) if isinstance(v, np.ndarray) and v.dtype.hasobject]
    if not isinstance(content, dict) or objects:
        detail = f"{objects[0]!r} is an array of objects" if objects else "not a dict"
        raise ConfigError(key, path, f"not a CIFAR batch file ({detail})")
    return content


def _items(content: Any) -> list[tuple[Any, Any]]:
    return list(content.items()) if isinstance(content, dict) else []
