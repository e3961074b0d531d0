"""BiT ResNet-v2 baselines (Kolesnikov et al. 2020, the paper's Section 4.1) on timm's ``ResNetV2``.

timm already has the pre-activation ResNet-v2 with GroupNorm and weight-standardised
convolutions that BiT uses; ours is the config vocabulary (blocks per stage, width multiplier)
so that a BiT variant is a YAML file, the shared classifier head, and ``stem="cifar"``: BiT's
7x7/2 conv and max-pool (stride 4) leave an 8x8 map of a 32-px image, so small images get the
CIFAR ResNets' 3x3/1 stem instead (He et al. 2016, Section 4.2), the competent CNN baseline at
that size.
"""

from __future__ import annotations

from functools import partial

from timm.layers import GroupNormAct, StdConv2d
from timm.models.resnetv2 import ResNetV2
from torch import nn

from vitrepro.models.heads import Classifier
from vitrepro.models.registry import register

STEMS = ("bit", "cifar")


def cifar_stem(backbone: ResNetV2, stem_channels: int, conv_layer: type = StdConv2d) -> None:
    """Replace a ResNet-v2's stride-4 stem by one 3x3 stride-1 convolution (pre-activation:
    the first block normalises its input)."""
    backbone.stem = nn.Sequential(conv_layer(3, stem_channels, kernel_size=3, stride=1, padding=1))
    for info in backbone.feature_info:  # reductions as timm reports them, now 4x smaller
        info["reduction"] = max(1, info["reduction"] // 4)


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
    stem: str = "bit",
) -> nn.Module:
    """ResNet-v2, GroupNorm(``norm_groups``) + StdConv; ``image_size`` is only the interface;
    ``stem``: ``bit`` (7x7/2 + max-pool) or ``cifar`` (3x3/1, for 32-px images)."""
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
    if stem == "cifar":
        cifar_stem(backbone, stem_channels, partial(StdConv2d, eps=1e-8))
    return Classifier(
        backbone,
        num_features=backbone.num_features,
        num_classes=num_classes,
        representation_size=representation_size,
        head_bias_init=head_bias_init,
    )
