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
        if representation_size:
            self.pre_logits: nn.Module = nn.Sequential(
                nn.Linear(num_features, representation_size), nn.Tanh()
            )
            width = representation_size
        else:
            self.pre_logits = nn.Identity()
            width = num_features
        self.head = nn.Linear(width, num_classes)
        self.reset_classifier(num_classes, head_bias_init)

    def reset_classifier(self, num_classes: int, head_bias_init: float = 0.0) -> None:
        """A fresh zero-initialised classifier (the paper's fine-tuning head keeps pre_logits off)."""
        self.head = nn.Linear(self.head.in_features, num_classes)
        nn.init.zeros_(self.head.weight)
        nn.init.constant_(self.head.bias, head_bias_init)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The representation used by linear few-shot evaluation (after pre_logits)."""
        return self.pre_logits(self.backbone(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))
