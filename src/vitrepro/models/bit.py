"""BiT ResNet-v2 baselines (Kolesnikov et al. 2020, the paper's Section 4.1) on timm's ``ResNetV2``.

timm already has the pre-activation ResNet-v2 with GroupNorm and weight-standardised
convolutions that BiT uses; ours is only the config vocabulary (blocks per stage, width
multiplier) so that a BiT variant is a YAML file, and the shared classifier head.
"""

from __future__ import annotations

from functools import partial

from timm.layers import GroupNormAct, StdConv2d
from timm.models.resnetv2 import ResNetV2
from torch import nn

from vitrepro.models.heads import Classifier
from vitrepro.models.registry import register


@register("bit")
def build_bit(
    *,
    num_classes: int,
    image_size: int,
    layers: list[int],
    width_factor: int = 1,
    channels: list[int] = (256, 512, 1024, 2048),
    stem_channels: int = 64,
    norm_groups: int = 32,
    representation_size: int | None = None,
    head_bias_init: float = 0.0,
) -> nn.Module:
    """ResNet-v2, GroupNorm(``norm_groups``) + StdConv; ``image_size`` is only the interface."""
    del image_size  # convolutional: any input size works
    backbone = ResNetV2(
        layers=list(layers),
        channels=tuple(channels),
        num_classes=0,
        width_factor=width_factor,
        stem_chs=stem_channels,
        stem_type="fixed",  # BiT's stem: 7x7 conv with fixed padding, then max-pool
        norm_layer=partial(GroupNormAct, num_groups=norm_groups),
        conv_layer=partial(StdConv2d, eps=1e-8),
    )
    return Classifier(
        backbone,
        num_features=backbone.num_features,
        num_classes=num_classes,
        representation_size=representation_size,
        head_bias_init=head_bias_init,
    )
