"""One registry from a model config's ``arch`` to the function that builds it.

Variants are data (conf/model/*.yaml); the registry knows only architecture families, so no
code branches on a variant's name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from vitrepro.errors import ConfigError

ModelBuilder = Callable[..., nn.Module]
_BUILDERS: dict[str, ModelBuilder] = {}

# Keys of a model config that describe it or its initialisation rather than its builder.
DESCRIPTIVE_KEYS = (
    "arch",
    "name",
    "image_size",
    "lr",
    "weight_decay",
    "epochs",
    "pretrained",
    "pretrained_head",
    "posemb_interpolation",
)


def register(arch: str) -> Callable[[ModelBuilder], ModelBuilder]:
    """Decorator: ``builder(num_classes=..., image_size=..., **config)`` builds ``arch``."""

    def add(builder: ModelBuilder) -> ModelBuilder:
        _BUILDERS[arch] = builder
        return builder

    return add


def available_archs() -> list[str]:
    return sorted(_BUILDERS)


def get_builder(arch: str) -> ModelBuilder:
    if arch not in _BUILDERS:
        raise ConfigError(
            "model.arch", arch, f"unknown architecture; choose one of {available_archs()}"
        )
    return _BUILDERS[arch]


def build_model(model_cfg: dict[str, Any], num_classes: int, image_size: int) -> nn.Module:
    """Build the model a ``conf/model`` entry describes, for a dataset's classes and image size.

    With ``pretrained=PATH`` the weights are loaded and adapted (``checkpoints.load_pretrained``).
    """
    kwargs = {k: v for k, v in model_cfg.items() if k not in DESCRIPTIVE_KEYS}
    model = get_builder(model_cfg.get("arch"))(
        num_classes=num_classes, image_size=image_size, **kwargs
    )
    if model_cfg.get("pretrained"):
        from vitrepro.models.checkpoints import load_pretrained

        load_pretrained(
            model,
            {k: v for k, v in model_cfg.items() if k != "pretrained"},
            model_cfg["pretrained"],
            head=model_cfg.get("pretrained_head", "drop"),
            interpolation=model_cfg.get("posemb_interpolation", "zoom"),
        )
    return model
