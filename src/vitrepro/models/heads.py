"""The paper's classification head on top of any timm backbone (Section 3.1).

timm's models end in a single linear classifier. The paper pre-trains with an MLP head of one
hidden layer of width D and tanh (the "pre_logits" layer) and, for fine-tuning, removes that
whole head and attaches a zero-initialised D x K linear layer. The official code also
zero-initialises the classifier kernel when pre-training, with a configurable bias (-10 for the
released ImageNet-21k models trained with sigmoid cross-entropy).
"""

from __future__ import annotations

import torch
from torch import nn


def zero_linear(in_features: int, out_features: int, bias: float = 0.0) -> nn.Linear:
    """A classifier with zero weights and a constant bias, as the official code initialises it."""
    layer = nn.Linear(in_features, out_features)
    nn.init.zeros_(layer.weight)
    nn.init.constant_(layer.bias, bias)
    return layer


class Classifier(nn.Module):
    """``backbone`` (pooled features, width ``num_features``) -> optional pre-logits -> linear."""

    def __init__(
        self,
        backbone: nn.Module,
        num_features: int,
        num_classes: int,
        representation_size: int | None = None,
        head_bias_init: float = 0.0,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.num_features = num_features
        if representation_size:
            self.pre_logits: nn.Module = nn.Sequential(
                nn.Linear(num_features, representation_size), nn.Tanh()
            )
        else:
            self.pre_logits = nn.Identity()
        self.head = zero_linear(representation_size or num_features, num_classes, head_bias_init)

    def reset_for_finetuning(self, num_classes: int) -> None:
        """Section 3.1: drop the whole pre-training head, attach a zero-initialised D x K layer."""
        self.pre_logits = nn.Identity()
        self.head = zero_linear(self.num_features, num_classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The representation used by linear few-shot evaluation (after pre_logits)."""
        return self.pre_logits(self.backbone(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))
