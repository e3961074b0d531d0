"""Datasets and datamodules."""

from vitrepro.data.datamodules import ImageFolderDataModule, SyntheticDataModule
from vitrepro.data.synthetic import MotifCompositions, MotifSpec

__all__ = ["ImageFolderDataModule", "MotifCompositions", "MotifSpec", "SyntheticDataModule"]
