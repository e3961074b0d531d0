"""A model from its config: the registry's architecture, then its pre-trained weights if any."""

from __future__ import annotations

from typing import Any

from torch import nn

from vitrepro.models.pretrained import load_pretrained
from vitrepro.models.registry import construct


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
