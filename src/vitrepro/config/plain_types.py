"""Values as the plain types that a weights-only torch load and JSON both accept."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import numpy as np

PLAIN = (str, int, float, bool, type(None))


def plain(value: Any) -> Any:
    """``value`` with OmegaConf containers and mappings as dicts, dataclasses as dicts,
    tuples as lists, NumPy scalars as numbers and paths as strings; a ``TypeError`` names
    anything else (a checkpoint holding it would need pickle to be read)."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(value, (DictConfig, ListConfig)):
        return plain(OmegaConf.to_container(value, resolve=True))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, PLAIN):
        return value
    raise TypeError(f"a {type(value).__module__}.{type(value).__qualname__} is not a plain value")
