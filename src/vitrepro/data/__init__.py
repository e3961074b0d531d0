"""Datasets and datamodules."""

from vitrepro.data.datamodules import (
    ImageFolderDataModule,
    SyntheticDataModule,
    build_datamodule,
)
from vitrepro.data.synthetic import MotifCompositions, MotifSpec

__all__ = [
    "ImageFolderDataModule",
    "MotifCompositions",
    "MotifSpec",
    "SyntheticDataModule",
    "build_datamodule",
]
