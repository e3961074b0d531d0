"""Test helper: weight and data files that run code when unpickled, as a shared file can.

Each carries ``Payload(marker)``: unpickling it calls ``os.mkdir(marker)``, so a test asserts
that ``marker`` does not exist after a loader has seen the file.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import torch


class Payload:
    """Pickled as a call of ``os.mkdir(marker)``: the code runs when the file is unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple:
        return (os.mkdir, (self.marker,))


def write_ckpt(path: Path, marker: Path) -> Path:
    """A Lightning checkpoint in our layout whose recorded model config is the payload."""
    state = {"model.head.weight": torch.zeros(10, 32), "model.head.bias": torch.zeros(10)}
    hparams = {"model_config": Payload(marker), "num_classes": 10, "image_size": 16}
    torch.save({"state_dict": state, "hyper_parameters": hparams, "global_step": 4}, path)
    return path


def write_pth(path: Path, marker: Path, legacy: bool = False) -> Path:
    """A timm-style state dict carrying the payload (``legacy``: torch's pre-zip format)."""
    state = {"cls_token": torch.zeros(1, 1, 32), "norm.weight": Payload(marker)}
    torch.save(state, path, _use_new_zipfile_serialization=not legacy)
    return path


def write_npz(path: Path, marker: Path) -> Path:
    """An official-layout ``.npz`` whose position embedding is an object array of payloads."""
    payload = np.empty(1, dtype=object)
    payload[0] = Payload(marker)
    np.savez(path, **{"Transformer/posembed_input/pos_embedding": payload})
    return path


def write_cifar_batch(path: Path, marker: Path) -> Path:
    """A CIFAR python batch whose image array is the payload."""
    path.write_bytes(pickle.dumps({"data": Payload(marker), "labels": [0]}))
    return path
