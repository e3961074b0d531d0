"""One registry from a model config's ``arch`` to the function that builds it.

Variants are data (conf/model/*.yaml); the registry knows only architecture families, so no
code branches on a variant's name.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from vitrepro.config.errors import ConfigError

ModelBuilder = Callable[..., nn.Module]
_BUILDERS: dict[str, ModelBuilder] = {}

# Keys of a model config that describe it or its initialisation rather than its builder.
DESCRIPTIVE_KEYS = (
    "arch",
    "name",
    "image_size",
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


def construct(model_cfg: dict[str, Any], num_classes: int, image_size: int) -> nn.Module:
    """The freshly initialised model a ``conf/model`` entry describes (its weights, if any, are
    loaded by ``models.build.build_model``)."""
    kwargs = {k: v for k, v in model_cfg.items() if k not in DESCRIPTIVE_KEYS}
    builder = get_builder(model_cfg.get("arch"))
    # a key no builder takes (a checkpoint's config from another version): one line, not a
    # TypeError from deep inside the builder
    takes = inspect.signature(builder).parameters
    unknown = sorted(set(kwargs) - set(takes))
    if unknown and not any(p.kind is p.VAR_KEYWORD for p in takes.values()):
        raise ConfigError(
            f"model.{unknown[0]}",
            kwargs[unknown[0]],
            f"not a setting of the {model_cfg.get('arch')} architecture; remove it",
        )
    return builder(num_classes=num_classes, image_size=image_size, **kwargs)
