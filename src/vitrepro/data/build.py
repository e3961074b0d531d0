"""From a ``conf/data`` entry to its datamodule: ``data.format`` names the reader.

A data config is the reader's arguments plus ``METADATA_KEYS``: facts about the dataset that
other parts of the config read (Table 4's fine-tuning steps, the few-shot downstream sets).
Any dataset can switch reader with one override, e.g. ``data=pets data.format=shards`` for
Pets written as shards with ``src/make_shards.py``.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from vitrepro.config.errors import ConfigError
from vitrepro.data.cifar import CIFARDataModule
from vitrepro.data.datamodules import ImageFolderDataModule, SyntheticDataModule
from vitrepro.data.shards.datamodule import ShardsDataModule

FORMATS: dict[str, type[pl.LightningDataModule]] = {
    "synthetic": SyntheticDataModule,
    "image_folder": ImageFolderDataModule,
    "cifar": CIFARDataModule,
    "shards": ShardsDataModule,
}
METADATA_KEYS = ("format", "finetune_steps", "fewshot_datasets")


def build_datamodule(
    data_cfg: dict[str, Any] | DictConfig,
    batch_size: int,
    performance: dict[str, Any] | None = None,
) -> pl.LightningDataModule:
    """Instantiate the reader ``data_cfg["format"]`` names with the config's other keys;
    ``performance``: the run's DataLoader switches (``vitrepro.compute.performance``)."""
    if isinstance(data_cfg, DictConfig):
        data_cfg = OmegaConf.to_container(data_cfg, resolve=True)
    data_format = data_cfg.get("format")
    if data_format not in FORMATS:
        raise ConfigError("data.format", data_format, f"choose one of {sorted(FORMATS)}")
    arguments = {k: v for k, v in data_cfg.items() if k not in METADATA_KEYS}
    datamodule = FORMATS[data_format](**arguments, batch_size=batch_size)
    datamodule.performance = performance or {}
    return datamodule
