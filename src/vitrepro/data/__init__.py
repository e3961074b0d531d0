"""Datasets and datamodules."""

from vitrepro.data.build import FORMATS, build_datamodule
from vitrepro.data.cifar import CIFARDataModule
from vitrepro.data.datamodules import ImageFolderDataModule, SyntheticDataModule
from vitrepro.data.generators.motifs import MotifCompositions, MotifSpec

__all__ = [
    "FORMATS",
    "CIFARDataModule",
    "ImageFolderDataModule",
    "MotifCompositions",
    "MotifSpec",
    "SyntheticDataModule",
    "build_datamodule",
]
