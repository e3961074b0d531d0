"""Weight files as state dicts with our key names, read without running code they carry
(``vitrepro.safe_load``):

- our Lightning checkpoints (``*.ckpt``), or a run directory (its ``checkpoints/last.ckpt``);
- our exports (``vitrepro.export``): a folder with ``model.safetensors`` and ``config.json``;
- timm state dicts (``*.pth``, ``*.pt``, ``*.bin``, ``*.safetensors``).

The official ``*.npz`` files need the target model to be read (``models.checkpoints``); here
they are only checked to hold numeric arrays.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import torch

from vitrepro.config.errors import ConfigError
from vitrepro.safe_load import check_npz, check_safetensors, load_safetensors, load_torch

EXPORT_WEIGHTS, EXPORT_CONFIG = "model.safetensors", "config.json"
# What our checkpoints and exports record to rebuild their model.
METADATA_KEYS = ("model_config", "num_classes", "image_size")
# Model-config keys of older runs that are recipe settings (per-recipe learning rate, weight
# decay and epochs tables, now each recipe's ``per_model``), not the model's: their runs load.
RECIPE_TABLES = ("lr", "weight_decay", "epochs")
TORCH_SUFFIXES = (".ckpt", ".pth", ".pt", ".bin")


def resolve_checkpoint(path: str | Path, key: str = "model.pretrained") -> Path:
    """A file as given; an export folder's ``model.safetensors``; a run directory's
    ``checkpoints/last.ckpt``. ``key`` names the option in errors."""
    path = Path(path).expanduser()
    if path.is_dir():
        exported = path / EXPORT_WEIGHTS
        path = exported if exported.is_file() else path / "checkpoints" / "last.ckpt"
    if not path.is_file():
        raise ConfigError(
            key, path, "no such checkpoint; give a .ckpt/.pth/.safetensors/.npz file, an "
            "exported folder or a run dir",
        )  # fmt: skip
    if not _looks_like_weights(path):
        raise ConfigError(
            key, path, "not a checkpoint (a torch, .npz or .safetensors file); check the path"
        )
    return path.resolve()


def _looks_like_weights(path: Path) -> bool:
    """A torch file (a zip archive, or a legacy pickle), an ``.npz`` (a zip archive) or a
    ``.safetensors`` file (a little-endian header length, then a JSON header), read from its
    first bytes: a text file or a foreign format is a mistake before any compute."""
    if zipfile.is_zipfile(path):
        return True
    with path.open("rb") as handle:
        head = handle.read(9)
    return head[:1] == b"\x80" or (len(head) == 9 and head[8:9] == b"{")


def verify_checkpoint(path: str | Path, key: str = "model.pretrained") -> Path:
    """``resolve_checkpoint``, then the file opened as it will be read, tensors left on disk:
    one that is refused or unreadable is a ``ConfigError`` now, before any compute."""
    path = resolve_checkpoint(path, key)
    if path.suffix == ".npz":
        check_npz(path, key)
    elif path.suffix == ".safetensors":
        check_safetensors(path, key)
    else:  # a torch file whatever its suffix: torch.load would be its reader
        load_torch(path, key, mmap=True)
    return path


def run_metadata(checkpoint: str | Path, key: str = "checkpoint") -> dict[str, Any] | None:
    """Model config, number of classes and image size of one of our checkpoints or exports;
    ``None`` for a file that does not record them (timm, official)."""
    path = resolve_checkpoint(checkpoint, key=key)
    if path.suffix == ".ckpt":
        metadata = load_torch(path, key, mmap=True).get("hyper_parameters", {})
    elif path.suffix == ".safetensors":
        metadata = export_config(path) or {}
    else:
        return None
    if not metadata.get("model_config"):
        return None
    kept = {name: metadata.get(name) for name in METADATA_KEYS}
    kept["model_config"] = {k: v for k, v in kept["model_config"].items() if k not in RECIPE_TABLES}
    return kept


def export_config(weights: Path) -> dict[str, Any] | None:
    """The ``config.json`` beside an exported ``model.safetensors``, if it is one of ours."""
    config = weights.parent / EXPORT_CONFIG
    if weights.name != EXPORT_WEIGHTS or not config.is_file():
        return None
    try:
        data = json.loads(config.read_text())
    except (ValueError, OSError):
        return None  # timm or hub configs are not ours to read
    return data if isinstance(data, dict) and data.get("model_config") else None


def lightning_weights(checkpoint: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The classifier's weights in a Lightning checkpoint (``model.`` removed)."""
    state = checkpoint["state_dict"]
    return {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}


def nested_state_dict(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """A torch file's state dict, also when saved under ``state_dict`` or ``model``."""
    return state.get("state_dict", state.get("model", state))


def read_weights(path: Path, key: str = "model.pretrained") -> dict[str, torch.Tensor]:
    """One of our checkpoints or exports, or a timm state dict, with our key names."""
    if path.suffix == ".ckpt":
        return lightning_weights(load_torch(path, key))
    if path.suffix == ".safetensors":
        state = load_safetensors(path, key)
        return state if export_config(path) else _timm_names(state)
    return _timm_names(nested_state_dict(load_torch(path, key)))


def _timm_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # timm names its classifier head (ViT) or head.fc (ResNetV2); everything else is ours under
    # backbone. (timm ViTs have no pre-logits layer.)
    ours = {}
    for key, value in state.items():
        if key.startswith(("head.weight", "head.bias", "head.fc.")):
            ours["head." + key.rsplit(".", 1)[1]] = value.flatten(1) if value.ndim == 4 else value
        else:
            ours["backbone." + key] = value
    return ours
