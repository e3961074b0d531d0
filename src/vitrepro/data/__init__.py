"""Datasets and datamodules."""

from vitrepro.data.datamodules import (
    CIFARDataModule,
    ImageFolderDataModule,
    SyntheticDataModule,
    build_datamodule,
)
from vitrepro.data.synthetic import MotifCompositions, MotifSpec

__all__ = [
    "CIFARDataModule",
    "ImageFolderDataModule",
    "MotifCompositions",
    "MotifSpec",
    "SyntheticDataModule",
    "build_datamodule",
]
