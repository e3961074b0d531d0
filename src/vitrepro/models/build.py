"""A model from its config (the registry's architecture, then its pre-trained weights if any) or
from a checkpoint alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from vitrepro.config.errors import ConfigError
from vitrepro.models.pretrained import load_pretrained
from vitrepro.models.registry import construct
from vitrepro.models.weight_files import run_metadata, verify_checkpoint


def build_model(model_cfg: dict[str, Any], num_classes: int, image_size: int) -> nn.Module:
    """Build the model a ``conf/model`` entry describes, for a dataset's classes and image size.

    With ``pretrained=PATH`` the weights are loaded and adapted (``pretrained.load_pretrained``).
    """
    model = construct(model_cfg, num_classes, image_size)
    if model_cfg.get("pretrained"):
        load_pretrained(
            model,
            {k: v for k, v in model_cfg.items() if k != "pretrained"},
            model_cfg["pretrained"],
            head=model_cfg.get("pretrained_head", "drop"),
            interpolation=model_cfg.get("posemb_interpolation", "zoom"),
        )
    return model


def model_from_checkpoint(
    checkpoint: str | Path,
    model_cfg: dict[str, Any],
    num_classes: int | None,
    image_size: int,
    head: str = "features",
) -> tuple[nn.Module, int]:
    """(model, image size) of any checkpoint. Our runs and exports carry their model config,
    classes and image size; timm and official files take them from the given config
    (``num_classes``: the classes of the checkpoint's head). The file is checked first: a
    refused one is one error line before anything is built."""
    verify_checkpoint(checkpoint, key="checkpoint")
    metadata = run_metadata(checkpoint)
    if metadata:
        model_cfg, num_classes = metadata["model_config"], metadata["num_classes"]
        image_size = metadata["image_size"]
    elif not num_classes:
        raise ConfigError("num_classes", num_classes, "give the checkpoint's number of classes")
    model_cfg = {**model_cfg, "pretrained": str(checkpoint), "pretrained_head": head}
    return build_model(model_cfg, num_classes=num_classes, image_size=image_size), image_size
